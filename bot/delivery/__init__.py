"""Outgoing work: the outbox queue written in the same transaction as the records it
announces, the worker that claims and performs it after commit with retries, and the performers
(SMTP, Slack upload/post/delete through a port the Slack adapter implements). May import bot's
top-level modules, `bot.documents` and models; never Slack libraries."""
