"""The live EHR feed (SPEC §8): the HL7 v2 MLLP listener (`mllp`), reading one message's bytes
into plain frozen records (`wire` decodes the bytes, `message` reads the header and dispatches,
`adt` and `siu` map the segments, `records` holds the results) and the original-mode ACKs
(`ack`). It owns parsing, mapping and acknowledging, not applying: the composition root hands
the listener a function that applies a parsed message in one database transaction. It may
import bot's top-level modules (config, db, errors, text, audit) and `models`, never
`slack_sdk`, `slack_bolt` or `handlers`; and it never logs message text, only control ids,
message types and ACK codes."""
