"""`pinbot hl7 replay FILE` and `pinbot hl7 status` (SPEC §4, §8): a file of HL7 messages
applied with exactly the listener's rules, and whether the feed is alive. Output carries
control ids, message types, ACK codes and field names, never message text (no PHI)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from bot.config import Settings
from bot.db import Database
from bot.feed.ack import AckCode
from bot.feed.apply import FeedApplier, Receipt
from bot.feed.errors import FeedError
from bot.feed.message import iter_messages
from models import FeedMessage, utcnow

REPLAY_CHUNK = 1 << 20  # bytes read at a time: a whole practice's backfill is 70 MB or more


def receipt_line(receipt: Receipt) -> str:
    """`<control id> <type> <ACK code> [field: reason]`; an AA that left details out says
    each with "warning"."""
    control_id = receipt.header.control_id if receipt.header and receipt.header.control_id else "-"
    line = f"{control_id} {receipt.message_type} {receipt.code.value}"
    if receipt.duplicate:
        line += " (already applied)"
    if error := receipt.error:
        line += f" {_reason(error)}"
    for warning in receipt.warnings:
        line += f" (warning {_reason(warning)})"
    return line


def _reason(error: FeedError) -> str:
    if error.field and not error.reason.startswith(error.field):
        return f"{error.field}: {error.reason}"
    return error.reason


def replay(settings: Settings, database: Database, path: Path) -> Iterator[Receipt]:
    """Each message of the file, applied in order as the listener applies it. Thread
    messages it queues are delivered by the running bot's worker."""
    applier = FeedApplier(database, settings)
    with path.open("rb") as stream:
        for raw in iter_messages(iter(lambda: stream.read(REPLAY_CHUNK), b"")):
            yield applier.receive(raw)


def status_lines(
    settings: Settings, database: Database, *, clock: Callable[[], datetime] = utcnow
) -> list[str]:
    now = clock()
    feed = settings.feed
    lines = [
        f"Listener: {feed.bind}:{feed.port}"
        if feed.configured
        else "Listener: HL7_PORT is not set, so pinbot run serves no EHR feed"
    ]
    since = now - timedelta(hours=24)
    with database.read_session() as session:
        last = session.exec(select(func.max(FeedMessage.received_at))).one()
        rows = session.exec(
            select(FeedMessage.message_type, FeedMessage.ack_code, func.count())
            .where(col(FeedMessage.received_at) >= since)
            .group_by(col(FeedMessage.message_type), col(FeedMessage.ack_code))
        ).all()
    if last is None:
        lines.append("Last message: none received yet")
    else:
        local = last.astimezone(settings.timezone)
        minutes = max(int((now - last).total_seconds() // 60), 0)
        lines.append(f"Last message: {local:%Y-%m-%d %H:%M %Z} ({_ago(minutes)})")
    codes: Counter[str] = Counter()
    lines.append("Last 24 hours:" if rows else "Last 24 hours: no messages")
    for kind, code, n in sorted(rows):
        lines.append(f"  {kind:<10} {code}  {n:,}")
        codes[code] += n
    if rows:
        lines.append("  total      " + ", ".join(f"{c} {codes[c]:,}" for c in AckCode if codes[c]))
    return lines


def _ago(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"
