"""The log format: one line per event, whatever the values from outside hold."""

from __future__ import annotations

import logging
import sys

from bot.logs import FieldsFormatter


def test_control_and_bidi_characters_are_escaped_and_a_traceback_keeps_its_lines() -> None:
    formatter = FieldsFormatter("%(levelname)s %(message)s")
    record = logging.makeLogRecord(
        {"msg": "hl7 %s: AA", "args": ("EP\x1b[31m\r\nINFO forged\u202e",), "levelname": "INFO"}
    )
    record.control_id = "\x07bell"  # a structured field is escaped too
    assert formatter.format(record) == (
        "INFO hl7 EP\\x1b[31m\\r\\nINFO forged\\u202e: AA control_id=\\x07bell"
    )
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.makeLogRecord({"msg": "failed", "levelname": "ERROR"})
        failed.exc_info = sys.exc_info()
    assert formatter.format(failed).splitlines()[1] == "Traceback (most recent call last):"
