"""Log format: one line per event with its structured fields (ids only: the code never passes
names, DOBs, emails or PINs as fields). Values from outside (an HL7 control id, a sender's
name) may hold control characters: every line shows them escaped, so none can colour the
terminal, rewrite the line or start a forged one."""

from __future__ import annotations

import logging
import re
import sys

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# C0 and C1 controls (ESC, CR, LF, NUL…), DEL, and the invisible and bidi-override characters.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control or bidi character written as an escape (ESC -> \\x1b)."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


class FieldsFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line without a traceback (which keeps its own lines), escaped."""
        line = super().formatMessage(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return printable(line)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # slack_sdk logs request bodies at DEBUG; keep third-party chatter at WARNING.
    for noisy in ("slack_bolt", "slack_sdk", "apscheduler", "waitress", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
