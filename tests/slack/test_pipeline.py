"""The request pipeline's database (handlers/pipeline.py): a commit wakes the delivery worker
only when the transaction queued delivery work, so a lookup (an audit row) costs the worker
no sweep while staff are busy, and a queued message is never left waiting for the timer."""

from __future__ import annotations

from sqlmodel import func, select

from bot import audit
from bot.db import Database
from bot.delivery import outbox
from handlers.pipeline import RequestDatabase
from models import AuditEvent, OutgoingWork, WorkKind


def _request(database: Database) -> tuple[RequestDatabase, list[str]]:
    kicks: list[str] = []
    return RequestDatabase(database, on_commit=lambda: kicks.append("kick")), kicks


def test_a_commit_that_queued_nothing_does_not_wake_the_worker(database: Database) -> None:
    db, kicks = _request(database)
    audit.record(db.writes, actor="U1", action="family.lookup", family_id=1)
    db.close(None)
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 1
    assert kicks == []


def test_a_commit_that_queued_work_wakes_the_worker_once(database: Database) -> None:
    db, kicks = _request(database)
    outbox.enqueue(
        db.writes, kind=WorkKind.SLACK_MESSAGE, dedupe_key="test:1", payload={"text": "hi"}
    )
    db.commit()  # the ack
    audit.record(db.writes, actor="U1", action="family.lookup")  # a new transaction
    db.close(None)  # the listener's end: this one queued nothing
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(OutgoingWork)).one() == 1
    assert kicks == ["kick"]


def test_rolled_back_work_wakes_nobody(database: Database) -> None:
    db, kicks = _request(database)
    outbox.enqueue(
        db.writes, kind=WorkKind.SLACK_MESSAGE, dedupe_key="test:2", payload={"text": "hi"}
    )
    db.close(RuntimeError("the listener failed"))
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(OutgoingWork)).one() == 0
    assert kicks == []
