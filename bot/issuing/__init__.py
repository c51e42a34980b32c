"""Issuing PINs: one batch per family in one transaction (who gets the welcome email, which
children are printed), and the portal gateway that makes, revokes and registers PINs. May import
bot's top-level modules, `bot.families`, `bot.documents`, `bot.delivery` (to queue work) and
models."""
