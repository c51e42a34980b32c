"""Scheduled reminders (SPEC §5) and the PIN-letter sweep (SPEC §6), on SQLite and PostgreSQL:
what the digest says for a given local "now", that it is posted exactly once across restarts,
late starts, replicas, crashes and rate limits, and that it fits Block Kit's limits."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry import handler as retry_handler
from sqlmodel import Session, select

from bot.config import Settings, load_settings
from bot.db import Database
from bot.delivery.worker import Outbox
from bot.reminders.digest import Digest, DigestEntry, DigestSection, Section, next_business_days
from bot.reminders.jobs import catch_up_job, daily_job, register_jobs
from bot.reminders.letters import sweep_letters
from bot.reminders.sweep import CATCH_UP_JOB, DAILY_JOB, run_daily
from bot.runtime.process import run_from_cli
from bot.services import Services
from handlers.app import make_client
from handlers.digest import SECTION_CAP, render_digest
from handlers.ids import FamilyIds
from handlers.notices import render_notice
from handlers.slack_port import WebClientPort
from models import (
    Appointment,
    AuditEvent,
    Family,
    IssueBatch,
    LetterFile,
    NameFix,
    OutgoingWork,
    Patient,
    Pin,
    PinStatus,
    ReminderRun,
    WorkKind,
    WorkStatus,
    utcnow,
)
from tests.support.factories import make_family, make_patient
from tests.support.factories import make_pin as pin
from tests.support.fake_slack import Call, FakeSlack, fake_slack_fixture, message_block_problems
from tests.support.paths import REPO_ROOT

FIXTURES = (fake_slack_fixture,)  # imported for its fixture
TZ = ZoneInfo("America/New_York")
REMIND, FRONT = "C0REMIND", "C0FRONT"
SUPERVISOR_MENTIONS = "<@U0SUPER1> <!subteam^S0SUPERS>"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local wall-clock time in the practice's zone, as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


# US DST began Sunday 03/08/2026 at 02:00: Monday's 08:00 EDT is 12:00 UTC, the Monday before
# it was 13:00 UTC. Friday 03/06 is the last business day before the change.
DST_MONDAY = at(2026, 3, 9, 8)
FRIDAY = at(2026, 3, 6, 8)


# -- fixtures and helpers ---------------------------------------------------------------------


def make_settings(database_url: str, slack_url: str, **overrides: str) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": slack_url,
        "REMINDER_CHANNEL_ID": REMIND,
        "SUPERVISOR_IDS": "U0SUPER1,S0SUPERS",
        "PRACTICE_TIMEZONE": "America/New_York",
        "REMINDER_TIME": "08:00",
        "PIN_LETTER_TTL_HOURS": "24",
        "PORTAL_URL": "https://portal.example.com",
        "PRACTICE_NAME": "Test Pediatrics",
        "PRACTICE_PHONE": "555-0100",
        **overrides,
    }
    settings = load_settings(env)
    assert not settings.problems
    return settings


@pytest.fixture
def settings(database_url: str, fake_slack: FakeSlack) -> Settings:
    return make_settings(database_url, fake_slack.url)


def make_outbox(
    database: Database, settings: Settings, clock: Callable[[], datetime] = utcnow
) -> Outbox:
    return Outbox(
        database,
        settings,
        slack=WebClientPort(make_client(settings)),
        clock=clock,
        render_notice=render_notice,
    )


@pytest.fixture
def outbox(database: Database, settings: Settings) -> Outbox:
    return make_outbox(database, settings)


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """slack_sdk's retry handlers sleep Retry-After seconds: record the waits instead."""
    waits: list[float] = []
    for module in (builtin_handlers, retry_handler):  # rate limits; server and network errors
        monkeypatch.setattr(module, "time", SimpleNamespace(sleep=waits.append))
    return waits


def deliver_all(outbox: Outbox) -> None:
    while outbox.deliver_due():
        pass


def digest_posts(fake: FakeSlack) -> list[Call]:
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.ok and c.args["channel"] == REMIND and not c.args.get("thread_ts")
    ]


def thread_posts(fake: FakeSlack, thread_ts: str) -> list[Call]:
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.ok and c.args.get("thread_ts") == thread_ts
    ]


def run(database: Database, settings: Settings, now: datetime, **kwargs: Any) -> Any:
    return run_daily(database, settings, now=now, render=render_digest, **kwargs)


def capture_digest(database: Database, settings: Settings, now: datetime) -> Digest:
    seen: list[Digest] = []

    def render(digest: Digest) -> list[dict[str, Any]]:
        seen.append(digest)
        return render_digest(digest)

    run_daily(database, settings, now=now, render=render)
    assert len(seen) == 1
    return seen[0]


def children(digest: Digest, section: Section) -> list[str]:
    return [entry.child for entry in digest.entries(section)]


def the_run(database: Database, day: str = "2026-03-09") -> ReminderRun:
    with database.read_session() as session:
        return session.exec(select(ReminderRun).where(ReminderRun.local_date == day)).one()


# -- seeding ----------------------------------------------------------------------------------


