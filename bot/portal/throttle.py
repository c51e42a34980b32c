"""Guessing bounded (SPEC §11; NIST SP 800-63B's rate limiting): per source (the parent's
address, else the API key) 10 failures in 15 minutes, per API client 100 failures in a row.
Past the limit every request of that subject gets 429 with Retry-After: a minute, doubling
with each block up to an hour; a success clears the count.

The counters are rows (`PortalThrottle`), so every replica enforces the same limits. A failure
is recorded with its rows locked (PostgreSQL: FOR UPDATE; SQLite: the write lock), and the 429
decision is taken under that same lock, so concurrent attempts cannot let more failures through
than the limit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models import PortalThrottle


@dataclass(frozen=True)
class Rule:
    limit: int
    window: timedelta | None  # None: failures in a row, however far apart


SOURCE_RULE = Rule(limit=10, window=timedelta(minutes=15))
CLIENT_RULE = Rule(limit=100, window=None)
FIRST_BLOCK = timedelta(minutes=1)
LONGEST_BLOCK = timedelta(hours=1)
TELL_STAFF_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Subjects:
    """The two counters an attempt belongs to."""

    source: str
    client: str

    @classmethod
    def of(cls, *, client_id: int, client_ip: str | None) -> Subjects:
        source = f"ip:{client_ip}" if client_ip else f"key:{client_id}"
        return cls(source=source, client=f"client:{client_id}")

    @property
    def both(self) -> tuple[str, str]:
        return (self.source, self.client)

    def rule(self, subject: str) -> Rule:
        return CLIENT_RULE if subject == self.client else SOURCE_RULE


def _seconds(left: timedelta) -> int:
    return max(1, math.ceil(left.total_seconds()))


def blocked_for(session: Session, subjects: Sequence[str], now: datetime) -> int | None:
    """Seconds until every subject may try again; None when none is blocked."""
    until = session.exec(
        select(PortalThrottle.blocked_until).where(
            col(PortalThrottle.subject).in_(subjects), col(PortalThrottle.blocked_until) > now
        )
    ).all()
    latest = max((u for u in until if u is not None), default=None)
    return _seconds(latest - now) if latest else None


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(PortalThrottle)


def locked_rows(session: Session, subjects: Subjects, now: datetime) -> list[PortalThrottle]:
    """The attempt's counters, created if new, locked until the transaction ends (in subject
    order, so two attempts never wait on each other's second row)."""
    for subject in subjects.both:
        session.execute(
            _insert(session)
            .values(subject=subject, failures=0, window_started_at=now, strikes=0)
            .on_conflict_do_nothing(index_elements=["subject"])
        )
    return list(
        session.exec(
            select(PortalThrottle)
            .where(col(PortalThrottle.subject).in_(subjects.both))
            .order_by(col(PortalThrottle.subject))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    )


def refused_for(rows: Sequence[PortalThrottle], now: datetime) -> int | None:
    blocks = [row.blocked_until for row in rows if row.blocked_until and row.blocked_until > now]
    return _seconds(max(blocks) - now) if blocks else None


def count_failure(row: PortalThrottle, rule: Rule, now: datetime) -> bool:
    """One more failure; True when it starts a block."""
    if rule.window is not None and now - row.window_started_at > rule.window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if row.failures < rule.limit:
        return False
    if row.blocked_until is not None and now - row.blocked_until > LONGEST_BLOCK:
        row.strikes = 0  # an hour's calm since the last block: start again from a minute
    row.blocked_until = now + min(FIRST_BLOCK * 2**row.strikes, LONGEST_BLOCK)
    row.strikes += 1
    return True


def should_tell_staff(row: PortalThrottle, now: datetime) -> bool:
    """At most once an hour per client; marks the row told."""
    if row.told_at is not None and now - row.told_at < TELL_STAFF_EVERY:
        return False
    row.told_at = now
    return True


def clear(session: Session, subjects: Subjects) -> None:
    """A success: the source's counter goes (a source that succeeds leaves no row behind) and
    the client's run of failures ends. Both statements touch nothing when there is nothing to
    clear, so a stream of successes takes no row lock."""
    session.execute(delete(PortalThrottle).where(col(PortalThrottle.subject) == subjects.source))
    session.execute(
        update(PortalThrottle)
        .where(col(PortalThrottle.subject) == subjects.client, col(PortalThrottle.failures) > 0)
        .values(failures=0, strikes=0, blocked_until=None)
    )
