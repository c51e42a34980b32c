"""Faults (issue 6, item 5), on SQLite and PostgreSQL: SMTP refusing, stalling and failing after
DATA; Slack answering 429 + Retry-After, 500 and dropping connections on chat.postMessage,
views.open and each step of the file upload; the database unreachable at start and failing in
the middle of a request; a process killed by SIGKILL between committing a batch and delivering
it. Every time: retried or given up as it should be, the thread told of a final failure, nothing
sent twice, nothing half-written, PINs never re-issued to recover.

slack_sdk's retry handlers wait with time.sleep (Retry-After, backoff); the `slept` fixture
records those waits instead of waiting, so a wait is checked without costing seconds (the
outbox's client has no 429 handler: Retry-After moves the work's next attempt instead), and the
outbox runs on an injected clock.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import slack_sdk.http_retry.builtin_handlers
import slack_sdk.http_retry.handler
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlalchemy import create_engine, event, func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel, select

import bot.issuing.issuance
from bot.db import normalize_url
from bot.delivery.outbox import (
    DEFAULT_MAX_ATTEMPTS,
    LEASE,
    LETTERS_ERASED,
    LETTERS_HELD,
    erase_held_letters,
    post_in_thread,
    retry_upload,
)
from bot.delivery.performers import Outcome
from bot.delivery.smtp import PORT_HINT
from bot.errors import NotAllowed
from bot.issuing.gateway import verify_pin
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueRequest
from handlers.ids import IssueIds
from handlers.payloads import FamilyRef
from models import AuditEvent, IssueBatch, OutgoingWork, Pin, WorkKind, WorkStatus, utcnow
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.core.runtime.test_cli import REQUIRED, UNREACHABLE_PG, pinbot
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import UPLOAD, FakeSlack
from tests.support.paths import REPO_ROOT
from tests.support.pg import scratch_database
from tests.support.slack_requests import checkboxes_value, http_request, static_select_value
from tests.support.smtp_server import HOST, SmtpServer, free_port
from tests.support.stack import Stack, build_stack, stack_env

THREAD = ("C0FRONTDESK", "1700000000.000100")
PIN_PATTERN = re.compile(r"\b([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\b")
DB_SENTENCE = "pinbot can't reach its database right now"


# --------------------------------------------------------------------------- fixtures


@dataclass
class FlakySmtp(SmtpServer):
    """The test SMTP server, told how to answer the next DATA commands."""

    data_replies: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 Try again later"
    # Take the message (queued for delivery, as an MTA does), then say so only this late.
    data_delays: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        reply = await super().handle_DATA(server, session, envelope)
        if self.data_delays:
            await asyncio.sleep(self.data_delays.pop(0))
        return reply


@pytest.fixture
def smtp() -> Iterator[FlakySmtp]:
    server = FlakySmtp(port=free_port())
    controller = Controller(server, hostname=server.host, port=server.port, ready_timeout=10)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def stack(database_url: str, fake_slack: FakeSlack, smtp: FlakySmtp) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp)


@pytest.fixture(autouse=True)
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits slack_sdk's retry handlers asked for, instead of waiting them."""
    waits: list[float] = []
    fake_time = SimpleNamespace(sleep=waits.append)
    monkeypatch.setattr(slack_sdk.http_retry.builtin_handlers, "time", fake_time)
    monkeypatch.setattr(slack_sdk.http_retry.handler, "time", fake_time)
    return waits


