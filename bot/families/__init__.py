"""The family as staff see it: the record behind the card and the dialog, the family's Slack
thread (by id, never Slack types), the placeholder-name check for newborns, and name fixes with
their supervisor decisions. May import bot's top-level modules, `bot.lookup` and models."""