def visit(session: Session, patient: Patient, when: datetime) -> None:
    """An appointment at a local wall-clock time (naive, as the EHR exports it)."""
    session.add(Appointment(patient_id=patient.id or 0, starts_at=when, provider="Dr. Test"))


def name_fix(
    session: Session, patient: Patient, requested_at: datetime, *, thread_ts: str | None = None
) -> NameFix:
    fix = NameFix(
        patient_id=patient.id or 0,
        family_id=patient.family_id,
        proposed_first="Ava",
        proposed_last=patient.last_name,
        confirmed_by="birth_certificate",
        requested_by="U0STAFF",
        requested_at=requested_at,
        channel_id=FRONT if thread_ts else None,
        thread_ts=thread_ts,
    )
    session.add(fix)
    session.flush()
    return fix


def seed_practice(database: Database, *, threads: bool = True) -> dict[str, int]:
    """One or more children for every digest section and its edges, around DST_MONDAY.
    threads=False: the name fixes have no Slack thread, so the digest is the only post."""
    with database.transaction() as session:
        testwood, rivera, chen = (make_family(session, a) for a in ("A1001", "A1002", "A1003"))
        baby = make_patient(session, testwood, "Baby Girl", date(2026, 2, 20), name_type="NB")
        visit(session, baby, datetime(2026, 3, 9, 9, 0))  # today: listed under "today"
        visit(session, baby, datetime(2026, 3, 10, 10, 30))  # Tuesday: in the window
        visit(session, baby, datetime(2026, 3, 12, 9, 0))
        ava = make_patient(session, testwood, "Ava", date(2019, 5, 1))
        visit(session, ava, datetime(2026, 3, 11, 9, 0))  # a real name: never flagged
        boy = make_patient(session, rivera, "Baby Boy", date(2026, 2, 25), last="Rivera")
        visit(session, boy, datetime(2026, 3, 12, 14, 0))  # Thursday: past two business days
        name_fix(
            session, baby, at(2026, 3, 8, 7), thread_ts="1700000000.000100" if threads else None
        )  # 25 hours before DST_MONDAY
        name_fix(session, boy, at(2026, 3, 8, 9), thread_ts="1700000000.000200")  # 23 hours
        liam = make_patient(session, chen, "Liam", date(2017, 1, 1), last="Chen")
        # Last Monday 09:00 EST: 6 days 22 hours before now, but 7 calendar days.
        pin(session, liam, at(2026, 3, 2, 9))
        visit(session, liam, datetime(2026, 3, 9, 10, 0))  # has access: not listed today
        mia = make_patient(session, chen, "Mia", date(2018, 1, 1), last="Chen")
        pin(session, mia, at(2026, 3, 3, 9))  # 6 days ago
        noah = make_patient(session, chen, "Noah", date(2015, 1, 1), last="Chen")
        pin(session, noah, at(2026, 2, 1, 9), status=PinStatus.REGISTERED)
        visit(session, noah, datetime(2026, 3, 9, 10, 30))
        olivia = make_patient(session, chen, "Olivia", date(2016, 1, 1), last="Chen")
        pin(session, olivia, at(2025, 12, 10, 9), expires_at=at(2026, 3, 16, 20))
        emma = make_patient(session, chen, "Emma", date(2014, 1, 1), last="Chen")
        pin(session, emma, at(2025, 12, 10, 9), expires_at=at(2026, 3, 17, 9))
        zoe = make_patient(session, chen, "Zoe", date(2013, 1, 1), last="Chen")
        expired = pin(session, zoe, at(2025, 12, 1, 9), expires_at=at(2026, 3, 8, 9))
        visit(session, zoe, datetime(2026, 3, 9, 11, 0))
        session.flush()
        return {"testwood": testwood.id or 0, "chen": chen.id or 0, "zoe_pin": expired.id or 0}


def seed_waiting_fixes(database: Database) -> list[str]:
    """Two name fixes waiting over 24 h in their threads, one without a thread, one fresh."""
    with database.transaction() as session:
        family = make_family(session, "A2001")
        threads = ["1700000000.000300", "1700000000.000400"]
        for first, thread in zip(("Baby Girl", "Baby Boy"), threads, strict=True):
            child = make_patient(session, family, first, date(2026, 2, 1), name_type="NB")
            name_fix(session, child, at(2026, 3, 6, 15), thread_ts=thread)
        name_fix(
            session, make_patient(session, family, "Infant", date(2026, 2, 2)), at(2026, 3, 6, 15)
        )
        name_fix(
            session,
            make_patient(session, family, "Newborn", date(2026, 2, 3)),
            at(2026, 3, 9, 7),
            thread_ts="1700000000.000500",
        )
    return threads


# -- what the digest says ---------------------------------------------------------------------


