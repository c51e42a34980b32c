"""Outgoing work: emails and Slack posts/uploads written in the same transaction as the records
they announce, delivered after commit (bot/delivery/worker.py), retried with backoff, never
lost nor doubled. This module is the queue side: what callers enqueue, cancel and retry.

A worker claims a row with a conditional UPDATE (only one replica wins it), performs it outside
any transaction, then records success or failure. A PIN, sealed, lives only in a pending row's
payload and is erased once the work is delivered or finally given up — with one bounded
exception: a letters upload that finally failed keeps its letters until PIN_LETTER_TTL_HOURS
after issue (24 h when that is 0), so staff can click "Retry upload" and post the same letters
without issuing new PINs; `erase_held_letters` (the letters sweep) erases them after that.
A claim names its owner and lasts LEASE; the owner renews it every HEARTBEAT while it works, so
a live delivery keeps it however slow Slack or SMTP is, and a dead process's claim lapses within
LEASE and another replica takes the work over. A crash between sending and recording lets the
claim lapse and the work is retried; an email retried that way carries the same Message-ID, so
mail systems see one message. What each kind of work does is in bot/delivery/performers.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from bot import audit
from bot.config import Settings
from bot.db import Database
from bot.delivery.notices import ThreadNotice, as_payload
from bot.delivery.sealing import PinCipher, has_plaintext_pins, seal_pins
from bot.errors import NotAllowed, NotFound
from models import OutgoingWork, Pin, PinStatus, WorkKind, WorkStatus

log = logging.getLogger(__name__)

# A dead claim is taken over within LEASE plus the worker's poll (POLL_SECONDS): under 30 s.
LEASE = timedelta(seconds=15)
HEARTBEAT = timedelta(seconds=5)
# Seconds before attempt 2, 3, ...: 14 attempts over 12 h 53.5 min, so an SMTP or Slack outage
# of half a day loses no email and no letters (the README's "Operations" states it as measured).
BACKOFF_SECONDS = (30, 60, 120, 300, 900, 1800, 3600, 3600, 7200, 7200, 7200, 7200, 7200)
_SECRET_KEYS = {"pin"}
# OutgoingWork.max_attempts' default (the model and migration 0006 say 14); a retry grants as
# many again. Deleting a letter never gives up: it retries on this schedule until it succeeds.
DEFAULT_MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
STUCK_DELETE_HOURS = 24  # a letter's deletion failing this long is said in its thread, once
# OutgoingWork.result of a finally failed letters upload whose letters are kept for a retry,
# and of one whose letters were erased since (equality, so the sweep can query for it).
LETTERS_HELD = json.dumps({"letters": "held for retry"})
LETTERS_ERASED = json.dumps({"letters": "erased"})
# The deliveries whose final failure the family thread is told about.
ANNOUNCED_FAILURES = frozenset({WorkKind.WELCOME_EMAIL, WorkKind.LETTERS_UPLOAD})
HOLD_HOURS_WHEN_KEPT = 24  # PIN_LETTER_TTL_HOURS=0 keeps PDFs in Slack, not PINs in our DB


_QUEUED = "pinbot_queued_work"  # Session.info key: this transaction queued delivery work


def queued_work(session: Session) -> bool:
    """Whether `session`'s transaction queued work, so its commit should wake the worker."""
    return bool(session.info.get(_QUEUED))


def enqueue(
    session: Session,
    *,
    kind: WorkKind,
    dedupe_key: str,
    payload: dict[str, Any],
    batch_id: int | None = None,
    family_id: int | None = None,
    pin_cipher: PinCipher | None = None,
) -> OutgoingWork:
    """Queue work. A payload that carries PINs is written with them sealed (sealing.py), so
    it needs `pin_cipher`: without one it is refused rather than written in plaintext."""
    if has_plaintext_pins(payload):
        if pin_cipher is None:
            raise ValueError("outgoing work that carries a PIN needs the PIN cipher")
        payload = seal_pins(payload, pin_cipher, dedupe_key)
    work = OutgoingWork(
        kind=kind,
        dedupe_key=dedupe_key,
        batch_id=batch_id,
        family_id=family_id,
        payload=json.dumps(payload, default=str),
    )
    session.add(work)
    session.info[_QUEUED] = True
    return work


def post_in_thread(
    session: Session,
    *,
    dedupe_key: str,
    channel_id: str | None,
    thread_ts: str | None,
    notice: ThreadNotice | None = None,
    text: str | None = None,
    family_id: int | None = None,
) -> None:
    """Queue a message for a thread (no-op when the work has no Slack thread): a typed notice,
    which the Slack adapter renders when it is posted, or text the adapter already wrote."""
    if channel_id:
        payload: dict[str, Any] = {"channel_id": channel_id, "thread_ts": thread_ts}
        if notice is not None:
            payload["notice"] = as_payload(notice)
        else:
            payload["text"] = text or ""
        enqueue(
            session,
            kind=WorkKind.SLACK_MESSAGE,
            dedupe_key=dedupe_key,
            family_id=family_id,
            payload=payload,
        )


def cancel(session: Session, *, dedupe_key: str, reason: str) -> None:
    work = session.exec(
        select(OutgoingWork).where(
            OutgoingWork.dedupe_key == dedupe_key, OutgoingWork.status == WorkStatus.PENDING
        )
    ).first()
    if work is not None:
        work.status = WorkStatus.FAILED
        work.last_error = reason[:300]
        work.payload = erase_secrets(work.payload)


