"""Deliveries that survive an outage, and letters gone on time (issue 19), on SQLite and
PostgreSQL: an SMTP server down for 3 hours of simulated time, the whole retry schedule
measured, a worker killed by SIGKILL while it holds a claim, the bot killed on either side of
files.completeUploadExternal, and files.delete failing for a day."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import Mock

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select

from bot.delivery.outbox import BACKOFF_SECONDS, DEFAULT_MAX_ATTEMPTS, HEARTBEAT, LEASE
from bot.delivery.worker import POLL_SECONDS, OutboxWorker
from bot.issuing.gateway import verify_pin
from bot.reminders.letters import sweep_letters
from models import LetterFile, OutgoingWork, Pin, WorkKind, WorkStatus
from tests.flows import test_faults
from tests.flows.test_faults import (
    PIN_PATTERN,
    THREAD,
    Clock,
    _crash,
    assert_pins_are_the_issued_ones,
    issue,
    pins_in_pdf,
    thread_posts,
    work,
)
from tests.support.fake_slack import FakeSlack
from tests.support.paths import REPO_ROOT
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import Stack, build_stack, stack_env

family = test_faults.family  # the fixture: a family of two children and their mother
STEP = timedelta(minutes=1)  # how often the simulated worker looks for due work


class SmtpOutage:
    """A real SMTP server (aiosmtpd) on a fixed port that the test stops and starts."""

    def __init__(self) -> None:
        self.server = SmtpServer(port=free_port())
        self._controller: Controller | None = None

    def up(self) -> None:
        self._controller = Controller(
            self.server, hostname=self.server.host, port=self.server.port, ready_timeout=10
        )
        self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def outage() -> Iterator[SmtpOutage]:
    smtp = SmtpOutage()
    yield smtp
    smtp.down()


@pytest.fixture
def stack(database_url: str, fake_slack: FakeSlack, outage: SmtpOutage) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, outage.server)


@pytest.fixture
def clock(stack: Stack) -> Clock:
    clock = Clock()
    stack.services.outbox.clock = clock
    return clock


def email_attempts_until(stack: Stack, clock: Clock, end: timedelta) -> list[timedelta]:
    """Run the outbox every STEP of simulated time until `end`; when each email try happened."""
    tried: list[timedelta] = []
    while clock.offset <= end:
        before = work(stack, WorkKind.WELCOME_EMAIL).attempts
        stack.deliver()
        if work(stack, WorkKind.WELCOME_EMAIL).attempts > before:
            tried.append(clock.offset)
        clock.advance(seconds=STEP.total_seconds())
    return tried


def test_smtp_down_for_three_hours_then_the_email_arrives_once(
    stack: Stack, outage: SmtpOutage, family: dict[str, int], clock: Clock
) -> None:
    issue(stack, family)

    tried = email_attempts_until(stack, clock, timedelta(hours=3))
    assert len(tried) >= 7  # it kept trying through the outage
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert (email.status, email.attempts) == (WorkStatus.PENDING, len(tried))
    assert outage.server.received == []

    outage.up()
    email_attempts_until(stack, clock, clock.offset + timedelta(hours=3))

    assert len(outage.server.received) == 1
    assert work(stack, WorkKind.WELCOME_EMAIL).status == WorkStatus.DONE
    body = outage.server.received[0].message.get_body(("plain",)).get_content()
    sent_pin = PIN_PATTERN.search(body).group(1)  # type: ignore[union-attr]
    with stack.database.read_session() as session:
        hashes = [pin.pin_hash for pin in session.exec(select(Pin)).all()]
    assert any(verify_pin(sent_pin, h) for h in hashes)  # the PIN issued, kept through the outage


def test_the_retry_schedule_spans_more_than_twelve_hours(
    stack: Stack, family: dict[str, int], clock: Clock
) -> None:
    """The schedule the README states, measured: SMTP never comes back."""
    issue(stack, family)

    tried = email_attempts_until(stack, clock, timedelta(hours=16))

    assert len(tried) == DEFAULT_MAX_ATTEMPTS
    gaps = [later - earlier for earlier, later in itertools.pairwise(tried)]
    for gap, planned in zip(gaps, BACKOFF_SECONDS, strict=True):
        # the first due look after each wait (the simulated worker looks every STEP)
        assert timedelta(seconds=planned) <= gap < timedelta(seconds=planned) + STEP * 2
    assert tried[-1] - tried[0] >= timedelta(hours=12)
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert email.status == WorkStatus.FAILED and '"pin": null' in email.payload
    told = [p for p in thread_posts(stack) if "could not be delivered" in p["text"]]
    assert len(told) == 1


# The takeover below runs on a short lease, heartbeat and poll, so it waits seconds rather than
# the production LEASE; test_production_takeover_is_within_30_seconds checks the real ones.
SHORT_LEASE = timedelta(seconds=2)
SHORT_HEARTBEAT = timedelta(seconds=0.4)  # five beats per lease: a slow beat never loses it
SHORT_POLL_SECONDS = 0.25


def test_production_takeover_is_within_30_seconds() -> None:
    """The production figures the takeover test scales down: a dead claim is taken over within
    LEASE + POLL_SECONDS, under 30 s, and a live one is renewed at least twice per LEASE."""
    assert LEASE.total_seconds() + POLL_SECONDS < 30
    assert HEARTBEAT * 2 < LEASE
    assert OutboxWorker(Mock()).poll_seconds == POLL_SECONDS


def test_a_worker_killed_mid_claim_is_taken_over_within_one_lease_and_poll_once(
    stack: Stack, outage: SmtpOutage, database_url: str, family: dict[str, int]
) -> None:
    outage.up()
    issue(stack, family)
    email_id = str(work(stack, WorkKind.WELCOME_EMAIL).id)
    env = {**os.environ, **stack_env(database_url, stack.fake_slack, outage.server)}
    lease = SHORT_LEASE.total_seconds()
    doomed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.crash_worker",
            "mid-claim",
            email_id,
            str(lease),
            str(SHORT_HEARTBEAT.total_seconds()),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert doomed.stdout is not None and doomed.stdout.readline().strip() == "claimed"
    # Another replica's worker runs all along: the live claim outlasts one lease on its
    # heartbeat alone, and nobody takes it while its owner lives.
    stack.services.outbox.lease, stack.services.outbox.heartbeat = SHORT_LEASE, SHORT_HEARTBEAT
    worker = OutboxWorker(stack.services.outbox, poll_seconds=SHORT_POLL_SECONDS)
    worker.start()
    try:
        assert doomed.wait(timeout=lease + 30) == -signal.SIGKILL
        died = time.monotonic()
        assert outage.server.received == []
        while not outage.server.received and time.monotonic() - died < 30:
            time.sleep(0.05)
        taken_over_after = time.monotonic() - died
        time.sleep(SHORT_POLL_SECONDS * 4)  # a second delivery would show by now
    finally:
        worker.stop()

    assert outage.server.received, "never taken over"
    assert taken_over_after < lease + SHORT_POLL_SECONDS + 3, taken_over_after
    assert len(outage.server.received) == 1
    email = work(stack, WorkKind.WELCOME_EMAIL)
    assert (email.status, email.attempts) == (WorkStatus.DONE, 2)


@pytest.mark.parametrize("moment", ["before-complete", "after-complete"])
def test_killed_around_complete_upload_uploads_once_and_deletes_on_time(
    stack: Stack, database_url: str, family: dict[str, int], clock: Clock, moment: str
) -> None:
    issue(stack, family)
    upload = work(stack, WorkKind.LETTERS_UPLOAD)

    _crash(stack, database_url, moment, str(upload.id))

    # The file id was on record before Slack was asked to share it.
    with stack.database.read_session() as session:
        recorded = session.exec(select(LetterFile)).one()
    shared = stack.fake_slack.uploaded_files()
    assert [f.file_id for f in shared] == ([recorded.file_id] if moment == "after-complete" else [])

    clock.advance(seconds=LEASE.total_seconds() + 1)  # the dead process's claim lapses
    stack.deliver()

    assert len(stack.fake_slack.calls_to("files.getUploadURLExternal")) == 1  # no second upload
    files = stack.fake_slack.uploaded_files()
    assert len(files) == 1 and files[0].file_id == recorded.file_id
    assert files[0].thread_ts == THREAD[1]
    assert_pins_are_the_issued_ones(stack, pins_in_pdf(files[0].data))
    assert work(stack, WorkKind.LETTERS_UPLOAD).status == WorkStatus.DONE

    # The TTL runs from the share: the time on record when it happened before the crash
    # (recorded just before it), the retry's share otherwise.
    ttl = timedelta(hours=stack.settings.pin_letter_ttl_hours)
    shared_before_crash = int(moment == "after-complete")
    due = recorded.uploaded_at + ttl
    assert sweep_letters(stack.database, stack.settings, now=due) == shared_before_crash
    assert (
        sweep_letters(stack.database, stack.settings, now=clock() + ttl) == 1 - shared_before_crash
    )
    clock.advance(seconds=ttl.total_seconds())
    stack.deliver()
    stack.deliver()  # the thread's "removed" line
    assert stack.fake_slack.uploaded_files()[0].deleted
    assert any("removed from Slack" in p["text"] for p in thread_posts(stack))


def test_a_started_upload_whose_pins_were_replaced_is_never_shared(
    stack: Stack, database_url: str, family: dict[str, int], clock: Clock
) -> None:
    issue(stack, family)
    with stack.database.read_session() as session:
        upload = session.exec(
            select(OutgoingWork).where(OutgoingWork.kind == WorkKind.LETTERS_UPLOAD)
        ).one()
    _crash(stack, database_url, "before-complete", str(upload.id))
    second = issue(stack, family, key="view:VAGAIN")  # re-issued: the first batch's PINs revoked

    clock.advance(seconds=LEASE.total_seconds() + 1)
    stack.deliver()

    files = stack.fake_slack.uploaded_files()
    # only the new batch's letters were shared; the first file stays unshared
    assert [f.filename for f in files] == [f"pin-letters-{second}.pdf"]
    with stack.database.read_session() as session:
        old = session.get(OutgoingWork, upload.id)
    assert old is not None and old.status == WorkStatus.DONE and "skipped" in old.result


def test_a_delete_failing_for_a_day_keeps_trying_tells_the_thread_and_succeeds(
    stack: Stack, family: dict[str, int], clock: Clock
) -> None:
    issue(stack, family)
    stack.deliver()
    ttl = timedelta(hours=stack.settings.pin_letter_ttl_hours)
    clock.advance(seconds=ttl.total_seconds())
    assert sweep_letters(stack.database, stack.settings, now=clock()) == 1
    stack.fake_slack.fail_next("files.delete", error="fatal_error", times=10**6)

    start = clock.offset
    told_at = None
    while clock.offset - start < timedelta(hours=27):
        stack.deliver()
        warnings = [p for p in thread_posts(stack) if "could not be removed" in p["text"]]
        if warnings and told_at is None:
            told_at = clock.offset - start
        clock.advance(minutes=10)

    delete = work(stack, WorkKind.LETTERS_DELETE)
    assert delete.status == WorkStatus.PENDING  # never given up
    assert delete.attempts > DEFAULT_MAX_ATTEMPTS
    assert told_at is not None and timedelta(hours=24) <= told_at < timedelta(hours=27)
    assert len([p for p in thread_posts(stack) if "could not be removed" in p["text"]]) == 1
    assert not stack.fake_slack.uploaded_files()[0].deleted

    stack.fake_slack.reset()  # Slack lets the bot delete again
    clock.advance(hours=2)
    stack.deliver()
    stack.deliver()

    assert stack.fake_slack.uploaded_files()[0].deleted
    assert work(stack, WorkKind.LETTERS_DELETE).status == WorkStatus.DONE
    with stack.database.read_session() as session:
        assert session.exec(select(LetterFile)).one().deleted_at is not None
    assert any("removed from Slack" in p["text"] for p in thread_posts(stack))


def test_done_work_holds_no_claim(stack: Stack, family: dict[str, int]) -> None:
    issue(stack, family)
    stack.deliver()
    with stack.database.read_session() as session:
        rows = session.exec(select(OutgoingWork)).all()
    assert rows and all(r.claimed_by is None and r.claimed_until is None for r in rows)