def test_each_section_on_the_monday_after_dst_starts(
    database, settings, fake_slack, outbox
) -> None:
    ids = seed_practice(database)

    digest = capture_digest(database, settings, DST_MONDAY)

    assert [s.section for s in digest.sections] == list(Section)
    assert children(digest, Section.UNOFFICIAL_NAMES) == ["Baby Girl Testwood"]
    [upcoming] = digest.entries(Section.UNOFFICIAL_NAMES)
    assert (upcoming.family_id, upcoming.account_number) == (ids["testwood"], "A1001")
    assert "Tue 03/10 10:30 AM" in upcoming.needed
    assert "name fix is waiting" in upcoming.needed
    assert children(digest, Section.PENDING_NAME_FIXES) == ["Baby Girl Testwood"]
    assert children(digest, Section.UNREGISTERED_PINS) == ["Emma Chen", "Liam Chen"]
    assert children(digest, Section.EXPIRING_PINS) == ["Olivia Chen"]
    assert "Mon 03/16" in digest.entries(Section.EXPIRING_PINS)[0].needed
    assert children(digest, Section.NO_PORTAL_TODAY) == ["Baby Girl Testwood", "Zoe Chen"]
    assert "unofficial name" in digest.entries(Section.NO_PORTAL_TODAY)[0].needed
    with database.read_session() as session:
        zoe_pin = session.get(Pin, ids["zoe_pin"])
        assert zoe_pin is not None and zoe_pin.status == PinStatus.EXPIRED

    deliver_all(outbox)
    [post] = digest_posts(fake_slack)
    blocks = post.args["blocks"]
    titles = [b["text"]["text"] for b in blocks if b.get("block_id", "").startswith("digest_")]
    assert [t.split("* (")[1] for t in titles] == ["1)", "1)", "2)", "1)", "2)"]
    buttons = [b["accessory"] for b in blocks if "accessory" in b]
    assert len(buttons) == digest.total == 7
    assert {b["action_id"] for b in buttons} == {FamilyIds.OPEN.value}
    assert json.loads(buttons[0]["value"]) == {"family_id": ids["testwood"]}
    assert the_run(database).posted_at is not None


def test_friday_looks_ahead_to_monday_and_tuesday(database, settings) -> None:
    assert next_business_days(FRIDAY.astimezone(TZ).date(), 2) == [
        date(2026, 3, 9),
        date(2026, 3, 10),
    ]
    with database.transaction() as session:
        family = make_family(session)
        visits = {
            "Today": datetime(2026, 3, 6, 9),
            "Saturday": datetime(2026, 3, 7, 9),
            "Monday": datetime(2026, 3, 9, 9),
            "Tuesday": datetime(2026, 3, 10, 16),
            "Wednesday": datetime(2026, 3, 11, 9),
        }
        for day, when in visits.items():
            visit(
                session,
                make_patient(session, family, f"Baby {day}", date(2026, 2, 1), name_type="NB"),
                when,
            )

    digest = capture_digest(database, settings, FRIDAY)

    assert children(digest, Section.UNOFFICIAL_NAMES) == [
        "Baby Saturday Testwood",
        "Baby Monday Testwood",
        "Baby Tuesday Testwood",
    ]
    assert children(digest, Section.NO_PORTAL_TODAY) == ["Baby Today Testwood"]


def no_run(database: Database) -> bool:
    with database.read_session() as session:
        return session.exec(select(ReminderRun)).first() is None


def test_nothing_to_report_posts_nothing_and_leaves_the_day_open(
    database, settings, fake_slack, outbox
) -> None:
    result = run(database, settings, DST_MONDAY)
    deliver_all(outbox)

    assert result.claimed and result.messages == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    assert no_run(database)  # nothing posted: the day is not marked done

    seed_practice(database, threads=False)  # something comes up later that day
    later = run(database, settings, DST_MONDAY + timedelta(hours=1))
    deliver_all(outbox)
    assert later.claimed and later.messages == 1
    assert len(digest_posts(fake_slack)) == 1 and the_run(database).posted_at is not None


# -- the schedule -----------------------------------------------------------------------------


def test_cron_fires_weekdays_at_local_reminder_time_across_dst(database, settings, outbox) -> None:
    scheduler = BackgroundScheduler(timezone=TZ)
    services = Services(
        settings=settings, database=database, outbox=outbox, clock=lambda: at(2026, 3, 6, 7)
    )
    register_jobs(scheduler, services, render=render_digest)

    job = scheduler.get_job(DAILY_JOB)
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == 16 * 3600  # the rest of the day, not APScheduler's 1 s
    fires = job.trigger.get_next_fire_time(None, at(2026, 3, 6, 9))  # Friday, after 08:00
    assert fires == at(2026, 3, 9, 8) and fires.astimezone(UTC).hour == 12  # EDT
    fires = job.trigger.get_next_fire_time(None, at(2026, 10, 30, 9))
    assert fires == at(2026, 11, 2, 8) and fires.astimezone(UTC).hour == 13  # EST again
    catch_up = scheduler.get_job(CATCH_UP_JOB)
    assert catch_up.coalesce is True and catch_up.trigger.interval == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("now", "posts"),
    [
        (at(2026, 3, 9, 7, 30), 0),  # Monday before 08:00: the cron job's turn
        (at(2026, 3, 9, 9, 30), 1),  # Monday after 08:00, nothing claimed yet: owed
        (at(2026, 3, 7, 9, 30), 0),  # Saturday: no digest
    ],
)
def test_catch_up_runs_the_day_only_when_owed(
    database, settings, fake_slack, outbox, now, posts
) -> None:
    seed_practice(database, threads=False)
    services = Services(
        settings=settings,
        database=database,
        outbox=outbox,
        clock=lambda: now,
        kick=lambda: deliver_all(outbox),
    )

    catch_up_job(services, render_digest)
    catch_up_job(services, render_digest)

    assert len(digest_posts(fake_slack)) == posts


