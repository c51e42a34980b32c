"""The portal API's rules (SPEC §11), with no web framework in them: API clients (keys kept as
a keyed hash only), the lookup of a typed PIN + date of birth, verify and redeem, the guessing
limits (per PIN, per source, per client) kept in the database, and what staff are told. The
HTTP adapter (`portal_api/`) calls `PortalDesk` and maps its answers to HTTP. May import bot's
top-level modules, `bot.issuing` (PIN normalization, lookup, scrypt), `bot.families` (threads),
`bot.delivery` (to queue thread notices), `bot.importing` (the demo's child, for `pinbot
demo`) and models."""
