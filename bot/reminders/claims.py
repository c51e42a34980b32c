"""Claims that make a scheduled run happen once per local day (or ISO week) across restarts,
late starts and replicas: APScheduler's job store is per process (its FAQ: never share one), so
the database decides. A run claims its (kind, local date) ReminderRun row with INSERT ... ON
CONFLICT DO NOTHING inside a write transaction, and queues its work in that same transaction."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.db import rows_changed
from bot.delivery import keys
from bot.reminders.outcome import DAILY as DAILY  # re-exported: the digest run's kind
from models import (
    OutgoingWork,
    ReminderRun,
    WorkKind,
    WorkStatus,
)

CLAIM_LEASE = timedelta(minutes=15)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def _insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def enqueue_once(
    session: Session,
    *,
    kind: WorkKind,
    dedupe_key: str,
    payload: dict[str, Any],
    now: datetime,
    family_id: int | None = None,
) -> int | None:
    """Queue outgoing work unless its dedupe key exists; racing replicas skip instead of
    failing the transaction on the unique key. Returns the new work's id, or None."""
    statement = (
        _insert(session, OutgoingWork)
        .values(
            kind=kind,
            dedupe_key=dedupe_key,
            family_id=family_id,
            payload=json.dumps(payload, default=str),
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(col(OutgoingWork.id))
    )
    return session.execute(statement).scalar_one_or_none()


def claim_run(
    session: Session,
    *,
    local_date: str,
    worker: str,
    now: datetime,
    force: bool,
    kind: str = DAILY,
    work_prefix: str = keys.DIGEST,
) -> ReminderRun | None:
    """Claim the (kind, local_date) run, or take over one that failed for good; None when
    another claim holds it. `work_prefix` starts the dedupe keys of the run's outgoing work
    ("<prefix>:<local_date>:…"): a run with work still queued is never taken over."""
    claim = {"claimed_by": worker, "claimed_at": now, "claimed_until": now + CLAIM_LEASE}
    inserted = session.execute(
        _insert(session, ReminderRun)
        .values(kind=kind, local_date=local_date, entries=0, **claim)
        .on_conflict_do_nothing(index_elements=["kind", "local_date"])
        .returning(col(ReminderRun.id))
    ).scalar_one_or_none()
    if inserted is None:
        takeover = update(ReminderRun).where(
            col(ReminderRun.kind) == kind, col(ReminderRun.local_date) == local_date
        )
        if not force:
            # Only a claim that posted nothing, whose lease lapsed and whose messages all
            # failed for good: then posting again cannot double anything.
            still_queued = exists().where(
                col(OutgoingWork.dedupe_key).startswith(
                    keys.run_work_prefix(work_prefix, local_date), autoescape=True
                ),
                col(OutgoingWork.status) == WorkStatus.PENDING,
            )
            takeover = takeover.where(
                col(ReminderRun.posted_at).is_(None),
                or_(col(ReminderRun.claimed_until).is_(None), col(ReminderRun.claimed_until) < now),
                ~still_queued,
            )
        if rows_changed(session.execute(takeover.values(posted_at=None, entries=0, **claim))) != 1:
            return None
    return session.exec(
        select(ReminderRun).where(ReminderRun.kind == kind, ReminderRun.local_date == local_date)
    ).one()