class RunningBot:
    """The bot's scheduler, started as `pinbot run` starts it, with a way to wait (on an
    event, never a sleep) until a job has run."""

    def __init__(self, services: Services) -> None:
        self.scheduler = BackgroundScheduler(timezone=TZ)
        self.ran = {job: threading.Event() for job in (DAILY_JOB, CATCH_UP_JOB)}
        self.errors: list[BaseException] = []
        self.scheduler.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        register_jobs(self.scheduler, services, render=render_digest)
        self.scheduler.start()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.exception is not None:
            self.errors.append(event.exception)
        if event.job_id in self.ran:
            self.ran[event.job_id].set()

    def wait_for(self, job_id: str) -> None:
        assert self.ran[job_id].wait(20), f"{job_id} did not run"
        assert self.errors == []

    def stop(self) -> None:
        self.scheduler.shutdown()  # waits for running jobs


@pytest.fixture
def bot_services(database: Database, settings: Settings, outbox: Outbox) -> Services:
    """Services as `pinbot run` builds them: the real clock (time-machine moves it) and a
    kick that delivers at once (the delivery thread's job)."""
    seed_practice(database)
    return Services(
        settings=settings, database=database, outbox=outbox, kick=lambda: deliver_all(outbox)
    )


def test_started_at_0930_posts_the_0800_digest_once_even_after_a_restart(
    bot_services, fake_slack
) -> None:
    with time_machine.travel(at(2026, 3, 9, 9, 30), tick=False):
        bot = RunningBot(bot_services)
        bot.wait_for(CATCH_UP_JOB)
        bot.stop()
    assert len(digest_posts(fake_slack)) == 1

    with time_machine.travel(at(2026, 3, 9, 13, 0), tick=False):  # restarted after lunch
        bot = RunningBot(bot_services)
        bot.wait_for(CATCH_UP_JOB)
        bot.stop()
    assert len(digest_posts(fake_slack)) == 1


def test_cron_run_then_restart_the_same_day_posts_once(bot_services, fake_slack) -> None:
    with time_machine.travel(at(2026, 3, 9, 7, 59), tick=False) as clock:
        bot = RunningBot(bot_services)
        bot.wait_for(CATCH_UP_JOB)  # at start-up, before 08:00: nothing owed yet
        assert digest_posts(fake_slack) == []
        clock.move_to(at(2026, 3, 9, 8, 0))
        bot.scheduler.wakeup()
        bot.wait_for(DAILY_JOB)
        bot.stop()
    assert len(digest_posts(fake_slack)) == 1

    with time_machine.travel(at(2026, 3, 9, 8, 20), tick=False):
        bot = RunningBot(bot_services)
        bot.wait_for(CATCH_UP_JOB)
        bot.stop()
    assert len(digest_posts(fake_slack)) == 1


# -- replicas ---------------------------------------------------------------------------------


def assert_one_digest_and_one_nudge_each(fake: FakeSlack, threads: list[str]) -> None:
    assert len(digest_posts(fake)) == 1
    for thread in threads:
        [nudge] = thread_posts(fake, thread)
        assert nudge.args["text"].startswith(SUPERVISOR_MENTIONS)


def test_three_processes_post_one_digest_and_one_nudge_per_request(
    database, database_url, settings, fake_slack
) -> None:
    seed_practice(database)
    threads = seed_waiting_fixes(database)
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": fake_slack.url,
        "REMINDER_CHANNEL_ID": REMIND,
        "SUPERVISOR_IDS": "U0SUPER1,S0SUPERS",
        "PRACTICE_TIMEZONE": "America/New_York",
        "PATH": "/usr/bin:/bin",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.reminder_worker", DST_MONDAY.isoformat()],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # all three connected: release them together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]

    assert [w.returncode for w in workers] == [0, 0, 0]
    assert sorted(r["claimed"] for r in results) == [False, False, True]
    assert_one_digest_and_one_nudge_each(fake_slack, threads)


