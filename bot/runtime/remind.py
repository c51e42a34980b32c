"""`pinbot remind`: the daily run now, with the schedule's claim, and this week's adoption
report when it is due and not yet posted; delivers what it queued before the process exits."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime

from slack_sdk import WebClient
from sqlmodel import col, select

from bot.config import Settings
from bot.db import Database
from bot.delivery.outbox import erase_held_letters
from bot.reminders.sweep import (
    DELIVERY_PASSES,
    describe,
    pending_reminder_work,
    run_daily,
    sweep_letters,
)
from bot.reminders.weekly import describe_weekly, pending_report_work, run_weekly
from bot.runtime.process import make_services
from bot.services import Services
from handlers.app import make_client
from handlers.digest import render_digest
from models import OutgoingWork, utcnow

IN_FLIGHT_WAIT = 30.0  # seconds: another run's upload or post is usually done in one or two


def run_from_cli(
    settings: Settings,
    database: Database,
    *,
    force: bool,
    clock: Callable[[], datetime] = utcnow,
    client: WebClient | None = None,
) -> int:
    """The daily run now, with the schedule's claim; delivers what it queued before exiting."""
    services = make_services(settings, database, client or make_client(settings))
    services.clock = services.outbox.clock = clock  # one clock for the run and its delivery
    now = clock()
    result = run_daily(database, settings, now=now, render=render_digest, force=force, actor="cli")
    # --force is the digest's: the week's report keeps its once-per-week claim.
    weekly = run_weekly(database, settings, now=now, actor="cli")
    erase_held_letters(database, settings, now=now)  # as the scheduled letters sweep does
    letters = sweep_letters(database, settings, now=now)
    left = _deliver(services, result.local_date, weekly.monday)
    for line in describe(result, settings, letters=letters, undelivered=left):
        print(line)
    for line in describe_weekly(weekly, settings):
        print(line)
    return 1 if left else 0


def _pending(database: Database, local_date: date, monday: date) -> list[int]:
    return pending_reminder_work(database, local_date) + pending_report_work(database, monday)


def _deliver(services: Services, local_date: date, monday: date) -> int:
    """Deliver today's reminder work and the week's report; later passes send what deliveries
    queued in turn (the "letters removed" replies). Work another run is delivering right now
    (a concurrent `pinbot remind`, the bot's worker) is waited for, up to IN_FLIGHT_WAIT.
    Returns how many are still undelivered: they failed for now and the bot's retry timer
    (or the next run) takes them."""
    for _ in range(DELIVERY_PASSES):
        outcomes = [
            services.outbox.deliver(i) for i in _pending(services.database, local_date, monday)
        ]
        if not any(outcomes):
            break
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    while _in_flight(services, _pending(services.database, local_date, monday)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return len(_pending(services.database, local_date, monday))


def _in_flight(services: Services, work_ids: list[int]) -> bool:
    """Is any of this work claimed by another run that has not finished delivering it?"""
    if not work_ids:
        return False
    with services.database.read_session() as session:
        return (
            session.exec(
                select(OutgoingWork.id).where(
                    col(OutgoingWork.id).in_(work_ids),
                    col(OutgoingWork.claimed_until).is_not(None),
                    col(OutgoingWork.claimed_until) > services.outbox.clock(),
                )
            ).first()
            is not None
        )
