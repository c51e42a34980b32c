"""Delivering outgoing work: the Outbox claims one row at a time with a conditional UPDATE
(only one replica wins it; the claim names its owner and a heartbeat keeps it, see
bot/delivery/leases.py), performs it outside any transaction, then records success or failure
with backoff (Slack's Retry-After moves the next attempt, no thread sleeps through it), erasing
PIN plaintext once the work is done or given up; OutboxWorker is the background thread that runs
due work after each commit and every POLL_SECONDS."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import Database, DatabaseUnavailable, rows_changed
from bot.delivery import failures
from bot.delivery.leases import Heartbeat, owner_name
from bot.delivery.notices import NoticeRenderer
from bot.delivery.outbox import BACKOFF_SECONDS, HEARTBEAT, LEASE, erase_secrets, post_in_thread
from bot.delivery.performers import (
    SMTP_TIMEOUT_SECONDS,
    Deliveries,
    DeliveryError,
    Outcome,
    SlackPort,
    practice_of,
)
from bot.delivery.sealing import PinCipher, PinUnreadable, is_sealed, open_pins, pins_in
from bot.delivery.smtp import MailError
from bot.documents.letters import Practice
from bot.logs import error_ref
from models import OutgoingWork, WorkKind, WorkStatus, utcnow

log = logging.getLogger(__name__)

# The worker looks for due work this often besides being kicked after each commit: a claim left
# by a dead process is taken over within LEASE + POLL_SECONDS (20 s).
POLL_SECONDS = 5.0


class Outbox:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        slack: SlackPort | None,
        clock: Callable[[], datetime] = utcnow,
        backoff: tuple[int, ...] = BACKOFF_SECONDS,
        render_notice: NoticeRenderer,
        pin_cipher: PinCipher | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.slack = slack
        self.clock = clock
        self.backoff = backoff
        self.render_notice = render_notice
        # Opens the PINs sealed in the work it delivers; make_services hands it the practice's.
        self.pin_cipher = pin_cipher
        self.smtp_timeout = SMTP_TIMEOUT_SECONDS  # tests shorten it to exercise a stalled server
        self.owner = owner_name()
        # Tests that wait out a real takeover shorten both (tests/flows/test_outage.py).
        self.lease, self.heartbeat = LEASE, HEARTBEAT

    @property
    def practice(self) -> Practice:
        return practice_of(self.settings)

    def deliveries(self) -> Deliveries:
        """The performers (performers.py), over this outbox's collaborators as they are now."""
        return Deliveries(
            database=self.database,
            settings=self.settings,
            slack=self.slack,
            clock=self.clock,
            post_in_thread=post_in_thread,
            render_notice=self.render_notice,
            smtp_timeout=self.smtp_timeout,
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
        with Heartbeat(lambda: self._renew(work_id), self.heartbeat.total_seconds()):
            return self._perform(work)

    def _perform(self, work: OutgoingWork) -> bool:
        try:
            perform = self.deliveries().performer(WorkKind(work.kind))
            outcome = perform(self._opened_payload(work), work)
        except DeliveryError as error:
            self._record_failure(
                work, str(error), transient=error.transient, retry_after=error.retry_after
            )
            return False
        except MailError as error:
            self._record_failure(work, str(error), transient=error.transient)
            return False
        except Exception as error:
            # The type and a ref, never the message: a database error's holds SQL (bot/logs.py).
            # The row keeps both, so what staff are told of it leads IT to this log line.
            fields = _error_fields(error)
            log.error(
                "delivery crashed",
                exc_info=error,
                extra={**fields, "work_id": work.id, "kind": work.kind},
            )
            self._record_failure(work, f"{fields['error']}, ref {fields['ref']}", transient=True)
            return False
        self._record_success(work, outcome)
        return True

    def _opened_payload(self, work: OutgoingWork) -> dict[str, Any]:
        """The payload with its PINs in plaintext, for the performer only: never written back,
        never logged. A PIN that does not open (another secret, an altered row) fails the work
        for good: no retry can open it, and the thread is told so staff can issue again."""
        payload: dict[str, Any] = json.loads(work.payload)
        if not any(is_sealed(pin) for pin in pins_in(payload)):
            return payload  # nothing sealed: no PIN, or plaintext queued before the upgrade
        if self.pin_cipher is None:
            raise DeliveryError("no PIN key to open this work's PINs", transient=False)
        try:
            return open_pins(payload, self.pin_cipher, work.dedupe_key)
        except PinUnreadable:
            raise DeliveryError(
                "its PINs do not open with this PINBOT_KEY (changed or lost secret?)",
                transient=False,
            ) from None

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
                    .values(
                        claimed_until=now + self.lease,
                        claimed_by=self.owner,
                        attempts=OutgoingWork.attempts + 1,
                    )
                )
            )
            return session.get(OutgoingWork, work_id) if claimed == 1 else None

    def _renew(self, work_id: int) -> bool:
        """The heartbeat: push our claim's end LEASE ahead; False once it is not ours."""
        with self.database.transaction() as session:
            renewed = rows_changed(
                session.execute(
                    update(OutgoingWork)
                    .where(
                        col(OutgoingWork.id) == work_id,
                        col(OutgoingWork.claimed_by) == self.owner,
                        col(OutgoingWork.status) == WorkStatus.PENDING,
                    )
                    .values(claimed_until=self.clock() + self.lease)
                )
            )
        return renewed == 1

    def _owned(self, session: Session, work: OutgoingWork) -> OutgoingWork | None:
        """The row to record on, if our claim still holds it: a claim taken over (our heartbeat
        failed for a whole LEASE) is the new owner's to record."""
        row = session.get(OutgoingWork, work.id)
        if row is None or row.claimed_by != self.owner or row.status != WorkStatus.PENDING:
            log.warning("delivery claim was taken over; not recording", extra={"work_id": work.id})
            return None
        row.claimed_until = row.claimed_by = None
        return row

    def _record_success(self, work: OutgoingWork, outcome: Outcome) -> None:
        _persistently(lambda: self._write_success(work, outcome))
        log.info(
            "delivered", extra={"work_id": work.id, "kind": work.kind, "attempt": work.attempts}
        )

    def _write_success(self, work: OutgoingWork, outcome: Outcome) -> None:
        with self.database.transaction() as session:
            row = self._owned(session, work)
            if row is None:
                return
            row.status = WorkStatus.DONE
            row.done_at = self.clock()
            row.payload = erase_secrets(row.payload)
            row.result = json.dumps(outcome.result)
            if outcome.follow_up is not None:
                outcome.follow_up(session)

    def _record_failure(
        self, work: OutgoingWork, error: str, *, transient: bool, retry_after: float | None = None
    ) -> None:
        # Slack's Retry-After moves the next attempt (never sooner than the backoff): no
        # thread sleeps through it, so it can't outlive the claim.
        delay = max(self.backoff[min(work.attempts - 1, len(self.backoff) - 1)], retry_after or 0)
        next_attempt_at = self.clock() + timedelta(seconds=delay)
        give_up = failures.gives_up(
            work, transient=transient, next_attempt_at=next_attempt_at, settings=self.settings
        )
        _persistently(lambda: self._write_failure(work, error, give_up, next_attempt_at))
        log.warning(
            "delivery failed",
            extra={
                "work_id": work.id,
                "kind": work.kind,
                "attempt": work.attempts,
                "gave_up": give_up,
            },
        )

    def _write_failure(
        self, work: OutgoingWork, error: str, give_up: bool, next_attempt_at: datetime
    ) -> None:
        with self.database.transaction() as session:
            row = self._owned(session, work)
            if row is None:
                return
            row.last_error = error[:300]
            if give_up:
                failures.give_up(session, row, settings=self.settings, now=self.clock())
            else:
                row.next_attempt_at = next_attempt_at
                if row.kind == WorkKind.LETTERS_DELETE:
                    failures.tell_stuck_delete(session, row, now=self.clock())


def _error_fields(error: Exception) -> dict[str, str]:
    return {"error": type(error).__name__, "ref": error_ref()}


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


class OutboxWorker:
    """A background thread that delivers as soon as it is kicked after a commit, and every
    POLL_SECONDS for retries and claims left by a dead process (`poll_seconds`: tests that
    wait out a real takeover shorten it, with the outbox's lease)."""

    def __init__(self, outbox: Outbox, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.outbox = outbox
        self.poll_seconds = poll_seconds
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
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                while self.outbox.deliver_due() and not self._stop.is_set():
                    pass
            except Exception as error:
                log.error("outbox sweep failed", exc_info=error, extra=_error_fields(error))
