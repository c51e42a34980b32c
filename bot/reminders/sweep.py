"""Scheduled reminders (SPEC §5 "Reminders") and the PIN-letter sweep (SPEC §6).

The daily run (weekdays at REMINDER_TIME in PRACTICE_TIMEZONE, or `pinbot remind`) marks PINs
past expires_at expired, builds the digest, nudges name fixes waiting over 24 h in their own
threads, and queues all of it as outgoing work (bot/delivery/outbox.py delivers it, with retries).

Exactly once per local day, across restarts, late starts and replicas: APScheduler's job store
is per process (its FAQ: never share one), so the database decides. The run claims its
(kind, local date) ReminderRun row with INSERT ... ON CONFLICT DO NOTHING inside a write
transaction — on PostgreSQL a racing claimer blocks on the unique key until the winner commits
and then inserts nothing; on SQLite BEGIN IMMEDIATE queues the writers — and queues the digest
in that same transaction. A crash before commit leaves no claim (the next sweep runs it); a
crash after commit leaves pending work (the outbox posts it). A claim whose messages all failed
for good can be taken over by a later sweep that day; `--force` always takes it.

Business days are Monday to Friday; practice holidays are not modelled.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bot import audit
from bot.config import Settings
from bot.db import Database, rows_changed
from bot.delivery import keys
from bot.delivery.notices import NameFixWaiting, as_payload
from bot.reminders import worklists
from bot.reminders.claims import claim_run, enqueue_once, worker_id
from bot.reminders.digest import (
    FIX_NUDGE_AFTER,
    Digest,
    as_local,
    build_digest,
    clock_label,
)
from bot.reminders.outcome import DAILY as DAILY  # re-exported: the digest run's kind
from bot.reminders.outcome import DigestOutcome, DigestState, digest_line
from models import (
    NameFix,
    NameFixStatus,
    OutgoingWork,
    Pin,
    PinStatus,
    ReminderRun,
    WorkKind,
    WorkStatus,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DAILY_JOB, CATCH_UP_JOB, LETTERS_JOB = "reminders-daily", "reminders-catch-up", "letters-sweep"
CATCH_UP_MINUTES = 15
DELIVERY_PASSES = 3  # `pinbot remind`: the work, the replies it queues, and one spare
LETTER_SWEEP_MINUTES = 15  # the TTL is in hours: a letter outlives it by at most this much

# Turns a digest into Slack messages, each {"text": fallback, "blocks": [block dicts]}.
# handlers/digest.py provides it, so bot/ never handles Slack types.
Renderer = Callable[[Digest], list[dict[str, Any]]]


@dataclass(frozen=True)
class DailyResult:
    local_date: date
    claimed: bool  # this call won (or, forced, took) the day's run
    run: ReminderRun
    entries: int = 0
    messages: int = 0
    nudges: int = 0
    expired: int = 0


# -- the daily run ----------------------------------------------------------------------------


def _past_expiry(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(Pin.status) == PinStatus.ACTIVE,
        col(Pin.expires_at).is_not(None),
        col(Pin.expires_at) <= now,
    )


def mark_expired_pins(session: Session, now: datetime) -> int:
    return int(
        rows_changed(
            session.execute(
                update(Pin)
                .where(_past_expiry(now))
                .values(status=PinStatus.EXPIRED, status_changed_at=now)
            )
        )
    )


def _nudges_due(session: Session, *, now: datetime, today: str) -> list[worklists.PendingFix]:
    """Name fixes pending over FIX_NUDGE_AFTER, in a thread, not yet nudged on `today`."""
    return [
        fix
        for fix in worklists.pending_name_fixes(session, older_than=now - FIX_NUDGE_AFTER)
        if fix.channel_id and fix.thread_ts and fix.last_nudged_on != today
    ]


def daily_run_owed(database: Database, settings: Settings, *, now: datetime) -> bool:
    """Whether the day's run has anything to do now. With REMINDER_CHANNEL_ID set it always
    may: only building the digest tells whether it is worth posting. Without it no digest can
    be posted, so only PINs past their expiry or name fixes to nudge (in their own threads)
    make a run worth its write transaction: the scheduled jobs, which re-check an open day
    every CATCH_UP_MINUTES, read this first and otherwise neither lock nor build anything."""
    if settings.reminder_channel_id:
        return True
    today = now.astimezone(settings.timezone).date().isoformat()
    with database.read_session() as session:
        expired = session.exec(select(Pin.id).where(_past_expiry(now)).limit(1)).first()
        return expired is not None or bool(_nudges_due(session, now=now, today=today))


def queue_nudges(session: Session, *, now: datetime, settings: Settings) -> int:
    """A reply in each long-pending name fix's thread, at most once per request per local day
    (the conditional update of last_nudged_on decides, even under --force or replicas)."""
    tz = settings.timezone
    today = now.astimezone(tz).date().isoformat()
    nudged = 0
    for fix in _nudges_due(session, now=now, today=today):
        won = rows_changed(
            session.execute(
                update(NameFix)
                .where(
                    col(NameFix.id) == fix.name_fix_id,
                    col(NameFix.status) == NameFixStatus.PENDING,
                    or_(
                        col(NameFix.last_nudged_on).is_(None), col(NameFix.last_nudged_on) != today
                    ),
                )
                .values(last_nudged_on=today)
            )
        )
        if won != 1:
            continue
        notice = NameFixWaiting(
            requested_at=as_local(fix.requested_at, tz), supervisor_ids=settings.supervisor_ids
        )
        enqueue_once(
            session,
            kind=WorkKind.SLACK_MESSAGE,
            dedupe_key=keys.name_fix_nudge(fix.name_fix_id, today),
            family_id=fix.family_id,
            now=now,
            payload={
                "channel_id": fix.channel_id,
                "thread_ts": fix.thread_ts,
                "notice": as_payload(notice),
            },
        )
        audit.record(
            session,
            actor="system",
            action="name_fix.nudge",
            family_id=fix.family_id,
            name_fix_id=fix.name_fix_id,
        )
        nudged += 1
    return nudged


def _queue_digest(
    session: Session,
    *,
    run: ReminderRun,
    digest: Digest,
    channel: str | None,
    render: Renderer,
    now: datetime,
) -> int:
    if not digest.worth_posting or not channel:
        return 0
    token = uuid.uuid4().hex[:8]  # a new key per claim: a forced or taken-over run posts anew
    messages = render(digest)
    for part, message in enumerate(messages, 1):
        enqueue_once(
            session,
            kind=WorkKind.SLACK_MESSAGE,
            dedupe_key=keys.digest_message(run.local_date, token, part),
            now=now,
            payload={
                "channel_id": channel,
                "thread_ts": None,
                "text": message["text"],
                "blocks": message["blocks"],
                "reminder_run_id": run.id,
            },
        )
    return len(messages)


def run_daily(
    database: Database,
    settings: Settings,
    *,
    now: datetime,
    render: Renderer,
    force: bool = False,
    actor: str = "system",
    worker: str | None = None,
) -> DailyResult:
    """Claim today's run and, if this call won it, queue everything in the same transaction."""
    now = now.astimezone(UTC)
    today = now.astimezone(settings.timezone).date()
    with database.transaction() as session:
        run = claim_run(
            session,
            local_date=today.isoformat(),
            worker=worker or worker_id(),
            now=now,
            force=force,
        )
        if run is None:
            existing = session.exec(
                select(ReminderRun).where(
                    ReminderRun.kind == DAILY, ReminderRun.local_date == today.isoformat()
                )
            ).one()
            return DailyResult(today, claimed=False, run=existing)
        expired = mark_expired_pins(session, now)
        digest = build_digest(session, now=now, tz=settings.timezone, feed=settings.feed)
        nudges = queue_nudges(session, now=now, settings=settings)
        messages = _queue_digest(
            session,
            run=run,
            digest=digest,
            now=now,
            render=render,
            channel=settings.reminder_channel_id,
        )
        run.entries = digest.total
        if not messages:
            # Nothing posted (nothing to say, or nowhere to say it): release the claim, so the
            # day stays open and a later run (the catch-up, `pinbot remind`) posts what is due.
            session.delete(run)
        if messages or nudges or expired or actor != "system":
            # The catch-up re-checks an open day every 15 minutes: only news is audited.
            audit.record(
                session,
                actor=actor,
                action="reminders.force" if force else "reminders.daily",
                local_date=today.isoformat(),
                entries=digest.total,
                messages=messages,
                nudges=nudges,
                expired=expired,
            )
    log.info(
        "daily reminders queued",
        extra={
            "local_date": today.isoformat(),
            "forced": force,
            "entries": digest.total,
            "messages": messages,
        },
    )
    return DailyResult(today, True, run, digest.total, messages, nudges, expired)


