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


class _Written:
    """Stands for the HTTP layer's "the answer is written" signal: records each wait."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        return True


def test_work_after_an_answer_waits_for_it_to_be_written_once(database: Database) -> None:
    """Issue 22: after an answer in the ack, the audit row and the session's release wait
    until the server has written the answer (one wait, not one per step)."""
    db, _ = _request(database)
    written = _Written()
    db.answer_leaving(written)  # type: ignore[arg-type]
    assert written.waits == 0  # nothing waits until there is work to do
    audit.record(db.writes, actor="U1", action="family.search")
    assert written.waits == 1
    db.close(None)
    assert written.waits == 1


def test_without_a_signal_nothing_waits(database: Database) -> None:
    """Socket Mode has no HTTP layer to say when the answer is written: no wait at all."""
    db, _ = _request(database)
    db.answer_leaving(None)
    audit.record(db.writes, actor="U1", action="family.search")
    db.close(None)
    with database.read_session() as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 1
