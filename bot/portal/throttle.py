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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    ScalarSelect,
    String,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlmodel import Session, col

from bot.db import Database, rows_changed, table_of
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
        source = source_param(client_ip) or f"key:{client_id}"
        return cls(source=source, client=f"client:{client_id}")

    @property
    def both(self) -> tuple[str, str]:
        return (self.source, self.client)

    def rule(self, subject: str) -> Rule:
        return CLIENT_RULE if subject == self.client else SOURCE_RULE


def _seconds(left: timedelta) -> int:
    return max(1, math.ceil(left.total_seconds()))


@dataclass
class Counter:
    """One subject's counter, as read under its lock; `count_failure` changes it and `save`
    writes it back."""

    subject: str
    failures: int
    window_started_at: datetime
    blocked_until: datetime | None
    strikes: int
    told_at: datetime | None


# Built once (the hot path of every attempt) and run on the session's connection without the
# ORM layer, whose per-statement work cost more than the statements themselves.
_TABLE = table_of(PortalThrottle)
_BOTH = col(PortalThrottle.subject).in_([bindparam("source"), bindparam("client")])
_LATEST_BLOCK = select(func.max(col(PortalThrottle.blocked_until))).where(
    _BOTH, col(PortalThrottle.blocked_until) > bindparam("now")
)
_SAVE = (
    update(_TABLE)
    .where(_TABLE.c.subject == bindparam("key"))
    .values(
        failures=bindparam("failures"),
        window_started_at=bindparam("window_started_at"),
        blocked_until=bindparam("blocked_until"),
        strikes=bindparam("strikes"),
        told_at=bindparam("told_at"),
    )
)
_FORGET_SOURCE = delete(_TABLE).where(_TABLE.c.subject == bindparam("source"))
_CLEAR_CLIENT = (
    update(_TABLE)
    .where(_TABLE.c.subject == bindparam("client"), _TABLE.c.failures > 0)
    .values(failures=0, strikes=0, blocked_until=None)
)
_COLUMNS = [_TABLE.c[name] for name in Counter.__dataclass_fields__]


# Both counters in one statement: created if new, else "updated" to themselves, which locks
# them (PostgreSQL) until the transaction ends, and returned. The rows go in subject order, so
# two attempts never wait on each other's second row. Written out because SQLAlchemy compiles
# a multi-row VALUES afresh on every run (it never caches one: a quarter of a failure's CPU);
# PostgreSQL and SQLite spell this upsert the same way, so one text serves both.
_TAKE = (
    text(
        f"INSERT INTO {_TABLE.name} (subject, failures, strikes, window_started_at)"
        " VALUES (:subject1, 0, 0, :now), (:subject2, 0, 0, :now)"
        " ON CONFLICT (subject) DO UPDATE SET subject = excluded.subject"
        f" RETURNING {', '.join(column.name for column in _COLUMNS)}"
    )
    .bindparams(bindparam("now", type_=_TABLE.c.window_started_at.type))
    .columns(*_COLUMNS)
)


def latest_block(client_id: ColumnElement[int]) -> ScalarSelect[Any]:
    """`blocked_for`'s question inside another statement, for the client whose id is the
    column given: the later block still running of its two subjects (parameters `source`,
    the source's subject or None for `key:ID`, as `Subjects.of` names them; and `now`)."""
    source = func.coalesce(
        bindparam("source", type_=_TABLE.c.subject.type),
        literal("key:") + cast(client_id, String),
    )
    client = literal("client:") + cast(client_id, String)
    return (
        select(func.max(_TABLE.c.blocked_until))
        .where(
            _TABLE.c.subject.in_([source, client]),
            _TABLE.c.blocked_until > bindparam("now", type_=_TABLE.c.blocked_until.type),
        )
        .scalar_subquery()
    )


def source_param(client_ip: str | None) -> str | None:
    """`latest_block`'s `source`: the address's subject, or None for the key's own."""
    return f"ip:{client_ip}" if client_ip else None


