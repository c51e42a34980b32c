"""Outgoing work: emails and Slack posts/uploads written in the same transaction as the records
they announce, delivered after commit, retried with backoff, never lost nor doubled.

A worker claims a row with a conditional UPDATE (only one replica wins it), performs it outside
any transaction, then records success or failure. PIN plaintext lives only in a pending row's
payload and is erased once the work is delivered or finally given up — with one bounded
exception: a letters upload that finally failed keeps its letters until PIN_LETTER_TTL_HOURS
after issue (24 h when that is 0), so staff can click "Retry upload" and post the same letters
without issuing new PINs; `erase_held_letters` (the letters sweep) erases them after that.
A crash between sending and recording lets the claim lapse and the work is retried; an email
retried that way carries the same Message-ID, so mail systems see one message. What each kind
of work does is in bot/deliveries.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot import audit
from bot.config import Settings
from bot.db import Database, DatabaseUnavailable, rows_changed
from bot.delivery.performers import LETTERS_REMOVED as LETTERS_REMOVED  # re-exported
from bot.delivery.performers import (
    SMTP_TIMEOUT_SECONDS,
    Deliveries,
    DeliveryError,
    Outcome,
    PostRenderer,
    SlackPort,
    plain_post,
    practice_of,
)
from bot.delivery.smtp import MailError
from bot.documents.letters import Practice
from bot.errors import NotAllowed, NotFound
from models import OutgoingWork, Pin, PinStatus, WorkKind, WorkStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Seconds before attempt 2, 3, ...: about an hour in all before giving up.
BACKOFF_SECONDS = (30, 60, 120, 300, 900, 1800)
_SECRET_KEYS = {"pin"}
DEFAULT_MAX_ATTEMPTS = 6  # OutgoingWork.max_attempts' default; a retry grants as many again
# OutgoingWork.result of a finally failed letters upload whose letters are kept for a retry,
# and of one whose letters were erased since (equality, so the sweep can query for it).
LETTERS_HELD = json.dumps({"letters": "held for retry"})
LETTERS_ERASED = json.dumps({"letters": "erased"})
HOLD_HOURS_WHEN_KEPT = 24  # PIN_LETTER_TTL_HOURS=0 keeps PDFs in Slack, not PINs in our DB


def email_key(batch_id: int | None) -> str:
    return f"email:{batch_id}"


def enqueue(
    session: Session,
    *,
    kind: WorkKind,
    dedupe_key: str,
    payload: dict[str, Any],
    batch_id: int | None = None,
    family_id: int | None = None,
) -> OutgoingWork:
    work = OutgoingWork(
        kind=kind,
        dedupe_key=dedupe_key,
        batch_id=batch_id,
        family_id=family_id,
        payload=json.dumps(payload, default=str),
    )
    session.add(work)
    return work


def post_in_thread(
    session: Session,
    *,
    dedupe_key: str,
    channel_id: str | None,
    thread_ts: str | None,
    text: str,
    family_id: int | None = None,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """Queue a message for a thread (no-op when the work has no Slack thread)."""
    if channel_id:
        payload: dict[str, Any] = {"channel_id": channel_id, "thread_ts": thread_ts, "text": text}
        if blocks:
            payload["blocks"] = blocks
        enqueue(
            session,
            kind=WorkKind.SLACK_MESSAGE,
            dedupe_key=dedupe_key,
            family_id=family_id,
            payload=payload,
        )


def post_notice(
    session: Session,
    *,
    dedupe_key: str,
    channel_id: str,
    thread_ts: str | None,
    notice: dict[str, Any],
    text: str,
    family_id: int | None = None,
) -> None:
    """Queue a typed notice for a thread: `notice` ({"kind": ..., plain values}) is rendered
    at delivery by the Outbox's `render_post` (buttons and all); `text` is the plain
    fallback when no renderer knows the kind."""
    enqueue(
        session,
        kind=WorkKind.SLACK_MESSAGE,
        dedupe_key=dedupe_key,
        family_id=family_id,
        payload={"channel_id": channel_id, "thread_ts": thread_ts, "text": text, "notice": notice},
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
        work.payload = _erase_secrets(work.payload)


def _erase_secrets(payload_json: str) -> str:
    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (None if k in _SECRET_KEYS else scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(json.loads(payload_json)))


@dataclass(frozen=True)
class FailureNotice:
    """What the family thread is told when a delivery finally fails."""

    work_id: int
    kind: WorkKind
    attempts: int
    error: str
    retry_until: datetime | None = None  # letters kept for "Retry upload" until then (local)


_FAILED_WHAT = {
    WorkKind.WELCOME_EMAIL: "The welcome email could not be delivered",
    WorkKind.LETTERS_UPLOAD: "The PIN letters could not be uploaded",
}


def notice_text(notice: FailureNotice) -> str:
    text = (
        f":warning: {_FAILED_WHAT[notice.kind]} after {notice.attempts} attempt(s) "
        f"({notice.error})."
    )
    if notice.retry_until is None:
        return text + (
            " The PINs themselves are issued; re-issue from the family card to print new letters."
        )
    return text + (
        " The PINs themselves are issued. *Retry upload* posts the same letters "
        f"again (no new PINs) until {notice.retry_until:%b %d, %I:%M %p}; after "
        "that, re-issue from the family card."
    )


# Turns a failure notice into {"text": ..., "blocks": [...]}. handlers/ gives one with a
# "Retry upload" button (bot/ never builds Slack types); the default is the text alone.
NoticeRenderer = Callable[[FailureNotice], dict[str, Any]]


def plain_notice(notice: FailureNotice) -> dict[str, Any]:
    return {"text": notice_text(notice)}


def hold_hours(settings: Settings) -> int:
    """How long after issue a finally failed upload keeps its letters for a retry."""
    return settings.pin_letter_ttl_hours or HOLD_HOURS_WHEN_KEPT


class Outbox:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        slack: SlackPort | None,
        clock: Callable[[], datetime] = utcnow,
        backoff: tuple[int, ...] = BACKOFF_SECONDS,
        render_notice: NoticeRenderer = plain_notice,
        render_post: PostRenderer = plain_post,
    ) -> None:
        self.database = database
        self.settings = settings
        self.slack = slack
        self.clock = clock
        self.backoff = backoff
        self.render_notice = render_notice
        self.render_post = render_post
        self.smtp_timeout = SMTP_TIMEOUT_SECONDS  # tests shorten it to exercise a stalled server

    @property
    def practice(self) -> Practice:
        return practice_of(self.settings)

    def deliveries(self) -> Deliveries:
        """The performers (bot/deliveries.py), over this outbox's collaborators as they are now."""
        return Deliveries(
            database=self.database,
            settings=self.settings,
            slack=self.slack,
            clock=self.clock,
            post_in_thread=post_in_thread,
            smtp_timeout=self.smtp_timeout,
            render_post=self.render_post,
        )

    def due_ids(self, limit: int = 50) -> list[int]:
        now = self.clock()
        with self.database.read_session() as session:
            rows = session.exec(
                select(OutgoingWork.id)
                .where(
                    OutgoingWork.status == WorkStatus.PENDING, OutgoingWork.next_attempt_at <= now
                )
                .order_by(col(OutgoingWork.id))
                .limit(limit)
            ).all()
        return [i for i in rows if i is not None]

    def deliver_due(self, limit: int = 50) -> int:
        """Deliver everything due now; returns how many deliveries this call attempted."""
        return sum(1 for work_id in self.due_ids(limit) if self.deliver(work_id) is not None)

    def deliver(self, work_id: int) -> bool | None:
        """True delivered, False failed this time, None someone else owns it or it is done."""
        work = self._claim(work_id)
        if work is None:
            return None
        try:
            perform = self.deliveries().performer(WorkKind(work.kind))
            outcome = perform(json.loads(work.payload), work)
        except (DeliveryError, MailError) as error:
            self._record_failure(work, str(error), transient=error.transient)
            return False
        except Exception as error:
            log.exception("delivery crashed", extra={"work_id": work.id, "kind": work.kind})
            self._record_failure(work, type(error).__name__, transient=True)
            return False
        self._record_success(work, outcome)
        return True

    def _claim(self, work_id: int) -> OutgoingWork | None:
        now = self.clock()
        with self.database.transaction() as session:
            claimed = rows_changed(
                session.execute(
                    update(OutgoingWork)
                    .where(
                        col(OutgoingWork.id) == work_id,
                        col(OutgoingWork.status) == WorkStatus.PENDING,
                        col(OutgoingWork.next_attempt_at) <= now,
                        or_(
                            col(OutgoingWork.claimed_until).is_(None),
                            col(OutgoingWork.claimed_until) < now,
                        ),
                    )
                    .values(claimed_until=now + LEASE, attempts=OutgoingWork.attempts + 1)
                )
            )
            return session.get(OutgoingWork, work_id) if claimed == 1 else None

    def _record_success(self, work: OutgoingWork, outcome: Outcome) -> None:
        _persistently(lambda: self._write_success(work, outcome))
        log.info(
            "delivered", extra={"work_id": work.id, "kind": work.kind, "attempt": work.attempts}
        )

    def _write_success(self, work: OutgoingWork, outcome: Outcome) -> None:
        with self.database.transaction() as session:
            row = session.get(OutgoingWork, work.id)
            assert row is not None
            row.status = WorkStatus.DONE
            row.done_at = self.clock()
            row.claimed_until = None
            row.payload = _erase_secrets(row.payload)
            row.result = json.dumps(outcome.result)
            if outcome.follow_up is not None:
                outcome.follow_up(session)

    def _record_failure(self, work: OutgoingWork, error: str, *, transient: bool) -> None:
        give_up = not transient or work.attempts >= work.max_attempts
        _persistently(lambda: self._write_failure(work, error, give_up))
        log.warning(
            "delivery failed",
            extra={
                "work_id": work.id,
                "kind": work.kind,
                "attempt": work.attempts,
                "gave_up": give_up,
            },
        )

    def _write_failure(self, work: OutgoingWork, error: str, give_up: bool) -> None:
        with self.database.transaction() as session:
            row = session.get(OutgoingWork, work.id)
            assert row is not None
            row.claimed_until = None
            row.last_error = error[:300]
            if give_up:
                row.status = WorkStatus.FAILED
                retry_until = self._hold_letters(row)
                if retry_until is None:
                    row.payload = _erase_secrets(row.payload)
                self._announce_failure(session, row, retry_until)
            else:
                delay = self.backoff[min(work.attempts - 1, len(self.backoff) - 1)]
                row.next_attempt_at = self.clock() + timedelta(seconds=delay)

    def _hold_letters(self, work: OutgoingWork) -> datetime | None:
        """Keep a failed upload's letters for "Retry upload" (the bounded exception to erasing
        PINs on giving up); the time they are kept until, or None when they are not."""
        if work.kind != WorkKind.LETTERS_UPLOAD:
            return None
        until = work.created_at + timedelta(hours=hold_hours(self.settings))
        if until <= self.clock():
            return None
        work.result = LETTERS_HELD
        return until

    def _announce_failure(
        self, session: Session, work: OutgoingWork, retry_until: datetime | None
    ) -> None:
        kind = WorkKind(work.kind)
        if kind not in _FAILED_WHAT:
            return
        payload = json.loads(work.payload)
        local_until = retry_until.astimezone(self.settings.timezone) if retry_until else None
        message = self.render_notice(
            FailureNotice(
                work_id=work.id or 0,
                kind=kind,
                attempts=work.attempts,
                error=work.last_error,
                retry_until=local_until,
            )
        )
        # One notice per final failure: after "Retry upload" the same work may fail again.
        post_in_thread(
            session,
            dedupe_key=f"failed:{work.id}:{work.attempts}",
            channel_id=payload.get("channel_id"),
            thread_ts=payload.get("thread_ts"),
            family_id=work.family_id,
            text=message["text"],
            blocks=message.get("blocks"),
        )


RECORD_RETRY_PAUSES = (0.05, 0.5, 2.0)


def _persistently(write: Callable[[], None]) -> None:
    """Record what a delivery did, trying again on a database hiccup (a deadlock victim, a
    dropped connection): the email or post is already out, and a record lost here would mean
    doing it again once the claim lapses."""
    for pause in (*RECORD_RETRY_PAUSES, None):
        try:
            write()
            return
        except DatabaseUnavailable:
            if pause is None:
                raise
            log.warning("recording a delivery failed; trying again")
            time.sleep(pause)


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
        work.payload = _erase_secrets(work.payload)
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


class OutboxWorker:
    """A background thread that delivers as soon as it is kicked after a commit, and on a
    timer for retries (the timer is APScheduler's job; see bot/app.py)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinbot-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            try:
                while self.outbox.deliver_due() and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("outbox sweep failed")
