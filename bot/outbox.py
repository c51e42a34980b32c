"""Outgoing work: emails and Slack posts/uploads written in the same transaction as the records
they announce, delivered after commit, retried with backoff, never lost nor doubled.

A worker claims a row with a conditional UPDATE (only one replica wins it), performs it outside
any transaction, then records success or failure. PIN plaintext lives only in a pending row's
payload and is erased once the work is delivered or finally given up. A crash between sending
and recording lets the claim lapse and the work is retried; an email retried that way carries
the same Message-ID, so mail systems see one message.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import Database
from bot.letters import Letter, LetterCase, Practice, render_letters
from bot.mail import MailError, WelcomeEmail, build_welcome_email, send_email
from bot.text import mask_email
from models import LetterFile, OutgoingWork, ReminderRun, WorkKind, WorkStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Seconds before attempt 2, 3, ...: about an hour in all before giving up.
BACKOFF_SECONDS = (30, 60, 120, 300, 900, 1800)
LETTERS_REMOVED = (":wastebasket: PIN letters removed from Slack after {hours} h; re-issue to "
                   "print again.")
_SECRET_KEYS = {"pin"}


class DeliveryError(Exception):
    """A delivery failed; `transient` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class SlackPort(Protocol):
    """The few Slack Web API operations delivery needs (implemented in handlers/)."""

    def post_message(self, *, channel: str, thread_ts: str | None, text: str,
                     blocks: list[dict[str, Any]] | None = None) -> str: ...

    def upload_file(self, *, channel: str, thread_ts: str | None, content: bytes,
                    filename: str, title: str) -> str: ...

    def delete_file(self, file_id: str) -> None: ...


def email_key(batch_id: int | None) -> str:
    return f"email:{batch_id}"


def enqueue(session: Session, *, kind: WorkKind, dedupe_key: str, payload: dict[str, Any],
            batch_id: int | None = None, family_id: int | None = None) -> OutgoingWork:
    work = OutgoingWork(kind=kind, dedupe_key=dedupe_key, batch_id=batch_id,
                        family_id=family_id, payload=json.dumps(payload, default=str))
    session.add(work)
    return work


def post_in_thread(session: Session, *, dedupe_key: str, channel_id: str | None,
                   thread_ts: str | None, text: str, family_id: int | None = None) -> None:
    """Queue a plain message for a thread (no-op when the work has no Slack thread)."""
    if channel_id:
        enqueue(session, kind=WorkKind.SLACK_MESSAGE, dedupe_key=dedupe_key, family_id=family_id,
                payload={"channel_id": channel_id, "thread_ts": thread_ts, "text": text})


