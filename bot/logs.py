"""Log format: one line per event with its structured fields (ids only: the code never passes
names, DOBs, emails or PINs as fields). Values from outside (an HL7 control id, a sender's
name) may hold control characters: every line shows them escaped, so none can colour the
terminal, rewrite the line or start a forged one.

Exceptions are logged by type and place, never by message (SPEC §12): a database error's
message holds the SQL statement, and the server's own words may quote the values it refused
(PostgreSQL's "DETAIL: Key (…)=(…)", "invalid input syntax …: "…""), so a payload, a name
or an account number would reach the log. The formatter below applies that to every record
it writes, pinbot's own and the libraries' alike (APScheduler's "Job raised an exception",
Bolt's "Failed to run listener function (error: …)"): the traceback keeps its frames and
exception types, the messages are withheld, and an exception's text quoted in the log
message itself is cut out. `error_ref()` gives a short reference to say where one is needed.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import traceback
from types import TracebackType

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# C0 and C1 controls (ESC, CR, LF, NUL…), DEL, and the invisible and bidi-override characters.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
WITHHELD = "message withheld"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def printable(text: str) -> str:
    """`text` with every control or bidi character written as an escape (ESC -> \\x1b)."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def error_ref() -> str:
    """A short reference that ties a log line to what staff or the thread were told."""
    return secrets.token_hex(4)


def withheld_traceback(error: BaseException) -> str:
    """The traceback of `error` and its causes: frames and exception types, no messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        kind = type(current)
        parts.append(
            f"Traceback (most recent call last):\n{frames}"
            f"{kind.__module__}.{kind.__qualname__} ({WITHHELD})"
        )
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return "\n\nwhile handling, or caused by:\n".join(reversed(parts))


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(_scrubbed(record))

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line without a traceback (which keeps its own lines), escaped."""
        line = super().formatMessage(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return printable(line)

    def formatException(self, ei: ExcInfo | tuple[None, None, None]) -> str:
        error = ei[1]
        return withheld_traceback(error) if error is not None else ""


def _scrubbed(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of `record` whose message no longer quotes its exception's text; the copy also
    drops a traceback another handler may have rendered with messages (exc_text)."""
    if not record.exc_info or record.exc_info[1] is None:
        return record
    copy = logging.makeLogRecord(vars(record))
    said = str(record.exc_info[1])
    message = record.getMessage()
    if said:
        message = message.replace(said, f"({type(record.exc_info[1]).__name__}: {WITHHELD})")
    copy.msg, copy.args, copy.exc_text = message, None, None
    return copy


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # slack_sdk logs request bodies at DEBUG; keep third-party chatter at WARNING.
    for noisy in ("slack_bolt", "slack_sdk", "apscheduler", "waitress", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
