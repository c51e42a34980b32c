"""What a failed delivery means (the worker, bot/delivery/worker.py, records it): whether it is
given up, a failed upload's letters kept for "Retry upload", and what the family's thread is
told — a final failure, or a letter's deletion failing for a day."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.config import Settings
from bot.delivery import keys
from bot.delivery.notices import DeliveryFailed, LettersNotRemoved
from bot.delivery.outbox import (
    ANNOUNCED_FAILURES,
    LETTERS_HELD,
    STUCK_DELETE_HOURS,
    erase_secrets,
    hold_hours,
    post_in_thread,
)
from models import OutgoingWork, WorkKind, WorkStatus


def gives_up(
    work: OutgoingWork, *, transient: bool, next_attempt_at: datetime, settings: Settings
) -> bool:
    if work.kind == WorkKind.LETTERS_DELETE:
        return False  # a letter left in Slack is a live credential: retry until it's gone
    if not transient or work.attempts >= work.max_attempts:
        return True
    # An upload's PINs are kept no longer than its letters' hold: it stops trying then.
    hold_ends = work.created_at + timedelta(hours=hold_hours(settings))
    return work.kind == WorkKind.LETTERS_UPLOAD and next_attempt_at >= hold_ends


def give_up(session: Session, work: OutgoingWork, *, settings: Settings, now: datetime) -> None:
    """The final failure: PINs erased (or a failed upload's letters held) and, for an email
    or letters, the thread told."""
    work.status = WorkStatus.FAILED
    retry_until = _hold_letters(work, settings=settings, now=now)
    if retry_until is None:
        work.payload = erase_secrets(work.payload)
    local_until = retry_until.astimezone(settings.timezone) if retry_until else None
    _announce_failure(session, work, local_until)


def tell_stuck_delete(session: Session, work: OutgoingWork, *, now: datetime) -> None:
    """Once a letter's deletion has failed for STUCK_DELETE_HOURS, say so in its thread
    (once; the retries go on)."""
    failing = now - work.created_at
    told = json.loads(work.result or "{}").get("told_stuck")
    if told or failing < timedelta(hours=STUCK_DELETE_HOURS):
        return
    work.result = json.dumps({"told_stuck": True})
    payload = json.loads(work.payload)
    post_in_thread(
        session,
        dedupe_key=keys.letters_not_removed_notice(payload["file_id"]),
        channel_id=payload.get("channel_id"),
        thread_ts=payload.get("thread_ts"),
        family_id=work.family_id,
        notice=LettersNotRemoved(
            failing_hours=int(failing.total_seconds() // 3600), error=work.last_error
        ),
    )


def _hold_letters(work: OutgoingWork, *, settings: Settings, now: datetime) -> datetime | None:
    """Keep a failed upload's letters for "Retry upload" (the bounded exception to erasing
    PINs on giving up); the time they are kept until, or None when they are not."""
    if work.kind != WorkKind.LETTERS_UPLOAD:
        return None
    until = work.created_at + timedelta(hours=hold_hours(settings))
    if until <= now:
        return None
    work.result = LETTERS_HELD
    return until


def _announce_failure(session: Session, work: OutgoingWork, local_until: datetime | None) -> None:
    kind = WorkKind(work.kind)
    if kind not in ANNOUNCED_FAILURES:
        return
    payload = json.loads(work.payload)
    # One notice per final failure: after "Retry upload" the same work may fail again.
    post_in_thread(
        session,
        dedupe_key=keys.failure_notice(work.id or 0, work.attempts),
        channel_id=payload.get("channel_id"),
        thread_ts=payload.get("thread_ts"),
        family_id=work.family_id,
        notice=DeliveryFailed(
            work_id=work.id or 0,
            work_kind=kind,
            attempts=work.attempts,
            error=work.last_error or "",
            retry_until=local_until,
        ),
    )
