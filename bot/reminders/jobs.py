"""The reminder jobs (APScheduler), declared beside their work: the weekday digest at
REMINDER_TIME, Monday's adoption report at the same time, a catch-up sweep for late starts (it
also posts a week's report missed on Monday), and the PIN-letter sweep. Registered explicitly
by the composition root; each job owns its session."""

from __future__ import annotations

import logging
from datetime import date, datetime, time

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import select

from bot.db import Database
from bot.delivery.outbox import erase_held_letters
from bot.reminders.digest import is_business_day
from bot.reminders.letters import sweep_letters
from bot.reminders.sweep import (
    CATCH_UP_JOB,
    CATCH_UP_MINUTES,
    DAILY,
    DAILY_JOB,
    LETTER_SWEEP_MINUTES,
    LETTERS_JOB,
    Renderer,
    daily_run_owed,
    run_daily,
)
from bot.reminders.weekly import WEEKLY_JOB, report_due, run_weekly, week_claimed
from bot.reports.adoption import week_start
from bot.services import Services
from models import ReminderRun

log = logging.getLogger(__name__)


def catch_up_due(now_local: datetime, at: time) -> bool:
    """A business day past REMINDER_TIME: today's digest is owed unless the day is claimed."""
    return is_business_day(now_local.date()) and now_local.time() >= at


def day_claimed(database: Database, local_date: date) -> bool:
    with database.read_session() as session:
        return (
            session.exec(
                select(ReminderRun.id).where(
                    ReminderRun.kind == DAILY, ReminderRun.local_date == local_date.isoformat()
                )
            ).first()
            is not None
        )


def rest_of_day_seconds(at: time) -> int:
    """Misfire grace for the daily job: a run delayed (busy or suspended host) still happens
    the same day, never the next."""
    return max(24 * 3600 - (at.hour * 3600 + at.minute * 60), 60)


def daily_job(services: Services, render: Renderer) -> None:
    now = services.clock()
    if not is_business_day(now.astimezone(services.settings.timezone).date()):
        return
    if not daily_run_owed(services.database, services.settings, now=now):
        return  # no REMINDER_CHANNEL_ID and nothing else to do: no write transaction
    run_daily(services.database, services.settings, now=now, render=render)
    services.kick()  # also delivers what a crashed replica queued and never posted


def weekly_job(services: Services) -> None:
    """This ISO week's adoption report, if due and not yet claimed (bot/reminders/weekly.py)."""
    if run_weekly(services.database, services.settings, now=services.clock()).queued:
        services.kick()


def catch_up_job(services: Services, render: Renderer) -> None:
    """At start-up and every CATCH_UP_MINUTES: run the day if it is owed and unclaimed — the
    bot was down at REMINDER_TIME (APScheduler's in-memory store forgets missed times), the
    database failed the 08:00 run, or nothing was posted yet (a day or week with nothing
    posted keeps no claim) — and the week's adoption report likewise, any day of the week.
    Reads first, so a check of a posted day takes no write lock; nor does one of an open day
    without REMINDER_CHANNEL_ID once its PINs are expired and its name fixes nudged."""
    now_local = services.now_local()
    at = services.settings.reminder_time
    if catch_up_due(now_local, at) and not day_claimed(services.database, now_local.date()):
        daily_job(services, render)
    if report_due(now_local, at) and not week_claimed(
        services.database, week_start(now_local.date())
    ):
        weekly_job(services)


def letters_job(services: Services) -> None:
    now = services.clock()
    # Letters kept for "Retry upload" after a failed upload lose their PINs on the same sweep.
    erase_held_letters(services.database, services.settings, now=now)
    if sweep_letters(services.database, services.settings, now=now):
        services.kick()


def register_jobs(scheduler: BaseScheduler, services: Services, *, render: Renderer) -> None:
    settings, at = services.settings, services.settings.reminder_time
    tz = settings.timezone
    scheduler.add_job(
        daily_job,
        CronTrigger(day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=tz),
        args=(services, render),
        id=DAILY_JOB,
        name="daily reminders",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=rest_of_day_seconds(at),
        replace_existing=True,
    )
    scheduler.add_job(
        weekly_job,
        CronTrigger(day_of_week="mon", hour=at.hour, minute=at.minute, timezone=tz),
        args=(services,),
        id=WEEKLY_JOB,
        name="weekly adoption report",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=rest_of_day_seconds(at),
        replace_existing=True,
    )
    # Both periodic jobs also run once right at start-up.
    scheduler.add_job(
        catch_up_job,
        IntervalTrigger(minutes=CATCH_UP_MINUTES, timezone=tz),
        args=(services, render),
        id=CATCH_UP_JOB,
        name="daily reminders (catch-up)",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=CATCH_UP_MINUTES * 60,
        replace_existing=True,
        next_run_time=datetime.now(tz),
    )
    scheduler.add_job(
        letters_job,
        IntervalTrigger(minutes=LETTER_SWEEP_MINUTES, timezone=tz),
        args=(services,),
        id=LETTERS_JOB,
        name="PIN-letter sweep",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=LETTER_SWEEP_MINUTES * 60,
        replace_existing=True,
        next_run_time=datetime.now(tz),
    )