def seconds_until(until: datetime | str | None, now: datetime) -> int | None:
    """A block's end as read back (SQLite's max() returns the stored text, not the column
    type), as `blocked_for` answers it."""
    if isinstance(until, str):
        until = datetime.fromisoformat(until)
    if until is None:
        return None
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    return _seconds(until - now)


def _params(subjects: Subjects) -> dict[str, str]:
    return {"source": subjects.source, "client": subjects.client}


def blocked_for(connection: Connection, subjects: Subjects, now: datetime) -> int | None:
    """Seconds until both subjects may try again; None when neither is blocked (a plain read:
    the answer of a success, or a cheap early 429)."""
    latest = connection.execute(_LATEST_BLOCK, {**_params(subjects), "now": now})
    return seconds_until(latest.scalar(), now)


def locked_counters(session: Session, subjects: Subjects, now: datetime) -> list[Counter]:
    """The attempt's two counters, created if new, locked until the transaction ends."""
    first, second = sorted(subjects.both)
    rows = session.connection().execute(_TAKE, {"subject1": first, "subject2": second, "now": now})
    return [Counter(*row) for row in rows]


def save(session: Session, counters: Sequence[Counter]) -> None:
    """Write the counters back, in one call."""
    rows = [
        {"key": counter.subject, **{k: v for k, v in vars(counter).items() if k != "subject"}}
        for counter in counters
    ]
    session.connection().execute(_SAVE, rows)


def refused_for(counters: Sequence[Counter], now: datetime) -> int | None:
    blocks = [c.blocked_until for c in counters if c.blocked_until and c.blocked_until > now]
    return _seconds(max(blocks) - now) if blocks else None


def count_failure(counter: Counter, rule: Rule, now: datetime) -> bool:
    """One more failure; True when it starts a block."""
    if rule.window is not None and now - counter.window_started_at > rule.window:
        counter.failures, counter.window_started_at = 0, now
    counter.failures += 1
    if counter.failures < rule.limit:
        return False
    if counter.blocked_until is not None and now - counter.blocked_until > LONGEST_BLOCK:
        counter.strikes = 0  # an hour's calm since the last block: start again from a minute
    counter.blocked_until = now + min(FIRST_BLOCK * 2**counter.strikes, LONGEST_BLOCK)
    counter.strikes += 1
    return True


def should_tell_staff(counter: Counter, now: datetime) -> bool:
    """At most once an hour per client; marks the counter told."""
    if counter.told_at is not None and now - counter.told_at < TELL_STAFF_EVERY:
        return False
    counter.told_at = now
    return True


def clear(session: Session, subjects: Subjects) -> None:
    """A success: the source's counter goes (a source that succeeds leaves no row behind) and
    the client's run of failures ends. Both statements touch nothing when there is nothing to
    clear, so a stream of successes takes no row lock."""
    connection = session.connection()
    connection.execute(_FORGET_SOURCE, _params(subjects))
    connection.execute(_CLEAR_CLIENT, _params(subjects))


PRUNE_AFTER = LONGEST_BLOCK  # what "an hour's calm" forgets anyway (count_failure)


def prune(session: Session, now: datetime) -> int:
    """Forget the sources that have been quiet past every rule: their window is over and any
    block ended an hour ago, so a new failure would start from nothing anyway. Keeps the
    table the size of the last hour's failing addresses. Clients' counters stay (a few rows,
    and they hold when staff were last told)."""
    stale = now - PRUNE_AFTER
    result = session.connection().execute(
        delete(_TABLE).where(
            ~_TABLE.c.subject.startswith("client:"),
            _TABLE.c.window_started_at < stale,
            (_TABLE.c.blocked_until.is_(None)) | (_TABLE.c.blocked_until < stale),
        )
    )
    return rows_changed(result)


def prune_job(database: Database, clock: Callable[[], datetime]) -> None:
    """The scheduled prune (bot/runtime/process.py), in its own transaction."""
    with database.transaction() as session:
        prune(session, clock())
