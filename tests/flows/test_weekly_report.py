"""The weekly adoption report (SPEC §10), on SQLite and PostgreSQL: one chart per ISO week
across concurrent `pinbot remind` processes, restarts and a late start, uploaded with its alt
text and the totals beside it, counts only."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from bot.config import Settings, load_settings
from bot.db import Database
from bot.delivery.worker import Outbox
from bot.reminders.jobs import catch_up_job
from bot.reminders.weekly import ADOPTION, run_weekly
from bot.reports.adoption import build_report
from bot.reports.figures import alt_text
from bot.runtime.process import run_from_cli
from bot.services import Services
from handlers.app import make_client
from handlers.digest import render_digest
from handlers.notices import render_notice
from handlers.slack_port import WebClientPort
from models import OutgoingWork, ReminderRun, WorkKind, WorkStatus
from tests.core.reports.history import NOW, TZ, seed_history
from tests.support.fake_slack import FakeSlack, UploadedFile

REMIND = "C0REMIND"
REPO_ROOT = Path(__file__).resolve().parents[2]
PRACTICE = "Maple Grove Pediatrics (test)"
MONDAY_0800 = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)


def env(database_url: str, fake_slack: FakeSlack) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_API_URL": fake_slack.url,
        "REMINDER_CHANNEL_ID": REMIND,
        "SUPERVISOR_IDS": "U0SUPER1",
        "PRACTICE_TIMEZONE": "America/New_York",
        "REMINDER_TIME": "08:00",
        "PORTAL_URL": "https://portal.example.com",
        "PRACTICE_NAME": PRACTICE,
        "PRACTICE_PHONE": "555-0100",
    }


@pytest.fixture
def settings(database_url: str, fake_slack: FakeSlack) -> Settings:
    settings = load_settings(env(database_url, fake_slack))
    assert not settings.problems
    return settings


def charts(fake: FakeSlack) -> list[UploadedFile]:
    return [f for f in fake.uploaded_files() if f.filename.startswith("pin-adoption-")]


def deliver_all(outbox: Outbox) -> None:
    while outbox.deliver_due():
        pass


def test_three_concurrent_pinbot_remind_processes_post_one_chart(
    database: Database, database_url: str, settings: Settings, fake_slack: FakeSlack
) -> None:
    phi = seed_history(database)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.weekly_remind_worker", NOW.isoformat()],
            cwd=REPO_ROOT,
            env={**env(database_url, fake_slack), "PATH": "/usr/bin:/bin"},
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
    outputs = [worker.communicate(timeout=90)[0] for worker in workers]

    # A run that finds work another process is delivering waits for it, then exits 0.
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    assert "could not be delivered" not in "".join(outputs)
    posted = [o for o in outputs if "chart posted to C0REMIND" in o]
    assert len(posted) == 1, outputs
    # Each run also sweeps, and the digest's race has its own "already posted" line: count
    # the adoption report's lines only (the chart's winner may have lost the digest's race).
    report_lines = [
        line for o in outputs for line in o.splitlines() if line.startswith("The adoption report")
    ]
    assert sum("was already posted" in x or "being delivered" in x for x in report_lines) == 2
    [chart] = charts(fake_slack)
    assert chart.channel_id == REMIND and chart.thread_ts is None
    with Image.open(io.BytesIO(chart.data)) as image:
        assert image.format == "PNG" and image.size == (1600, 900)
    # The figures the chart was drawn from: the 12 full weeks before Monday 30 Nov.
    with database.read_session() as session:
        report = build_report(session, now=NOW, tz=TZ, practice_name=PRACTICE, current_week=False)
    assert chart.alt_txt == alt_text(report)
    assert chart.initial_comment is not None
    assert "9 PINs issued (5 emailed, 4 printed)" in chart.initial_comment
    assert "Registered within 30 days: 50 % (3 of 6" in chart.initial_comment
    assert "Emailed: 67 % (2 of 3)" in chart.initial_comment
    assert "Printed: 33 % (1 of 3)" in chart.initial_comment
    assert "By letter language: en 67 %, es 50 %, es+en 0 %" in chart.initial_comment
    for words in phi:
        for text in (chart.alt_txt, chart.initial_comment, chart.title, chart.filename):
            assert words.lower() not in text.lower(), words
    with database.read_session() as session:
        [run] = session.exec(select(ReminderRun).where(ReminderRun.kind == ADOPTION)).all()
    assert run.local_date == "2026-11-30" and run.posted_at is not None and run.entries == 9


def services_at(database: Database, settings: Settings, now: datetime) -> Services:
    outbox = Outbox(
        database,
        settings,
        slack=WebClientPort(make_client(settings)),
        clock=lambda: now,
        render_notice=render_notice,
    )
    return Services(
        settings=settings,
        database=database,
        outbox=outbox,
        clock=lambda: now,
        kick=lambda: deliver_all(outbox),
    )


def test_a_bot_started_later_in_the_week_posts_the_missing_report_once(
    database: Database, settings: Settings, fake_slack: FakeSlack
) -> None:
    seed_history(database)
    # Wednesday: nobody posted Monday's report. The catch-up (at start-up) posts it...
    catch_up_job(services_at(database, settings, NOW), render_digest)
    assert len(charts(fake_slack)) == 1
    # ...and neither a restart that afternoon nor Sunday night posts it again.
    catch_up_job(services_at(database, settings, NOW + timedelta(hours=3)), render_digest)
    catch_up_job(services_at(database, settings, NOW + timedelta(days=4, hours=9)), render_digest)
    assert len(charts(fake_slack)) == 1
    # The next Monday at 08:00 is a new week: a new chart.
    next_monday = (MONDAY_0800 + timedelta(weeks=1)).astimezone(TZ)
    catch_up_job(services_at(database, settings, next_monday), render_digest)
    assert len(charts(fake_slack)) == 2


def test_due_from_monday_at_reminder_time(database: Database, settings: Settings) -> None:
    seed_history(database)
    early = run_weekly(database, settings, now=MONDAY_0800 - timedelta(minutes=1))
    assert not early.due and not early.claimed
    on_time = run_weekly(database, settings, now=MONDAY_0800)
    assert on_time.due and on_time.claimed and on_time.queued and on_time.issued == 9
    again = run_weekly(database, settings, now=MONDAY_0800 + timedelta(minutes=5))
    assert again.due and not again.claimed


def test_remind_twice_posts_one_chart_and_says_so(
    database: Database,
    settings: Settings,
    fake_slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_history(database)
    assert run_from_cli(settings, database, force=False, clock=lambda: NOW) == 0
    first = capsys.readouterr().out
    assert run_from_cli(settings, database, force=True, clock=lambda: NOW) == 0
    second = capsys.readouterr().out

    assert run_from_cli(settings, database, force=False, clock=lambda: NOW) == 0
    third = capsys.readouterr().out

    assert "The adoption report for the week of 2026-11-30: 9 PINs" in first
    assert "chart posted to C0REMIND" in second  # --force posts the report again too
    assert "was already posted" in third
    assert len(charts(fake_slack)) == 2


def test_an_upload_that_fails_is_retried_by_the_outbox_and_posted_once(
    database: Database, settings: Settings, fake_slack: FakeSlack
) -> None:
    seed_history(database)
    clock = [NOW]
    outbox = Outbox(
        database,
        settings,
        slack=WebClientPort(make_client(settings)),
        clock=lambda: clock[0],
        render_notice=render_notice,
    )
    fake_slack.fail_next("files.completeUploadExternal", error="fatal_error")
    assert run_weekly(database, settings, now=NOW).queued
    deliver_all(outbox)
    assert charts(fake_slack) == []
    clock[0] = NOW + timedelta(minutes=1)  # past the first backoff
    deliver_all(outbox)

    assert len(charts(fake_slack)) == 1
    with database.read_session() as session:
        [work] = session.exec(
            select(OutgoingWork).where(OutgoingWork.kind == WorkKind.REPORT_UPLOAD)
        ).all()
    assert (work.status, work.attempts) == (WorkStatus.DONE, 2)
    assert json.loads(work.result)["file_id"] == charts(fake_slack)[0].file_id


def week_runs(database: Database) -> list[ReminderRun]:
    with database.read_session() as session:
        return list(session.exec(select(ReminderRun).where(ReminderRun.kind == ADOPTION)))


def test_no_pins_in_twelve_weeks_posts_nothing_and_leaves_the_week_open(
    database: Database,
    settings: Settings,
    fake_slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_from_cli(settings, database, force=False, clock=lambda: NOW) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "The adoption report for the week of 2026-11-30 was not posted: no PIN was issued in "
        "the 12 weeks before 2026-11-30. The week stays open: a later run this week posts it "
        "once there are PINs."
    )
    assert week_runs(database) == []
    assert fake_slack.calls_to("files.getUploadURLExternal") == []

    seed_history(database)  # PINs arrive later that week (an import of the practice's history)
    assert run_from_cli(settings, database, force=False, clock=lambda: NOW) == 0
    assert "chart posted to C0REMIND" in capsys.readouterr().out
    assert len(charts(fake_slack)) == 1


def test_a_bot_started_on_sunday_with_no_pins_leaves_the_week_open(
    database: Database, settings: Settings, fake_slack: FakeSlack
) -> None:
    sunday = datetime(2026, 12, 6, 10, 0, tzinfo=TZ)
    catch_up_job(services_at(database, settings, sunday), render_digest)
    assert week_runs(database) == []

    seed_history(database)
    catch_up_job(services_at(database, settings, sunday + timedelta(minutes=15)), render_digest)
    assert len(charts(fake_slack)) == 1


def test_remind_says_why_the_chart_was_not_posted(
    database: Database,
    settings: Settings,
    fake_slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_history(database)
    fake_slack.fail_next("files.completeUploadExternal", error="not_in_channel")

    assert run_from_cli(settings, database, force=False, clock=lambda: NOW) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "The adoption report for the week of 2026-11-30 (9 PINs in the last 12 weeks) was not "
        "posted: pinbot is not in C0REMIND: /invite @pinbot there. Fix that, then run "
        "`pinbot remind --force` to post it."
    )


def test_the_weekly_job_fires_mondays_at_reminder_time_across_dst(settings: Settings) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.reminders.jobs import register_jobs
    from bot.reminders.weekly import WEEKLY_JOB

    scheduler = BackgroundScheduler(timezone=TZ)
    services = Services(settings=settings, database=None, outbox=None)  # type: ignore[arg-type]
    register_jobs(scheduler, services, render=render_digest)
    trigger = scheduler.get_job(WEEKLY_JOB).trigger
    # Saturday 31 Oct 2026 (DST ends Sunday 1 Nov): the next run is Monday 08:00 EST.
    fire = trigger.get_next_fire_time(None, datetime(2026, 10, 31, 12, tzinfo=TZ))
    assert fire == datetime(2026, 11, 2, 8, 0, tzinfo=TZ)
    assert fire.utcoffset() == timedelta(hours=-5)
    after = trigger.get_next_fire_time(fire, fire + timedelta(minutes=1))
    assert after == datetime(2026, 11, 9, 8, 0, tzinfo=TZ)
