"""The live EHR feed (SPEC §8): the HL7 v2 MLLP listener (`mllp`), reading one message's bytes
into plain frozen records (`wire` decodes the bytes, `message` reads the header and dispatches,
`adt` and `siu` map the segments, `records` holds the results), the original-mode ACKs (`ack`)
and applying a message in one database transaction (`apply`: the message log, duplicates and
the ACK code; `changes`: ADT through the families import's rules and A40 merges;
`appointments`: SIU). The composition root starts the listener with `FeedApplier.handle`;
`framing` splits its byte stream, `sources` says who may connect and how many at once.
It may import bot's top-level modules (config, db, errors, text, audit), `bot.importing`,
`bot.families`, `bot.issuing` (the portal gateway), `bot.delivery` (queued thread messages),
`bot.lookup` (the name keys) and `models`, never `slack_sdk`, `slack_bolt` or `handlers`; and
it never logs message text, only control ids, message types, ACK codes and field names."""
