"""Log format: one line per event with its structured fields (ids only: the code never passes
names, DOBs, emails or PINs as fields)."""

from __future__ import annotations

import logging
import sys

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return line


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # slack_sdk logs request bodies at DEBUG; keep third-party chatter at WARNING.
    for noisy in ("slack_bolt", "slack_sdk", "apscheduler", "waitress", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
