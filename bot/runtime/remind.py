"""`pinbot remind`: the daily run now, with the schedule's claim, and this week's adoption
report when it is due and not yet posted; delivers what it queued before the process exits and
says what really became of today's digest: posted by this run, posted by another run that
started at the same time, or still being delivered by one (waited for, a few seconds at most)."""

from __future__ import annotations

import time
from datetime import date

from bot.db import Database
from bot.delivery.outbox import erase_held_letters
from bot.reminders.letters import sweep_letters
from bot.reminders.outcome import delivered_elsewhere, digest_outcome
from bot.reminders.sweep import (
    DELIVERY_PASSES,
    Renderer,
    describe,
    pending_reminder_work,
    run_daily,
)
from bot.reminders.weekly import (
    ADOPTION,
    WORK_PREFIX,
    describe_weekly,
    pending_report_work,
    run_weekly,
)
from bot.services import Services

OTHER_RUN_WAIT_SECONDS = 10.0  # how long to wait for another run's delivery in flight
POLL_SECONDS = 0.2


def remind_now(services: Services, *, render: Renderer, force: bool, wait: float) -> int:
    """The daily run now, with the schedule's claim; delivers what it queued before exiting.
    Exit 1 only when today's digest (or other reminder work) is truly not delivered. The
    services (with their Slack port) and the digest's renderer come from the composition root."""
    settings, database = services.settings, services.database
    now = services.clock()
    result = run_daily(database, settings, now=now, render=render, force=force, actor="cli")
    weekly = run_weekly(database, settings, now=now, actor="cli", force=force)
    erase_held_letters(database, settings, now=now)  # as the scheduled letters sweep does
    letters = sweep_letters(database, settings, now=now)
    mine = _deliver(services, result.local_date, weekly.monday, wait=wait)
    digest = digest_outcome(
        database, result.local_date, delivered_by_me=mine, now=services.outbox.clock()
    )
    chart = digest_outcome(
        database,
        weekly.monday,
        delivered_by_me=mine,
        now=services.outbox.clock(),
        kind=ADOPTION,
        work_prefix=WORK_PREFIX,
    )
    pending = _pending(database, result.local_date, weekly.monday)
    left = len(set(pending) - digest.work_ids)
    for line in describe(
        result, settings, letters=letters, undelivered=left, digest=digest, waited=wait
    ):
        print(line)
    for line in describe_weekly(weekly, settings, chart if weekly.queued else None):
        print(line)
    chart_lost = weekly.queued and chart.undelivered
    return 1 if left or digest.undelivered or chart_lost else 0


def _pending(database: Database, local_date: date, monday: date) -> list[int]:
    return pending_reminder_work(database, local_date) + pending_report_work(database, monday)


def _deliver(services: Services, local_date: date, monday: date, *, wait: float) -> set[int]:
    """Deliver today's reminder work and the week's report; later passes send what deliveries
    queued in turn (the "letters removed" replies). While another run holds a claim on some of
    it (it is posting that message right now), wait for it, up to `wait` seconds. Returns the
    ids this run delivered; what is still pending failed for now and the bot's retry timer
    takes it."""
    mine: set[int] = set()
    deadline = time.monotonic() + wait
    while True:
        for _ in range(DELIVERY_PASSES):
            outcomes = {
                i: services.outbox.deliver(i)
                for i in _pending(services.database, local_date, monday)
            }
            mine |= {i for i, delivered in outcomes.items() if delivered}
            if not any(outcomes.values()):
                break
        pending = _pending(services.database, local_date, monday)
        now = services.outbox.clock()
        if not delivered_elsewhere(services.database, pending, now=now):
            return mine
        if time.monotonic() >= deadline:
            return mine
        time.sleep(POLL_SECONDS)