def test_three_threads_post_one_digest_and_one_nudge_per_request(
    database, database_url, settings, fake_slack
) -> None:
    seed_practice(database)
    threads = seed_waiting_fixes(database)
    start = threading.Barrier(3)
    claimed: list[bool] = []

    def replica() -> None:
        own = Database(database_url)  # each replica has its own engine and connections
        box = make_outbox(own, settings)
        start.wait()
        claimed.append(run(own, settings, DST_MONDAY).claimed)
        deliver_all(box)
        own.dispose()

    workers = [threading.Thread(target=replica) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert sorted(claimed) == [False, False, True]
    assert_one_digest_and_one_nudge_each(fake_slack, threads)


# -- crashes, failures, rate limits -----------------------------------------------------------


def test_crash_after_claim_before_posting_is_posted_by_the_next_sweep(
    database, settings, fake_slack, outbox
) -> None:
    seed_practice(database)
    assert run(database, settings, DST_MONDAY).claimed
    # The process dies here: claimed and queued, nothing delivered.
    assert fake_slack.calls_to("chat.postMessage") == []

    restarted = Services(
        settings=settings,
        database=database,
        outbox=outbox,
        clock=lambda: DST_MONDAY + timedelta(hours=1),
        kick=lambda: deliver_all(outbox),
    )
    daily_job(restarted, render_digest)
    daily_job(restarted, render_digest)

    assert len(digest_posts(fake_slack)) == 1
    assert the_run(database).posted_at is not None


def test_a_failed_0800_run_leaves_no_claim_and_the_catch_up_posts_it(
    database, settings, fake_slack, outbox
) -> None:
    seed_practice(database)

    def crash(digest: Digest) -> list[dict[str, Any]]:
        raise RuntimeError("database went away while queueing")

    with pytest.raises(RuntimeError):
        run_daily(database, settings, now=DST_MONDAY, render=crash)
    with database.read_session() as session:
        assert session.exec(select(ReminderRun)).all() == []

    later = Services(
        settings=settings,
        database=database,
        outbox=outbox,
        clock=lambda: DST_MONDAY + timedelta(minutes=15),
        kick=lambda: deliver_all(outbox),
    )
    catch_up_job(later, render_digest)
    assert len(digest_posts(fake_slack)) == 1


def test_a_digest_that_failed_for_good_is_taken_over_later_that_day(
    database, settings, fake_slack, outbox
) -> None:
    seed_practice(database, threads=False)
    fake_slack.fail_next("chat.postMessage", error="not_in_channel")  # permanent: given up
    run(database, settings, DST_MONDAY)
    deliver_all(outbox)
    assert digest_posts(fake_slack) == [] and the_run(database).posted_at is None

    assert not run(database, settings, DST_MONDAY + timedelta(minutes=5)).claimed  # lease
    assert run(database, settings, DST_MONDAY + timedelta(minutes=20)).claimed
    deliver_all(outbox)
    assert len(digest_posts(fake_slack)) == 1
    assert not run(database, settings, DST_MONDAY + timedelta(hours=2)).claimed


def test_queued_digest_is_never_taken_over(database, settings, fake_slack, outbox) -> None:
    seed_practice(database)
    run(database, settings, DST_MONDAY)  # queued, not delivered yet (Slack down, say)

    assert not run(database, settings, DST_MONDAY + timedelta(hours=3)).claimed
    deliver_all(outbox)
    assert len(digest_posts(fake_slack)) == 1


def test_rate_limited_is_rescheduled_after_retry_after_and_posted_once(
    database, settings, fake_slack, outbox, retry_waits
) -> None:
    seed_practice(database, threads=False)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=45)

    run(database, settings, DST_MONDAY)
    deliver_all(outbox)
    assert digest_posts(fake_slack) == []
    assert retry_waits == []  # no thread slept through Retry-After
    deliver_all(make_outbox(database, settings, clock=lambda: utcnow() + timedelta(seconds=40)))
    assert digest_posts(fake_slack) == []  # not before Retry-After
    deliver_all(make_outbox(database, settings, clock=lambda: utcnow() + timedelta(seconds=50)))

    statuses = [
        c.status for c in fake_slack.calls_to("chat.postMessage") if not c.args.get("thread_ts")
    ]
    assert statuses == [429, 200]
    assert len(digest_posts(fake_slack)) == 1
    assert the_run(database).posted_at is not None


def test_rate_limited_again_and_again_is_retried_by_the_outbox_and_posted_once(
    database, settings, fake_slack, outbox, retry_waits
) -> None:
    seed_practice(database, threads=False)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1, times=4)

    run(database, settings, DST_MONDAY)
    for minutes in range(0, 60, 5):
        deliver_all(
            make_outbox(database, settings, clock=lambda m=minutes: utcnow() + timedelta(minutes=m))
        )

    assert len(digest_posts(fake_slack)) == 1
    assert retry_waits == []
    assert the_run(database).posted_at is not None


# -- Block Kit limits -------------------------------------------------------------------------


def assert_within_block_kit(posts: list[Call]) -> None:
    for post in posts:
        assert post.ok and len(post.args["blocks"]) <= 50
        assert message_block_problems(post.args["blocks"]) == []


def test_a_digest_of_200_entries_stays_within_block_kit_limits(
    database, settings, fake_slack, outbox
) -> None:
    with database.transaction() as session:
        for number in range(200):
            family = make_family(session, f"B{number:04d}")
            child = make_patient(session, family, "Kid", date(2020, 1, 1), last=f"Fam{number}")
            visit(session, child, datetime(2026, 3, 9, 8) + timedelta(minutes=number))

    result = run(database, settings, DST_MONDAY)
    deliver_all(outbox)

    assert result.entries == 200
    posts = digest_posts(fake_slack)
    assert_within_block_kit(posts)
    buttons = [b for p in posts for b in p.args["blocks"] if "accessory" in b]
    assert len(buttons) == SECTION_CAP
    assert f"{200 - SECTION_CAP} more" in json.dumps(posts[-1].args["blocks"])


