"""Importing EHR exports (CSV): reading and decoding files, field-by-field validation, the
per-kind importers (families, appointments, registrations) with their two-pass driver, and the
synthetic demo practice loaded through them. May import bot's top-level modules,
`bot.families` (the name check and name-fix closing) and models."""