def pending_reminder_work(database: Database, local_date: date) -> list[int]:
    """Today's digest and nudges, and letter deletions with their thread replies, not yet
    delivered (what `pinbot remind` delivers before it exits)."""
    day = local_date.isoformat()
    with database.read_session() as session:
        key = col(OutgoingWork.dedupe_key)
        rows = session.exec(
            select(OutgoingWork.id)
            .where(
                col(OutgoingWork.status) == WorkStatus.PENDING,
                or_(
                    key.startswith(keys.digest_prefix(day), autoescape=True),
                    key.like(keys.name_fix_nudge_pattern(day)),
                    *(key.startswith(prefix) for prefix in keys.LETTER_CLEANUP_PREFIXES),
                ),
            )
            .order_by(col(OutgoingWork.id))
        ).all()
    return [i for i in rows if i is not None]


# -- letters ----------------------------------------------------------------------------------


# -- scheduling -------------------------------------------------------------------------------


def describe(
    result: DailyResult,
    settings: Settings,
    *,
    letters: int = 0,
    undelivered: int = 0,
    digest: DigestOutcome | None = None,
    waited: float = 0,
) -> list[str]:
    """The CLI's lines; `digest` (when given) says what became of the queued digest."""
    run, day = result.run, result.local_date.isoformat()
    tz = settings.timezone
    if digest is not None and digest.state is not DigestState.NOTHING_QUEUED:
        lines = [
            digest_line(
                digest,
                claimed=result.claimed,
                day=day,
                entries=result.entries or run.entries,
                messages=result.messages or len(digest.work_ids),
                channel=settings.reminder_channel_id,
                posted_at_label=clock_label(as_local(digest.posted_at, tz)),
                waited=waited,
            )
        ]
    elif not result.claimed:
        when = clock_label(as_local(run.posted_at or run.claimed_at, tz))
        if run.posted_at is None:
            done = f"was already queued at {when} by {run.claimed_by} and is being delivered"
        elif run.entries:
            done = f"was already posted at {when}"
        else:
            done = f"already ran at {when} and found nothing needing attention"
        lines = [
            f"Today's digest ({day}) {done}: nothing posted. Run `pinbot remind --force` "
            "to post it again."
        ]
    elif result.messages:
        lines = [
            f"Digest for {day}: {result.entries} entr{'y' if result.entries == 1 else 'ies'}"
            f" in {result.messages} message(s) to {settings.reminder_channel_id}."
        ]
    elif not settings.reminder_channel_id:
        lines = [
            f"Digest for {day} ({result.entries} entr{'y' if result.entries == 1 else 'ies'}) "
            "not posted: REMINDER_CHANNEL_ID is not set. Set it to the staff channel's ID "
            "and run `pinbot remind` again."
        ]
    else:
        lines = [
            f"Nothing needs attention for {day}: no digest posted. The day stays open: "
            "a later run today posts one if something comes up."
        ]
    if result.nudges:
        lines.append(f"Nudged supervisors on {result.nudges} name fix(es) waiting over 24 h.")
    if result.expired:
        lines.append(f"Marked {result.expired} PIN(s) expired.")
    if letters:
        lines.append(
            f"Removing {letters} PIN-letter PDF(s) from Slack (older than "
            f"{settings.pin_letter_ttl_hours} h)."
        )
    if undelivered:
        lines.append(
            f"{undelivered} message(s) could not be delivered yet; the running bot "
            "retries them (or run `pinbot remind` again)."
        )
    return lines