def test_200_entries_over_every_section_split_into_valid_messages(fake_slack) -> None:
    settings = make_settings("sqlite://", fake_slack.url)  # pure rendering: no database
    long_name = "Baby & <Girl> *" + "x" * 400
    sections = tuple(
        DigestSection(
            kind,
            tuple(
                DigestEntry(
                    long_name if n == 0 else f"Child {n}", n + 1, f"A{n}", "needed & " * 300
                )
                for n in range(40)
            ),
        )
        for kind in Section
    )
    digest = Digest(date(2026, 3, 9), sections)

    messages = render_digest(digest)
    client = make_client(settings)
    for message in messages:
        client.chat_postMessage(channel=REMIND, text=message["text"], blocks=message["blocks"])

    posts = digest_posts(fake_slack)
    assert len(posts) == len(messages) > 1
    assert_within_block_kit(posts)
    shown = sum(1 for p in posts for b in p.args["blocks"] if "accessory" in b)
    counted = sum(
        int(b["elements"][0]["text"].split()[1])
        for p in posts
        for b in p.args["blocks"]
        if "more in this section" in json.dumps(b)
    )
    assert shown + counted == 200


# -- nudges -----------------------------------------------------------------------------------


def test_nudges_once_per_request_per_day_even_when_forced(
    database, settings, fake_slack, outbox
) -> None:
    threads = seed_waiting_fixes(database)

    assert run(database, settings, DST_MONDAY).nudges == 2
    assert run(database, settings, DST_MONDAY + timedelta(hours=1), force=True).nudges == 0
    deliver_all(outbox)

    assert len(digest_posts(fake_slack)) == 2  # forced: the digest again, the nudges not
    for thread in threads:
        assert len(thread_posts(fake_slack, thread)) == 1
    assert thread_posts(fake_slack, "1700000000.000500") == []  # only 1 hour old
    with database.read_session() as session:
        days = {
            f.last_nudged_on for f in session.exec(select(NameFix)).all() if f.thread_ts in threads
        }
    assert days == {"2026-03-09"}

    run(database, settings, DST_MONDAY + timedelta(days=1))
    deliver_all(outbox)
    assert [len(thread_posts(fake_slack, t)) for t in threads] == [2, 2]


def test_no_reminder_channel_still_nudges(database, database_url, fake_slack) -> None:
    settings = make_settings(database_url, fake_slack.url, REMINDER_CHANNEL_ID="")
    threads = seed_waiting_fixes(database)

    result = run(database, settings, DST_MONDAY)
    deliver_all(make_outbox(database, settings))

    assert result.entries == 3 and result.messages == 0  # the digest would list all three
    assert [len(thread_posts(fake_slack, t)) for t in threads] == [1, 1]
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    assert no_run(database)  # nothing posted: the day stays open for when the channel is set

    settings = make_settings(database_url, fake_slack.url)
    assert run(database, settings, DST_MONDAY + timedelta(hours=2)).messages == 1
    deliver_all(make_outbox(database, settings))
    assert len(digest_posts(fake_slack)) == 1  # and the nudges are not sent twice
    assert [len(thread_posts(fake_slack, t)) for t in threads] == [1, 1]


def test_no_reminder_channel_catch_up_locks_nothing_once_the_day_is_done(
    database, database_url, fake_slack, monkeypatch
) -> None:
    """Without REMINDER_CHANNEL_ID the day stays open all day, and the catch-up looks at it
    every 15 minutes: once the nudges are sent and the PINs expired, a look only reads."""
    settings = make_settings(database_url, fake_slack.url, REMINDER_CHANNEL_ID="")
    threads = seed_waiting_fixes(database)
    outbox = make_outbox(database, settings)
    now = [DST_MONDAY + timedelta(minutes=30)]
    services = Services(
        settings=settings,
        database=database,
        outbox=outbox,
        clock=lambda: now[0],
        kick=lambda: deliver_all(outbox),
    )
    writes: list[str] = []
    transaction = database.transaction

    def counted() -> Any:
        writes.append("write")
        return transaction()

    catch_up_job(services, render_digest)  # the day's nudges
    assert [len(thread_posts(fake_slack, t)) for t in threads] == [1, 1]
    monkeypatch.setattr(database, "transaction", counted)

    now[0] += timedelta(minutes=15)
    catch_up_job(services, render_digest)
    assert writes == [] and no_run(database)

    monkeypatch.setattr(database, "transaction", transaction)
    with database.transaction() as session:  # a PIN from before the midnight rule runs out
        family = make_family(session, "A2002")
        child = make_patient(session, family, "Ivy", date(2020, 5, 5))
        pin(session, child, at(2025, 12, 1), expires_at=now[0] + timedelta(minutes=5))
    now[0] += timedelta(minutes=15)
    catch_up_job(services, render_digest)
    with database.read_session() as session:
        assert session.exec(select(Pin.status)).all() == [PinStatus.EXPIRED]
    assert [len(thread_posts(fake_slack, t)) for t in threads] == [1, 1]  # nudged once