class Clock:
    """Real time plus an offset the test moves forward (work queued "now" is due at once)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(stack: Stack) -> Clock:
    clock = Clock()
    stack.services.outbox.clock = clock
    return clock


@pytest.fixture
def family(stack: Stack) -> dict[str, int]:
    with stack.database.transaction() as session:
        family = make_family(session, "FT-1")
        mother = make_guardian(session, family, "Sage", "Faultline", email="sage@example.com")
        ids = {
            "family": family.id,
            "mother": mother.id,
            "rue": make_patient(session, family, "Rue", date(2018, 1, 1), last="Faultline").id,
            "tam": make_patient(session, family, "Tam", date(2021, 2, 2), last="Faultline").id,
        }
    return {k: v or 0 for k, v in ids.items()}


def issue(stack: Stack, family: dict[str, int], key: str = "view:VFAULT") -> int:
    with stack.database.transaction() as session:
        result = issue_pins(
            session,
            IssueRequest(
                family_id=family["family"],
                patient_ids=(family["rue"], family["tam"]),
                recipient_guardian_id=family["mother"],
                emailed_patient_id=None,
                issued_by="U0STAFF01",
                idempotency_key=key,
                channel_id=THREAD[0],
                thread_ts=THREAD[1],
            ),
            policy=stack.services.issue_policy(),
            gateway=stack.services.gateway,
        )
    return result.batch_id


def work(stack: Stack, kind: WorkKind) -> OutgoingWork:
    with stack.database.read_session() as session:
        return session.exec(select(OutgoingWork).where(OutgoingWork.kind == kind)).one()


def thread_posts(stack: Stack) -> list[dict[str, Any]]:
    return [
        call.args
        for call in stack.fake_slack.calls_to("chat.postMessage")
        if call.ok and call.args.get("thread_ts") == THREAD[1]
    ]


def settle(stack: Stack, clock: Clock, rounds: int = 24) -> None:
    """Deliver, an hour later deliver again, ...: past every backoff (the schedule spans about
    13 h) to a final outcome."""
    for _ in range(rounds):
        stack.deliver()
        clock.advance(hours=1)


def point_smtp_at(stack: Stack, port: int) -> None:
    stack.services.outbox.settings = replace(
        stack.settings, smtp=replace(stack.settings.smtp, port=port)
    )


def pins_in_pdf(data: bytes) -> list[str]:
    return [
        m
        for page in PdfReader(io.BytesIO(data)).pages
        for m in PIN_PATTERN.findall(page.extract_text())
    ]


def assert_pins_are_the_issued_ones(stack: Stack, printed: list[str]) -> None:
    with stack.database.read_session() as session:
        pins = session.exec(select(Pin)).all()
    assert len(pins) == 2 and len(printed) == 2  # nothing re-issued
    for pin in pins:
        assert any(verify_pin(p, pin.pin_hash) for p in printed)


def count(stack: Stack, model: type[SQLModel]) -> int:
    with stack.database.read_session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


# --------------------------------------------------------------------------- SMTP


def test_smtp_451_after_data_is_retried_and_sent_once(
    stack: Stack, smtp: FlakySmtp, family: dict[str, int], clock: Clock
) -> None:
    smtp.data_replies = ["451 4.3.0 Try again later"]
    issue(stack, family)

    stack.deliver()
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert (email.status, email.attempts) == (WorkStatus.PENDING, 1)
    assert email.last_error == "SMTP server answered 451 (SMTPDataError)"
    assert smtp.received == []

    settle(stack, clock)
    assert len(smtp.received) == 1
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert (email.status, email.attempts) == (WorkStatus.DONE, 2)
    assert json.loads(email.payload)["pin"] is None


def test_smtp_554_after_data_is_given_up_at_once_and_told(
    stack: Stack, smtp: FlakySmtp, family: dict[str, int], clock: Clock
) -> None:
    smtp.data_replies = ["554 5.7.1 Message rejected as spam"]
    issue(stack, family)

    settle(stack, clock)

    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert (email.status, email.attempts) == (WorkStatus.FAILED, 1)  # permanent: no retry
    assert json.loads(email.payload)["pin"] is None
    assert smtp.received == []
    told = [p["text"] for p in thread_posts(stack) if "could not be delivered" in p["text"]]
    assert told == [
        ":warning: The welcome email could not be delivered after 1 attempt(s) "
        "(SMTP server answered 554 (SMTPDataError)). The PINs themselves are issued; "
        "re-issue from the family card to print new letters."
    ]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_smtp_server_that_never_answers_times_out_then_delivers_once(
    stack: Stack, smtp: FlakySmtp, family: dict[str, int], clock: Clock, silent_port: int
) -> None:
    stack.services.outbox.smtp_timeout = 0.3
    point_smtp_at(stack, silent_port)
    issue(stack, family)

    started = time.monotonic()
    stack.deliver()
    assert time.monotonic() - started < 5  # one short timeout, not the 20 s default
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert email.status == WorkStatus.PENDING
    assert email.last_error == (
        f"SMTP server at {HOST}:{silent_port} did not answer in time: {PORT_HINT}"
    )

    point_smtp_at(stack, smtp.port)
    settle(stack, clock)
    assert len(smtp.received) == 1
    assert work(stack, WorkKind.WELCOME_EMAIL).status == WorkStatus.DONE


def test_smtp_stalling_after_data_resends_the_identical_message(
    stack: Stack, smtp: FlakySmtp, family: dict[str, int], clock: Clock
) -> None:
    """The one unavoidable duplicate: the server took the message but answered after our
    timeout, so the outbox can't know and retries. The retry is the same message (same
    Message-ID and bytes), which mail systems treat as one."""
    stack.services.outbox.smtp_timeout = 0.3
    smtp.data_delays = [1.0]
    issue(stack, family)

    stack.deliver()
    assert work(stack, WorkKind.WELCOME_EMAIL).status == WorkStatus.PENDING
    assert len(smtp.received) == 1  # the server has it; we timed out waiting to hear so
    settle(stack, clock)

    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert len(smtp.received) == 2, (email.status, email.attempts, email.last_error)
    first, second = (r.message for r in smtp.received)
    assert first["Message-ID"] == second["Message-ID"]
    assert first.get_body(("plain",)).get_content() == second.get_body(("plain",)).get_content()
    assert work(stack, WorkKind.WELCOME_EMAIL).status == WorkStatus.DONE


# --------------------------------------------------------------------------- Slack


def _queue_message(stack: Stack, text_: str) -> None:
    with stack.database.transaction() as session:
        post_in_thread(
            session,
            dedupe_key=f"test:{text_}",
            channel_id=THREAD[0],
            thread_ts=THREAD[1],
            text=text_,
        )


@pytest.mark.parametrize(
    ("fault", "deliveries"),
    [
        pytest.param({"status": 429, "retry_after": 90}, 2, id="429-retry-after"),
        pytest.param({"drop_connection": True}, 1, id="dropped"),
        pytest.param({"status": 500, "times": 3}, 2, id="500-thrice"),
    ],
)
def test_chat_post_message_faults_post_exactly_once(
    stack: Stack, clock: Clock, slept: list[float], fault: dict[str, Any], deliveries: int
) -> None:
    stack.fake_slack.fail_next("chat.postMessage", **fault)
    _queue_message(stack, "hello thread")

    stack.deliver()
    message = work(stack, WorkKind.SLACK_MESSAGE)
    # slack_sdk's handlers absorb a drop inside one delivery; three 500s outlast them (two
    # retries) and the outbox tries again later; a 429 is rescheduled, never slept.
    assert message.status == (WorkStatus.DONE if deliveries == 1 else WorkStatus.PENDING)
    if "retry_after" in fault:
        assert slept == []  # no thread waited
        assert message.next_attempt_at >= clock() + timedelta(seconds=89)
        clock.advance(seconds=60)
        assert stack.deliver() == 0  # Retry-After honoured: not before 90 s
        clock.advance(seconds=31)
    settle(stack, clock)
    assert [p["text"] for p in thread_posts(stack)] == ["hello thread"]
    assert work(stack, WorkKind.SLACK_MESSAGE).attempts == deliveries


UPLOAD_FAULTS = [
    pytest.param(
        "files.getUploadURLExternal",
        {"status": 500},
        "files.getUploadURLExternal: Slack said internal_error",
        id="get-url-500",
    ),
    pytest.param(
        UPLOAD,
        {"drop_connection": True},
        "sending the file: Slack unreachable",
        id="upload-post-dropped",
    ),
    pytest.param(
        UPLOAD, {"status": 503}, "sending the file: Slack answered HTTP 503", id="upload-post-503"
    ),
    pytest.param(
        "files.completeUploadExternal",
        {"status": 429, "retry_after": 7},
        "files.completeUploadExternal: Slack said ratelimited",
        id="complete-429",
    ),
]


@pytest.mark.parametrize(("step", "fault", "error"), UPLOAD_FAULTS)
def test_upload_step_failing_for_good_is_told_and_retry_upload_reposts_the_same_pins(
    stack: Stack,
    family: dict[str, int],
    clock: Clock,
    slept: list[float],
    step: str,
    fault: dict[str, Any],
    error: str,
) -> None:
    stack.fake_slack.fail_next(step, times=1000, **fault)
    batch_id = issue(stack, family)

    settle(stack, clock)

    upload = work(stack, WorkKind.LETTERS_UPLOAD)
    assert (upload.status, upload.attempts) == (WorkStatus.FAILED, DEFAULT_MAX_ATTEMPTS)
    assert upload.last_error.startswith(error)
    assert upload.result == LETTERS_HELD  # the bounded exception: letters kept for a retry
    assert all(letter["pin"] for letter in json.loads(upload.payload)["letters"])
    assert stack.fake_slack.uploaded_files() == []
    if "retry_after" in fault:
        assert slept == []  # rescheduled, not slept in the worker thread
    posted = next(
        c
        for c in stack.fake_slack.calls_to("chat.postMessage")
        if c.ok and "could not be uploaded" in c.args["text"]
    )
    notice, notice_ts = posted.args, posted.response["ts"]
    assert notice["thread_ts"] == THREAD[1]
    assert f"after {DEFAULT_MAX_ATTEMPTS} attempt(s) ({error}" in notice["text"]
    button = next(e for b in notice["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == IssueIds.RETRY_UPLOAD

    stack.fake_slack.reset()  # Slack is back
    stack.click(
        IssueIds.RETRY_UPLOAD,
        button["value"],
        channel_id=THREAD[0],
        message_ts=notice_ts,
        thread_ts=THREAD[1],
    )
    said = stack.fake_slack.wait_for("chat.postEphemeral")[0].args["text"]
    assert said == "Uploading the same PIN letters again (no new PINs)."
    stack.deliver()

    files = stack.fake_slack.uploaded_files()
    assert len(files) == 1 and files[0].thread_ts == THREAD[1]
    assert_pins_are_the_issued_ones(stack, pins_in_pdf(files[0].data))
    assert count(stack, IssueBatch) == 1
    upload = work(stack, WorkKind.LETTERS_UPLOAD)
    assert upload.status == WorkStatus.DONE
    assert all(letter["pin"] is None for letter in json.loads(upload.payload)["letters"])
    with stack.database.read_session() as session:
        retried = session.exec(select(AuditEvent).where(AuditEvent.action == "letters.retry")).one()
    assert json.loads(retried.details)["batch_id"] == batch_id

    stack.click(
        IssueIds.RETRY_UPLOAD,
        button["value"],
        channel_id=THREAD[0],
        message_ts=notice_ts,
        thread_ts=THREAD[1],
    )  # a late second click
    said = stack.fake_slack.wait_for("chat.postEphemeral", count=2)[1].args["text"]
    assert said == "The PIN letters were already uploaded to this thread."
    stack.deliver()
    assert len(stack.fake_slack.uploaded_files()) == 1


def _held_upload(stack: Stack, family: dict[str, int], clock: Clock) -> OutgoingWork:
    """A letters upload given up at once (Slack: channel_not_found, permanent)."""
    stack.fake_slack.fail_next("files.getUploadURLExternal", error="channel_not_found")
    issue(stack, family)
    stack.deliver()
    upload = work(stack, WorkKind.LETTERS_UPLOAD)
    assert (upload.status, upload.attempts, upload.result) == (WorkStatus.FAILED, 1, LETTERS_HELD)
    return upload


def _retry(
    stack: Stack, upload: OutgoingWork, *, now: datetime, thread: tuple[str, str] = THREAD
) -> str:
    with stack.database.transaction() as session:
        return retry_upload(
            session,
            work_id=upload.id or 0,
            channel_id=thread[0],
            thread_ts=thread[1],
            requested_by="U0STAFF01",
            now=now,
            settings=stack.settings,
        ).message


def test_retry_upload_is_refused_elsewhere_after_the_hold_or_once_pins_are_replaced(
    stack: Stack, family: dict[str, int], clock: Clock
) -> None:
    upload = _held_upload(stack, family, clock)
    issued = upload.created_at

    with pytest.raises(NotAllowed, match="another family's thread"):
        _retry(stack, upload, now=issued, thread=(THREAD[0], "1700000000.999999"))
    assert _retry(stack, upload, now=issued + timedelta(hours=1)).startswith("Uploading")
    assert _retry(stack, upload, now=issued + timedelta(hours=1)).startswith(
        "The upload is already queued"
    )  # a double click queues nothing twice

    # Re-issuing for one child voids these letters: they would print a revoked PIN.
    with stack.database.transaction() as session:
        row = session.get(OutgoingWork, upload.id)
        assert row is not None
        row.status, row.result = WorkStatus.FAILED, LETTERS_HELD
    with stack.database.transaction() as session:
        issue_pins(
            session,
            IssueRequest(
                family_id=family["family"],
                patient_ids=(family["tam"],),
                recipient_guardian_id=None,
                emailed_patient_id=None,
                issued_by="U0STAFF01",
                idempotency_key="view:VAGAIN",
            ),
            policy=stack.services.issue_policy(),
            gateway=stack.services.gateway,
        )
    assert "replaced by a newer issue" in _retry(stack, upload, now=issued + timedelta(hours=2))
    upload = work(stack, WorkKind.LETTERS_UPLOAD)
    assert upload.result == LETTERS_ERASED
    assert all(letter["pin"] is None for letter in json.loads(upload.payload)["letters"])


@pytest.mark.parametrize("ttl_hours", ["0", "6"])
def test_held_letters_are_erased_when_the_hold_ends(
    database_url: str, fake_slack: FakeSlack, smtp: FlakySmtp, ttl_hours: str
) -> None:
    # PIN_LETTER_TTL_HOURS after issue; 0 means PDFs stay in Slack, but PINs here last 24 h.
    hold = int(ttl_hours) or 24
    for stack in build_stack(database_url, fake_slack, smtp, PIN_LETTER_TTL_HOURS=ttl_hours):
        with stack.database.transaction() as session:
            family = make_family(session, "FT-9")
            ids = {
                "family": family.id or 0,
                "rue": make_patient(session, family, "Rue", date(2018, 1, 1)).id or 0,
                "tam": make_patient(session, family, "Tam", date(2021, 2, 2)).id or 0,
            }
        stack.fake_slack.fail_next("files.getUploadURLExternal", error="channel_not_found")
        with stack.database.transaction() as session:
            issue_pins(
                session,
                IssueRequest(
                    family_id=ids["family"],
                    patient_ids=(ids["rue"], ids["tam"]),
                    recipient_guardian_id=None,
                    emailed_patient_id=None,
                    issued_by="U0STAFF01",
                    idempotency_key="view:VHOLD",
                    channel_id=THREAD[0],
                    thread_ts=THREAD[1],
                ),
                policy=stack.services.issue_policy(),
                gateway=stack.services.gateway,
            )
        stack.deliver()
        stack.deliver()  # the notice the failure queued
        upload = work(stack, WorkKind.LETTERS_UPLOAD)
        assert upload.result == LETTERS_HELD
        notice = next(p for p in thread_posts(stack) if "could not be uploaded" in p["text"])
        assert "Retry upload" in notice["text"]

        just_before = upload.created_at + timedelta(hours=hold, minutes=-1)
        assert erase_held_letters(stack.database, stack.settings, now=just_before) == 0
        at_end = upload.created_at + timedelta(hours=hold)
        assert erase_held_letters(stack.database, stack.settings, now=at_end) == 1
        upload = work(stack, WorkKind.LETTERS_UPLOAD)
        assert upload.result == LETTERS_ERASED
        assert all(letter["pin"] is None for letter in json.loads(upload.payload)["letters"])
        assert f"erased {hold} h after issue" in _retry(stack, upload, now=at_end)


def _open_dialog(stack: Stack, family: dict[str, int]) -> None:
    stack.click(
        IssueIds.OPEN_DIALOG, FamilyRef(family_id=family["family"]).dump(), message_ts=THREAD[1]
    )


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 429, "retry_after": 2}, id="429-retry-after"),
        pytest.param({"drop_connection": True}, id="dropped"),
    ],
)
def test_views_open_rides_out_a_429_or_a_dropped_connection(
    stack: Stack, family: dict[str, int], slept: list[float], fault: dict[str, Any]
) -> None:
    stack.fake_slack.fail_next("views.open", **fault)

    _open_dialog(stack, family)

    calls = stack.fake_slack.wait_for("views.open", count=2)
    assert [c.ok for c in calls] == [False, True]
    assert slept and slept[0] >= fault.get("retry_after", 0)


def test_views_open_failing_for_good_tells_the_user(stack: Stack, family: dict[str, int]) -> None:
    stack.fake_slack.fail_next("views.open", status=500, times=3)

    _open_dialog(stack, family)

    told = stack.fake_slack.wait_for("chat.postEphemeral")[0].args
    assert told["user"] == "U0STAFF01" and told["channel"] == THREAD[0]
    assert "Slack refused pinbot's request" in told["text"]
    assert len(stack.fake_slack.calls_to("views.open")) == 3  # the first try and two retries
    assert stack.fake_slack.calls_to("views.open")[-1].ok is False


# --------------------------------------------------------------------------- the database


def test_database_unreachable_at_start_is_one_line(tmp_path: Path) -> None:
    tokens = {**REQUIRED, "SLACK_BOT_TOKEN": "xoxb-1-2-test", "SLACK_SIGNING_SECRET": "s"}
    for url, where in (
        (UNREACHABLE_PG, "postgresql"),
        (f"sqlite:///{tmp_path}/no/such/dir/pinbot.db", "sqlite"),
    ):
        run = pinbot(tmp_path, "run", DATABASE_URL=url, **tokens)
        assert run.code == 1, run
        assert len(run.said) == 1, run
        assert run.said[0].startswith(f"Can't reach the database at {where}"), run
        assert "SEKRIT" not in run.output


def _fail_inserts_into(engine: Engine, table: str) -> Callable[[], None]:
    """Make the database fail (connection lost) at the first INSERT into `table`, mid-way
    through whatever transaction is running. Returns the undo."""

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()}"):
            raise OperationalError(
                statement, None, ConnectionError("server closed the connection unexpectedly")
            )

    event.listen(engine, "before_cursor_execute", before)
    return lambda: event.remove(engine, "before_cursor_execute", before)


def test_database_failing_mid_submission_tells_the_user_and_writes_nothing(
    stack: Stack, family: dict[str, int]
) -> None:
    _open_dialog(stack, family)
    view = stack.fake_slack.wait_for("views.open")[0].response["view"]
    values = {
        IssueIds.CHILDREN: {
            IssueIds.CHILDREN_ACTION: checkboxes_value([str(family["rue"]), str(family["tam"])])
        },
        IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(str(family["mother"]))},
        IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
    }
    undo = _fail_inserts_into(stack.database.engine, "outgoingwork")  # after batch and PINs

    response = stack.submit(view, values)

    assert response.status == 200
    answer = json.loads(response.body)
    assert answer["response_action"] == "errors"
    assert any(DB_SENTENCE in sentence for sentence in answer["errors"].values())
    assert (count(stack, IssueBatch), count(stack, Pin), count(stack, OutgoingWork)) == (0, 0, 0)

    undo()  # the database is back: the same dialog, submitted again, works
    assert stack.submit(view, values).status == 200
    assert (count(stack, IssueBatch), count(stack, Pin)) == (1, 2)


@pytest.fixture
def doomed_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of its own, for a test that drops it under a running bot."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_database(PG_URL, "pinbot_doomed", migrate=True) as url:
        yield url


def test_postgres_dropped_under_a_running_bot(
    doomed_postgres_url: str, fake_slack: FakeSlack, smtp: FlakySmtp
) -> None:
    for stack in build_stack(doomed_postgres_url, fake_slack, smtp):
        with stack.database.transaction() as session:
            make_patient(
                session, make_family(session, "FT-2"), "Rue", date(2018, 1, 1), last="Vanishwood"
            )
        name = normalize_url(doomed_postgres_url).database
        admin = create_engine(normalize_url(PG_URL or ""), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:  # kills the bot's pooled connections too
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

        response = stack.command("/family", "vanishwood")

        assert response.status == 200
        assert DB_SENTENCE in json.loads(response.body)["text"]
        health = http_request(stack.sender.url.replace("/slack/events", "/healthz"))
        assert health.status == 503


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_recording_a_sent_email_does_not_wait_for_a_reissue_of_the_family(
    stack: Stack, family: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by bench/soak.py: the outbox records an email as sent (and queues the thread's
    "delivered" note, a row referencing the family) while a re-issue holds the family's lock
    and is about to cancel that very email. With FOR UPDATE on the family the two deadlocked;
    the issuance now takes FOR NO KEY UPDATE, which foreign-key checks pass."""
    issue(stack, family)
    outbox = stack.services.outbox
    claimed = outbox._claim(work(stack, WorkKind.WELCOME_EMAIL).id or 0)  # mid-send
    assert claimed is not None
    locked, go = threading.Event(), threading.Event()
    real_load = bot.issuing.issuance.load_family

    def paused_load(*args: Any, **kwargs: Any) -> Any:
        locked.set()  # the family row is locked by now
        go.wait(10)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(bot.issuing.issuance, "load_family", paused_load)
    reissue = threading.Thread(target=issue, args=(stack, family, "view:VAGAIN"))
    reissue.start()
    assert locked.wait(10)
    threading.Timer(3.0, go.set).start()  # a lock wait must not hang the suite

    started = time.monotonic()
    outbox._record_success(
        claimed,
        Outcome(
            {"message_id": "<m@x>"},
            lambda session: post_in_thread(
                session,
                dedupe_key="sent:test",
                channel_id=THREAD[0],
                thread_ts=THREAD[1],
                text="delivered",
                family_id=family["family"],
            ),
        ),
    )
    took = time.monotonic() - started
    go.set()
    reissue.join(10)

    assert took < 1.0  # not queued behind the re-issue
    assert count(stack, IssueBatch) == 2
    with stack.database.read_session() as session:
        first = session.get(OutgoingWork, claimed.id)
    assert first is not None and first.status == WorkStatus.DONE  # recorded as what happened


