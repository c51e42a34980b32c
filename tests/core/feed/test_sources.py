"""Who may reach the listener (bot/feed/sources.py): peers named as the IT person knows them,
connection slots in all and per source, and refusal lines once per source per minute."""

from __future__ import annotations

import logging

from bot.feed.sources import OncePerMinute, Slots, source_address
from tests.core.feed.support import recording

REFUSED = "hl7 connection from %s refused: not in HL7_ALLOWED_SOURCES"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_ipv4_engine_on_a_dual_stack_listener_is_named_by_its_ipv4_address() -> None:
    assert source_address("::ffff:10.0.4.12") == "10.0.4.12"
    assert source_address("fe80::1%eth0") == "fe80::1"
    assert source_address("2001:db8::7") == "2001:db8::7"
    assert source_address("10.0.4.12") == "10.0.4.12"


def test_slots_cap_each_source_and_all_of_them() -> None:
    slots = Slots(total=3, per_source=2)
    assert slots.take("10.0.0.1") is None and slots.take("10.0.0.1") is None
    assert slots.take("10.0.0.1") == "2 connections already open from that address"
    assert slots.take("10.0.0.2") is None
    assert slots.take("10.0.0.3") == "3 connections already open (the most pinbot takes)"
    slots.give_back("10.0.0.1")
    assert slots.take("10.0.0.3") is None


def test_one_line_per_source_per_minute_and_the_rest_counted() -> None:
    clock = Clock()
    limited = OncePerMinute(logging.getLogger("bot.feed.test"), clock=clock)
    with recording() as log:
        for _ in range(500):
            limited.warning("10.9.9.9", REFUSED, "10.9.9.9")
            clock.now += 0.01  # 500 tries in 5 s
        limited.warning("10.9.9.8", REFUSED, "10.9.9.8")  # another source: its own line
        limited.flush()  # inside the minute: nothing yet
        assert len(log.records) == 2
        clock.now += 60
        limited.flush()  # the minute is over: the count is said
        limited.flush()
        clock.now += 120
        limited.flush()  # nothing happened since: nothing more
        limited.warning("10.9.9.9", REFUSED, "10.9.9.9")  # a new minute: a line at once
    assert log.text().splitlines() == [
        "hl7 connection from 10.9.9.9 refused: not in HL7_ALLOWED_SOURCES",
        "hl7 connection from 10.9.9.8 refused: not in HL7_ALLOWED_SOURCES",
        "hl7 connection from 10.9.9.9 refused: not in HL7_ALLOWED_SOURCES (and 499 more like it "
        "since the last such line, not logged one by one)",
        "hl7 connection from 10.9.9.9 refused: not in HL7_ALLOWED_SOURCES",
    ]


def test_a_scan_from_many_addresses_stays_a_bounded_number_of_lines() -> None:
    clock = Clock()
    limited = OncePerMinute(logging.getLogger("bot.feed.test"), max_sources=10, clock=clock)
    with recording() as log:
        for n in range(5000):
            source = f"2001:db8::{n:x}"
            limited.warning(source, REFUSED, source)
        limited.flush(everything=True)
    lines = log.text().splitlines()
    assert len(lines) == 12  # ten sources followed, one for the rest, and its count
    assert lines[-1].endswith(
        "(and 4989 more like it since the last such line, not logged one by one)"
    )