# -- letters ----------------------------------------------------------------------------------


def upload_letter(
    database: Database, settings: Settings, family: Family, thread_ts: str, uploaded_at: datetime
) -> str:
    file_id = WebClientPort(make_client(settings)).upload_file(
        channel=FRONT,
        thread_ts=thread_ts,
        content=b"%PDF-1.4 letters",
        filename="pins.pdf",
        title="PIN letters",
    )
    with database.transaction() as session:
        batch = IssueBatch(
            family_id=family.id or 0,
            issued_by="U0STAFF",
            mode="print_only",
            idempotency_key=f"letters:{file_id}",
            channel_id=FRONT,
            thread_ts=thread_ts,
        )
        session.add(batch)
        session.flush()
        session.add(
            LetterFile(
                batch_id=batch.id or 0,
                file_id=file_id,
                channel_id=FRONT,
                thread_ts=thread_ts,
                uploaded_at=uploaded_at,
            )
        )
    return file_id


@pytest.fixture
def family(database: Database) -> Family:
    with database.transaction() as session:
        return make_family(session)


def deleted(fake: FakeSlack) -> dict[str, bool]:
    return {f.file_id: f.deleted for f in fake.uploaded_files()}


def test_letters_older_than_the_ttl_are_deleted_once_and_the_thread_told(
    database, settings, fake_slack, outbox, family
) -> None:
    now = DST_MONDAY
    old_card = fake_slack.add_message(FRONT, text="family card")
    new_card = fake_slack.add_message(FRONT, text="another family card")
    old = upload_letter(database, settings, family, old_card, now - timedelta(hours=25))
    new = upload_letter(database, settings, family, new_card, now - timedelta(hours=1))

    assert sweep_letters(database, settings, now=now) == 1
    deliver_all(outbox)
    assert sweep_letters(database, settings, now=now + timedelta(minutes=15)) == 0
    deliver_all(outbox)

    assert [c.args["file"] for c in fake_slack.calls_to("files.delete")] == [old]
    assert deleted(fake_slack) == {old: True, new: False}
    [reply] = thread_posts(fake_slack, old_card)
    assert (
        "PIN letters removed from Slack after 24 h; re-issue to print again."
        in (reply.args["text"])
    )
    assert thread_posts(fake_slack, new_card) == []
    with database.read_session() as session:
        rows = {r.file_id: r.deleted_at for r in session.exec(select(LetterFile)).all()}
    assert rows[old] is not None and rows[new] is None

    assert sweep_letters(database, settings, now=now + timedelta(hours=24)) == 1  # its turn
    deliver_all(outbox)
    assert deleted(fake_slack) == {old: True, new: True}


def test_a_letter_already_gone_from_slack_counts_as_deleted(
    database, settings, fake_slack, outbox, family
) -> None:
    card = fake_slack.add_message(FRONT, text="family card")
    file_id = upload_letter(database, settings, family, card, DST_MONDAY - timedelta(hours=30))
    make_client(settings).files_delete(file=file_id)  # someone removed it by hand

    sweep_letters(database, settings, now=DST_MONDAY)
    deliver_all(outbox)

    with database.read_session() as session:
        letter = session.exec(select(LetterFile)).one()
    assert letter.deleted_at is not None
    assert len(thread_posts(fake_slack, card)) == 1


def test_letters_are_kept_when_the_ttl_is_zero(database, database_url, fake_slack, family) -> None:
    settings = make_settings(database_url, fake_slack.url, PIN_LETTER_TTL_HOURS="0")
    card = fake_slack.add_message(FRONT, text="family card")
    upload_letter(database, settings, family, card, DST_MONDAY - timedelta(days=30))

    assert sweep_letters(database, settings, now=DST_MONDAY) == 0


# -- `pinbot remind` --------------------------------------------------------------------------


def remind(database: Database, settings: Settings, now: datetime, *, force: bool = False) -> int:
    return run_from_cli(settings, database, force=force, clock=lambda: now)


def test_remind_twice_posts_once_and_says_so(database, settings, fake_slack, capsys) -> None:
    seed_practice(database)
    threads = seed_waiting_fixes(database)

    assert remind(database, settings, DST_MONDAY) == 0
    first = capsys.readouterr().out
    assert remind(database, settings, DST_MONDAY + timedelta(minutes=30)) == 0
    second = capsys.readouterr().out

    assert "Digest for 2026-03-09: 10 entries in 1 message(s)" in first
    assert "Nudged supervisors on 3 name fix(es)" in first
    assert "already posted" in second and "nothing posted" in second
    assert_one_digest_and_one_nudge_each(fake_slack, [*threads, "1700000000.000100"])


def test_remind_force_posts_again_and_is_audited(database, settings, fake_slack, capsys) -> None:
    seed_practice(database)
    remind(database, settings, DST_MONDAY)

    assert remind(database, settings, DST_MONDAY + timedelta(hours=1), force=True) == 0

    assert len(digest_posts(fake_slack)) == 2
    with database.read_session() as session:
        forced = session.exec(
            select(AuditEvent).where(AuditEvent.action == "reminders.force")
        ).all()
    assert [(e.actor, json.loads(e.details)["entries"]) for e in forced] == [("cli", 7)]


