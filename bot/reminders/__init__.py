"""Keeping loose ends from being forgotten: the daily sweep (expired PINs, the digest, nudges
for waiting name fixes) claimed once per day across replicas, the digest's content as data, the
work lists behind `/pinbot today` and `pending`, and the APScheduler jobs that run them. May
import bot's top-level modules, `bot.delivery`, `bot.families` and models."""
