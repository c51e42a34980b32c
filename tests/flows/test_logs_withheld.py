"""No SQL parameters or payloads in the log (SPEC §12): a database error inside each background
job — the outbox worker, the digest, the weekly report, the PIN-letter sweep, the name-keys
refresh — is logged by type and place only, on SQLite and PostgreSQL.

A marker is planted in what each job writes (a thread message's text, a child's name in the
digest, a letter's file id), and the database is made to refuse exactly the statements that
carry it, with an error message that quotes it as PostgreSQL's own messages quote refused
values ("DETAIL: Key (…)=(…)"); the reads of the two jobs that write nothing of a family's
fail the same way. The log, written through pinbot's own formatter as `pinbot run` writes it,
must show every job's failure and never the marker."""

from __future__ import annotations

import logging
import secrets
import time as timer
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from bot import logs
from bot.db import Database
from bot.delivery import outbox
from bot.reminders.weekly import ADOPTION
from bot.runtime.process import start_background
from models import Appointment, IssueBatch, LetterFile
from tests.support.factories import make_family, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.logs import Log
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack, build_stack

MARKER = f"Zqx{secrets.token_hex(4)}"
# The next Monday, 15:00 UTC (10:00 in New York, past REMINDER_TIME): after anything queued now.
_TODAY = datetime.now(UTC).date()
MONDAY = datetime.combine(_TODAY + timedelta(days=7 - _TODAY.weekday()), time(15), UTC)
THREAD = ("C0FRONTDESK", "1700000000.000100")
EXPECTED = (
    "outbox sweep failed",
    'Job "daily reminders',
    'Job "weekly adoption report',
    'Job "PIN-letter sweep',
    "refresh_name_keys",
)


def test_formatter_withholds_messages_and_quoted_exception_text() -> None:
    formatter = logs.FieldsFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        try:
            raise KeyError(f"payload {MARKER}")
        except KeyError as inner:
            raise RuntimeError(f"while saving {MARKER}") from inner
    except RuntimeError as error:
        record = logging.LogRecord(
            "slack_bolt.App", logging.ERROR, __file__, 1,
            "Failed to run listener function (error: %s)", (error,), (type(error), error, None),
        )  # fmt: skip
        record.exc_info = (type(error), error, error.__traceback__)
    line = formatter.format(record)
    assert MARKER not in line
    assert "RuntimeError" in line and "KeyError" in line and "test_logs_withheld.py" in line
    assert "message withheld" in line


def _local(moment: datetime) -> datetime:
    """A wall-clock time in the practice's zone, as appointments are kept."""
    return moment.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)


def _plant(stack: Stack) -> None:
    """Data whose jobs write the marker: a child named with it who has an appointment today
    (the digest lists them), a letter uploaded two days ago under a file id with it (the sweep
    queues its deletion), a thread message with it waiting to be posted (the worker)."""
    with stack.database.transaction() as session:
        family = make_family(session, "LOG-1")
        child = make_patient(session, family, MARKER, date(2019, 5, 5), last=MARKER)
        session.add(
            Appointment(patient_id=child.id or 0, starts_at=_local(MONDAY) + timedelta(hours=4))
        )
        batch = IssueBatch(
            family_id=family.id or 0, idempotency_key="view:VLOG", issued_by="U0STAFF01",
            mode="print_only", channel_id=THREAD[0], thread_ts=THREAD[1],
        )  # fmt: skip
        session.add(batch)
        session.flush()
        session.add(
            LetterFile(
                batch_id=batch.id or 0,
                file_id=f"F{MARKER}",
                channel_id=THREAD[0],
                thread_ts=THREAD[1],
                uploaded_at=MONDAY - timedelta(days=2),
            )
        )
        outbox.post_in_thread(
            session, dedupe_key="log:1", channel_id=THREAD[0], thread_ts=THREAD[1], text=MARKER
        )


def _refuse_what_carries_the_marker(stack: Stack) -> list[str]:
    """The database refuses every statement whose parameters hold the marker, and the
    statements of the jobs that write nothing of a family's (the weekly report's and the
    name keys' reads, the worker's claim), quoting the marker as a server quotes values."""
    dbapi = stack.database.engine.dialect.loaded_dbapi
    refused: list[str] = []

    def refuse(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        carries = MARKER in repr(parameters)
        weekly_read = ADOPTION in repr(parameters) and "reminderrun" in statement.lower()
        name_keys_read = "max(patient.id)" in statement.lower()
        outbox_claim = statement.startswith("UPDATE outgoingwork SET attempts=")
        if carries or weekly_read or name_keys_read or outbox_claim:
            refused.append(statement.split()[0])
            raise dbapi.DataError(f"DETAIL: Key (value)=({MARKER}) is refused.")

    event.listen(stack.database.engine, "before_cursor_execute", refuse)
    return refused


@pytest.fixture
def stack(database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer) -> Iterator[Stack]:
    """With a digest channel, so the digest job writes the children it lists."""
    yield from build_stack(database_url, fake_slack, smtp_server, REMINDER_CHANNEL_ID="C0DIGEST")


def test_a_database_error_in_each_background_job_logs_no_parameters_or_payload(
    stack: Stack, pinbot_log: Log
) -> None:
    _plant(stack)
    stack.services.clock = stack.services.outbox.clock = lambda: MONDAY
    refused = _refuse_what_carries_the_marker(stack)
    worker, scheduler = start_background(stack.services)
    try:
        for job in scheduler.get_jobs():  # every job now, not at its hour
            job.modify(next_run_time=datetime.now(UTC))
        worker.kick()
        deadline = timer.monotonic() + 20
        while timer.monotonic() < deadline and not all(e in pinbot_log.said() for e in EXPECTED):
            timer.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
        worker.stop()
    said = pinbot_log.said()
    missing = [expected for expected in EXPECTED if expected not in said]
    assert not missing, f"jobs that never hit the error: {missing}\n{said}"
    assert refused, "the database refused nothing"
    assert MARKER.lower() not in said.lower(), said
    assert "message withheld" in said and "DataError" in said


def test_every_engine_hides_sql_parameters(database_url: str) -> None:
    database = Database(database_url)
    try:
        engines = [database.engine, database.lookup_engine]
        assert all(engine.hide_parameters for engine in engines if engine is not None)
    finally:
        database.dispose()