def test_remind_reports_what_it_could_not_deliver(
    database, settings, fake_slack, capsys, retry_waits
) -> None:
    seed_practice(database, threads=False)
    fake_slack.fail_next("chat.postMessage", status=500, times=10)

    assert remind(database, settings, DST_MONDAY) == 1

    assert capsys.readouterr().out.splitlines()[0] == (
        "Today's digest (2026-03-09) was not posted yet: Slack said internal_error. The "
        "running bot retries it (or run `pinbot remind` again)."
    )
    with database.read_session() as session:
        messages = select(OutgoingWork).where(OutgoingWork.kind == WorkKind.SLACK_MESSAGE)
        statuses = {w.status for w in session.exec(messages).all()}  # not the weekly chart
    assert statuses == {WorkStatus.PENDING}


def digest_work(database: Database) -> list[OutgoingWork]:
    with database.read_session() as session:
        return list(
            session.exec(select(OutgoingWork).where(OutgoingWork.dedupe_key.startswith("digest:")))
        )


def test_remind_waits_for_another_runs_delivery_in_flight(
    database, settings, fake_slack, capsys
) -> None:
    seed_practice(database, threads=False)
    run(database, settings, DST_MONDAY)  # another run queued today's digest...
    [work] = digest_work(database)
    fake_slack.delays["chat.postMessage"] = 1.0  # ...and is posting it, slowly
    other = threading.Thread(target=make_outbox(database, settings).deliver, args=(work.id,))
    other.start()
    deadline = time.monotonic() + 5
    while not digest_work(database)[0].claimed_until:  # its claim is taken
        assert time.monotonic() < deadline
        time.sleep(0.01)

    started = time.monotonic()
    code = run_from_cli(settings, database, force=False, clock=lambda: DST_MONDAY, wait=5)
    waited = time.monotonic() - started
    other.join(5)

    assert code == 0
    [line] = capsys.readouterr().out.splitlines()[:1]
    posted = digest_work(database)[0].done_at
    assert posted is not None
    assert line == (
        "Today's digest (2026-03-09) was already posted by another run at "
        f"{posted.astimezone(TZ):%-I:%M %p}: nothing posted. Run `pinbot remind --force` to "
        "post it again."
    )
    assert 0.5 < waited < 5  # it waited for the other run, not for the whole bound
    assert len(digest_posts(fake_slack)) == 1


def test_remind_gives_up_waiting_and_says_the_digest_is_not_posted(
    database, settings, fake_slack, capsys
) -> None:
    seed_practice(database, threads=False)
    run(database, settings, DST_MONDAY)
    with database.transaction() as session:  # another run holds the digest and stalls
        for work in session.exec(select(OutgoingWork)).all():
            work.claimed_until = utcnow() + timedelta(minutes=5)

    started = time.monotonic()
    code = run_from_cli(settings, database, force=False, clock=lambda: DST_MONDAY, wait=0.6)

    assert code == 1
    assert 0.6 <= time.monotonic() - started < 5
    assert capsys.readouterr().out.splitlines()[0] == (
        "Today's digest (2026-03-09) is being delivered by another run but was not posted "
        "within 0.6 s; run `pinbot remind` again in a few minutes to see whether it went out."
    )
    assert digest_posts(fake_slack) == []


def test_remind_without_a_reminder_channel_says_so_and_posts_later_when_it_is_set(
    database, database_url, fake_slack, capsys
) -> None:
    seed_practice(database, threads=False)
    unset = make_settings(database_url, fake_slack.url, REMINDER_CHANNEL_ID="")

    assert remind(database, unset, DST_MONDAY) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0] == (
        "Digest for 2026-03-09 (7 entries) not posted: REMINDER_CHANNEL_ID is not set. Set it "
        "to the staff channel's ID and run `pinbot remind` again."
    )
    assert "not posted: REMINDER_CHANNEL_ID is not set." in first[-1]  # the week's report

    settings = make_settings(database_url, fake_slack.url)
    assert remind(database, settings, DST_MONDAY + timedelta(hours=1)) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "Digest for 2026-03-09: 7 entries in 1 message(s), posted to C0REMIND by this run."
    )
    assert len(digest_posts(fake_slack)) == 1


def test_remind_says_why_a_digest_could_not_be_posted(
    database, settings, fake_slack, capsys
) -> None:
    seed_practice(database, threads=False)
    fake_slack.fail_next("chat.postMessage", error="not_in_channel")

    assert remind(database, settings, DST_MONDAY) == 1

    assert capsys.readouterr().out.splitlines()[0] == (
        "Today's digest (2026-03-09) was not posted: pinbot is not in C0REMIND: /invite "
        "@pinbot there. Fix that, then run `pinbot remind --force` to post it."
    )
    assert remind(database, settings, DST_MONDAY + timedelta(minutes=5), force=True) == 0
    assert len(digest_posts(fake_slack)) == 1