# --------------------------------------------------------------------------- SIGKILL


def _crash(stack: Stack, database_url: str, *args: str) -> None:
    env = {**os.environ, **stack_env(database_url, stack.fake_slack, stack.smtp)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_worker", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_sigkill_after_commit_then_restart_delivers_once_without_new_pins(
    stack: Stack, database_url: str, family: dict[str, int], clock: Clock
) -> None:
    _crash(
        stack,
        database_url,
        "after-commit",
        str(family["family"]),
        str(family["mother"]),
        f"{family['rue']},{family['tam']}",
        *THREAD,
    )

    # The commit survived the kill; nothing was delivered.
    assert (count(stack, IssueBatch), count(stack, Pin)) == (1, 2)
    assert stack.smtp.received == [] and stack.fake_slack.uploaded_files() == []

    settle(stack, clock)  # the restarted bot's worker

    assert len(stack.smtp.received) == 1
    files = stack.fake_slack.uploaded_files()
    assert len(files) == 1 and files[0].thread_ts == THREAD[1]
    printed = pins_in_pdf(files[0].data)
    assert_pins_are_the_issued_ones(stack, printed)
    body = stack.smtp.received[0].message.get_body(("plain",)).get_content()
    assert PIN_PATTERN.search(body).group(1) in printed  # type: ignore[union-attr]
    with stack.database.read_session() as session:
        statuses = session.exec(select(OutgoingWork.kind, OutgoingWork.status)).all()
    assert {(k, s) for k, s in statuses if k != WorkKind.SLACK_MESSAGE} == {
        (WorkKind.LETTERS_UPLOAD, WorkStatus.DONE),
        (WorkKind.WELCOME_EMAIL, WorkStatus.DONE),
    }


def test_sigkill_after_smtp_accepted_resends_the_same_message_after_the_lease(
    stack: Stack, database_url: str, family: dict[str, int], clock: Clock
) -> None:
    issue(stack, family)
    email = work(stack, WorkKind.WELCOME_EMAIL)

    _crash(stack, database_url, "after-send", str(email.id))

    assert len(stack.smtp.received) == 1
    claimed = work(stack, WorkKind.WELCOME_EMAIL)
    assert claimed.status == WorkStatus.PENDING and claimed.claimed_until is not None
    stack.deliver()
    assert len(stack.smtp.received) == 1  # the dead worker's lease still holds it
    assert claimed.claimed_until - utcnow() <= LEASE
    clock.advance(seconds=LEASE.total_seconds() + 1)

    settle(stack, clock)

    first, second = (r.message for r in stack.smtp.received)
    assert first["Message-ID"] == second["Message-ID"]
    assert work(stack, WorkKind.WELCOME_EMAIL).status == WorkStatus.DONE