def erase_secrets(payload_json: str) -> str:
    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (None if k in _SECRET_KEYS else scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(json.loads(payload_json)))


def hold_hours(settings: Settings) -> int:
    """How long after issue a finally failed upload keeps its letters for a retry."""
    return settings.pin_letter_ttl_hours or HOLD_HOURS_WHEN_KEPT


@dataclass(frozen=True)
class RetryResult:
    queued: bool  # False: nothing to do (already queued or uploaded); `message` says why
    message: str


def retry_upload(
    session: Session,
    *,
    work_id: int,
    channel_id: str | None,
    thread_ts: str | None,
    requested_by: str,
    now: datetime,
    settings: Settings,
) -> RetryResult:
    """Queue a finally failed letters upload again, with the letters it kept: the same PINs,
    no new ones. Only from the thread the letters belong to; refused once they were erased
    or when any of their PINs was replaced since (those letters would print dead PINs) —
    refusals that erase the letters return rather than raise, so the erasure commits."""
    work = session.exec(
        select(OutgoingWork).where(OutgoingWork.id == work_id).with_for_update()
    ).first()
    if work is None or work.kind != WorkKind.LETTERS_UPLOAD:
        raise NotFound("That upload no longer exists. Re-issue from the family card.")
    payload = json.loads(work.payload)
    if payload.get("channel_id") != channel_id or (
        payload.get("thread_ts") and payload.get("thread_ts") != thread_ts
    ):
        raise NotAllowed("That button belongs to another family's thread.")
    if work.status == WorkStatus.PENDING:
        return RetryResult(
            False, "The upload is already queued; the letters will appear in this thread shortly."
        )
    if work.status == WorkStatus.DONE:
        return RetryResult(False, "The PIN letters were already uploaded to this thread.")
    if (
        work.result != LETTERS_HELD
        or work.created_at + timedelta(hours=hold_hours(settings)) <= now
    ):
        _erase_letters(work)
        return RetryResult(
            False,
            "Those letters are no longer kept (PINs are erased "
            f"{hold_hours(settings)} h after issue). Re-issue from the "
            "family card to print new ones.",
        )
    if _batch_has_replaced_pins(session, work.batch_id):
        _erase_letters(work)
        return RetryResult(
            False,
            "Some of these PINs were replaced by a newer issue since, so "
            "these letters are void. Re-issue from the family card.",
        )
    work.status, work.next_attempt_at, work.claimed_until = WorkStatus.PENDING, now, None
    session.info[_QUEUED] = True
    work.max_attempts = work.attempts + DEFAULT_MAX_ATTEMPTS
    work.result = "{}"
    audit.record(
        session,
        actor=requested_by,
        action="letters.retry",
        family_id=work.family_id,
        batch_id=work.batch_id,
        work_id=work.id,
    )
    return RetryResult(True, "Uploading the same PIN letters again (no new PINs).")


def _batch_has_replaced_pins(session: Session, batch_id: int | None) -> bool:
    return (
        session.exec(
            select(Pin.id).where(
                Pin.batch_id == batch_id,
                col(Pin.status).in_([PinStatus.REVOKED, PinStatus.EXPIRED]),
            )
        ).first()
        is not None
    )


def _erase_letters(work: OutgoingWork) -> None:
    if work.result == LETTERS_HELD:
        work.payload = erase_secrets(work.payload)
        work.result = LETTERS_ERASED


def erase_held_letters(database: Database, settings: Settings, *, now: datetime) -> int:
    """The letters sweep's second half: erase the PINs kept for "Retry upload" once their
    hold (PIN_LETTER_TTL_HOURS after issue, 24 h when 0) is over. Returns how many."""
    cutoff = now - timedelta(hours=hold_hours(settings))
    with database.transaction() as session:
        held = session.exec(
            select(OutgoingWork).where(
                OutgoingWork.kind == WorkKind.LETTERS_UPLOAD,
                OutgoingWork.status == WorkStatus.FAILED,
                OutgoingWork.result == LETTERS_HELD,
                col(OutgoingWork.created_at) <= cutoff,
            )
        ).all()
        for work in held:
            _erase_letters(work)
    if held:
        log.info("held letters erased", extra={"count": len(held)})
    return len(held)


def seal_legacy_payloads(database: Database, pin_cipher: PinCipher) -> int:
    """Seal in place the plaintext PINs that work queued before sealing existed still holds
    (run at start-up: an Alembic migration cannot see the secret). Such work keeps
    delivering meanwhile, since the worker passes plaintext through; returns how many rows."""
    sealed = 0
    with database.transaction() as session:
        rows = session.exec(
            select(OutgoingWork).where(
                col(OutgoingWork.kind).in_([WorkKind.WELCOME_EMAIL, WorkKind.LETTERS_UPLOAD]),
                # Only these still hold PINs: the rest were erased when done or given up.
                or_(
                    col(OutgoingWork.status) == WorkStatus.PENDING,
                    col(OutgoingWork.result) == LETTERS_HELD,
                ),
            )
        ).all()
        for work in rows:
            payload = json.loads(work.payload)
            if has_plaintext_pins(payload):
                work.payload = json.dumps(seal_pins(payload, pin_cipher, work.dedupe_key))
                sealed += 1
    if sealed:
        log.info("plaintext PINs from before the upgrade sealed", extra={"count": sealed})
    return sealed