def cancel(session: Session, *, dedupe_key: str, reason: str) -> None:
    work = session.exec(select(OutgoingWork).where(OutgoingWork.dedupe_key == dedupe_key,
                                                   OutgoingWork.status == WorkStatus.PENDING)
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
class Outcome:
    result: dict[str, Any]
    follow_up: Callable[[Session], None] | None = None


class Outbox:
    def __init__(self, database: Database, settings: Settings, *, slack: SlackPort | None,
                 clock: Callable[[], datetime] = utcnow,
                 backoff: tuple[int, ...] = BACKOFF_SECONDS) -> None:
        self.database = database
        self.settings = settings
        self.slack = slack
        self.clock = clock
        self.backoff = backoff
        self._performers: dict[str, Callable[[dict[str, Any], OutgoingWork], Outcome]] = {
            WorkKind.WELCOME_EMAIL: self._send_welcome_email,
            WorkKind.LETTERS_UPLOAD: self._upload_letters,
            WorkKind.SLACK_MESSAGE: self._post_message,
            WorkKind.LETTERS_DELETE: self._delete_letters,
        }

    @property
    def practice(self) -> Practice:
        s = self.settings
        return Practice(name=s.practice_name or "", phone=s.practice_phone or "",
                        portal_url=s.portal_url or "")

    def due_ids(self, limit: int = 50) -> list[int]:
        now = self.clock()
        with self.database.read_session() as session:
            rows = session.exec(
                select(OutgoingWork.id).where(OutgoingWork.status == WorkStatus.PENDING,
                                              OutgoingWork.next_attempt_at <= now)
                .order_by(col(OutgoingWork.id)).limit(limit)).all()
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
            outcome = self._performers[work.kind](json.loads(work.payload), work)
        except (DeliveryError, MailError) as error:
            self._record_failure(work, str(error), transient=error.transient)
            return False
        except Exception as error:  # noqa: BLE001 - an unknown fault must not lose the work
            log.exception("delivery crashed", extra={"work_id": work.id, "kind": work.kind})
            self._record_failure(work, type(error).__name__, transient=True)
            return False
        self._record_success(work, outcome)
        return True

    def _claim(self, work_id: int) -> OutgoingWork | None:
        now = self.clock()
        with self.database.transaction() as session:
            claimed = session.execute(
                update(OutgoingWork)
                .where(col(OutgoingWork.id) == work_id,
                       col(OutgoingWork.status) == WorkStatus.PENDING,
                       col(OutgoingWork.next_attempt_at) <= now,
                       or_(col(OutgoingWork.claimed_until).is_(None),
                           col(OutgoingWork.claimed_until) < now))
                .values(claimed_until=now + LEASE, attempts=OutgoingWork.attempts + 1)
            ).rowcount
            return session.get(OutgoingWork, work_id) if claimed == 1 else None

    def _record_success(self, work: OutgoingWork, outcome: Outcome) -> None:
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
        log.info("delivered", extra={"work_id": work.id, "kind": work.kind,
                                     "attempt": work.attempts})

    def _record_failure(self, work: OutgoingWork, error: str, *, transient: bool) -> None:
        give_up = not transient or work.attempts >= work.max_attempts
        with self.database.transaction() as session:
            row = session.get(OutgoingWork, work.id)
            assert row is not None
            row.claimed_until = None
            row.last_error = error[:300]
            if give_up:
                row.status = WorkStatus.FAILED
                row.payload = _erase_secrets(row.payload)
                self._announce_failure(session, row)
            else:
                delay = self.backoff[min(work.attempts - 1, len(self.backoff) - 1)]
                row.next_attempt_at = self.clock() + timedelta(seconds=delay)
        log.warning("delivery failed", extra={"work_id": work.id, "kind": work.kind,
                                              "attempt": work.attempts, "gave_up": give_up})

    def _announce_failure(self, session: Session, work: OutgoingWork) -> None:
        payload = json.loads(work.payload)
        what = {
            WorkKind.WELCOME_EMAIL: "The welcome email could not be delivered",
            WorkKind.LETTERS_UPLOAD: "The PIN letters could not be uploaded",
        }.get(WorkKind(work.kind))
        if what is None:
            return
        post_in_thread(
            session, dedupe_key=f"failed:{work.id}", channel_id=payload.get("channel_id"),
            thread_ts=payload.get("thread_ts"), family_id=work.family_id,
            text=(f":warning: {what} after {work.attempts} attempt(s) ({work.last_error}). "
                  "The PINs themselves are issued; re-issue from the family card to print "
                  "new letters."))

    # Performers: each takes the decoded payload and returns what to record.

    def _send_welcome_email(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        smtp = self.settings.smtp
        if not smtp.configured or not smtp.mail_from:
            raise DeliveryError("SMTP is not configured (SMTP_HOST, MAIL_FROM)", transient=True)
        domain = smtp.mail_from.rsplit("@", 1)[-1].rstrip(">").strip() or "pinbot.invalid"
        message = build_welcome_email(WelcomeEmail(
            to_address=payload["to_address"], guardian_name=payload["guardian_name"],
            child_first_name=payload["child_first_name"], pin=payload["pin"],
            practice=self.practice, sibling_first_names=tuple(payload["sibling_first_names"]),
            message_id=f"<pinbot.pin-{payload['pin_id']}.batch-{work.batch_id}@{domain}>",
        ), mail_from=smtp.mail_from)
        send_email(smtp, message)

        def announce(session: Session) -> None:
            post_in_thread(session, dedupe_key=f"sent:{work.id}",
                           channel_id=payload.get("channel_id"),
                           thread_ts=payload.get("thread_ts"), family_id=work.family_id,
                           text=f":email: Welcome email for {payload['child_first_name']} "
                                f"delivered to {mask_email(payload['to_address'])}.")

        return Outcome({"message_id": message["Message-ID"]}, announce)

    def _upload_letters(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        letters = [Letter(
            child_full_name=item["full_name"], child_dob=date.fromisoformat(item["dob"]),
            pin=item["pin"], issued_on=date.fromisoformat(item["issued_on"]),
            expires_on=date.fromisoformat(item["expires_on"]) if item["expires_on"] else None,
            case=LetterCase(item["case"]), emailed_to=item["emailed_to"],
            first_child_name=item["first_child_name"]) for item in payload["letters"]]
        pdf = render_letters(self.practice, letters)
        file_id = self._slack().upload_file(
            channel=payload["channel_id"], thread_ts=payload.get("thread_ts"), content=pdf,
            filename=f"pin-letters-{work.batch_id}.pdf",
            title=f"PIN letters ({len(letters)} page{'s' if len(letters) != 1 else ''})")

        def remember(session: Session) -> None:
            session.add(LetterFile(batch_id=work.batch_id or 0, file_id=file_id,
                                   channel_id=payload["channel_id"],
                                   thread_ts=payload.get("thread_ts"), uploaded_at=self.clock()))

        return Outcome({"file_id": file_id, "pages": len(letters)}, remember)

    def _post_message(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        ts = self._slack().post_message(channel=payload["channel_id"],
                                        thread_ts=payload.get("thread_ts"), text=payload["text"],
                                        blocks=payload.get("blocks"))
        run_id = payload.get("reminder_run_id")
        if run_id is None:
            return Outcome({"ts": ts})
        posted_at = self.clock()

        def mark_posted(session: Session) -> None:
            # A digest counts as posted once any of its messages is in Slack: a later sweep
            # must not take the day over and post it again (bot/reminders.py).
            session.execute(update(ReminderRun)
                            .where(col(ReminderRun.id) == run_id,
                                   col(ReminderRun.posted_at).is_(None))
                            .values(posted_at=posted_at))

        return Outcome({"ts": ts}, mark_posted)

    def _delete_letters(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        file_id = payload["file_id"]
        self._slack().delete_file(file_id)  # a file already gone counts as deleted
        deleted_at = self.clock()

        def record(session: Session) -> None:
            session.execute(update(LetterFile)
                            .where(col(LetterFile.file_id) == file_id,
                                   col(LetterFile.deleted_at).is_(None))
                            .values(deleted_at=deleted_at))
            post_in_thread(session, dedupe_key=f"deleted:{file_id}",
                           channel_id=payload.get("channel_id"),
                           thread_ts=payload.get("thread_ts"), family_id=work.family_id,
                           text=LETTERS_REMOVED.format(hours=payload.get("ttl_hours", 24)))

        return Outcome({"file_id": file_id}, record)

    def _slack(self) -> SlackPort:
        if self.slack is None:
            raise DeliveryError("Slack is not connected", transient=True)
        return self.slack


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
            except Exception:  # noqa: BLE001 - keep the worker alive; the timer retries
                log.exception("outbox sweep failed")
