"""Performing one piece of outgoing work (the worker claims it, records what happened and
retries): send the welcome email, upload the PIN letters, post a message, delete letters.

Each performer takes the work's decoded payload and returns an `Outcome`: what to record, and
an optional follow-up run in the transaction that records it. A performer raises DeliveryError
(or MailError) when the delivery failed; `transient` says whether trying again may help.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.db import Database
from bot.delivery import keys
from bot.delivery.notices import (
    EmailDelivered,
    LettersRemoved,
    NoticeRenderer,
    ThreadNotice,
    from_payload,
)
from bot.delivery.smtp import send_email
from bot.documents.letters import Letter, LetterCase, Practice, render_letters
from bot.documents.locale import letter_languages
from bot.documents.welcome_email import WelcomeEmail, build_welcome_email
from bot.text import mask_email
from models import LetterFile, OutgoingWork, Pin, PinStatus, ReminderRun, WorkKind

SMTP_TIMEOUT_SECONDS = 20.0
# OutgoingWork.result of a letters upload whose file was sent but not yet shared.
STARTED = "started_upload"
# Slack's answers to completing an upload that was already completed.
COMPLETED_BEFORE = frozenset({"file_not_found"})


@dataclass(frozen=True)
class StartedUpload:
    file_id: str
    title: str
    pages: int
    patient_ids: tuple[int, ...] = ()  # whose letters the file holds


class DeliveryError(Exception):
    """A delivery failed; `transient` says whether trying again may help, `retry_after` how
    many seconds Slack asked to wait first (a 429), `code` Slack's error code if it gave one."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.code = code


class SlackPort(Protocol):
    """The few Slack Web API operations delivery needs (implemented in handlers/)."""

    def post_message(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str: ...

    def upload_file(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        content: bytes,
        filename: str,
        title: str,
        alt_txt: str | None = None,
        initial_comment: str | None = None,
    ) -> str: ...

    def start_upload(self, *, content: bytes, filename: str, alt_txt: str | None = None) -> str:
        """Send a file's bytes to Slack, not yet shared anywhere; returns its file id."""
        ...

    def complete_upload(
        self,
        *,
        file_id: str,
        channel: str,
        thread_ts: str | None,
        title: str,
        initial_comment: str | None = None,
    ) -> str:
        """Share a started upload into a channel or thread; returns its file id."""
        ...

    def delete_file(self, file_id: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    follow_up: Callable[[Session], None] | None = None


class ThreadPoster(Protocol):
    """Queues a message for a work's Slack thread (bot.delivery.outbox.post_in_thread)."""

    def __call__(
        self,
        session: Session,
        *,
        dedupe_key: str,
        channel_id: str | None,
        thread_ts: str | None,
        notice: ThreadNotice | None = None,
        text: str | None = None,
        family_id: int | None = None,
    ) -> None: ...


Performer = Callable[[dict[str, Any], OutgoingWork], Outcome]


def _title(letters: int, language: str) -> str:
    pages = letters * len(letter_languages(language))
    return f"PIN letters ({pages} page{'s' if pages != 1 else ''})"


def _date_or_none(value: str | None) -> date | None:
    """An ISO date from a payload; None when the PIN never expires (or, in an email queued
    before emails stated the date, when the payload has none)."""
    return date.fromisoformat(value) if value else None


def practice_of(settings: Settings) -> Practice:
    return Practice(
        name=settings.practice_name or "",
        phone=settings.practice_phone or "",
        portal_url=settings.portal_url or "",
        signin_url=settings.portal_signin_url or "",
    )


@dataclass(frozen=True)
class Deliveries:
    """The performers, over the Outbox's collaborators as they are at delivery time."""

    database: Database
    settings: Settings
    slack: SlackPort | None
    clock: Callable[[], datetime]
    post_in_thread: ThreadPoster
    render_notice: NoticeRenderer
    smtp_timeout: float = SMTP_TIMEOUT_SECONDS

    def performer(self, kind: WorkKind) -> Performer:
        return {
            WorkKind.WELCOME_EMAIL: self._send_welcome_email,
            WorkKind.LETTERS_UPLOAD: self._upload_letters,
            WorkKind.SLACK_MESSAGE: self._post_message,
            WorkKind.LETTERS_DELETE: self._delete_letters,
            WorkKind.REPORT_UPLOAD: self._upload_report,
        }[kind]

    @property
    def practice(self) -> Practice:
        return practice_of(self.settings)

    def _send_welcome_email(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        smtp = self.settings.smtp
        if not smtp.configured or not smtp.mail_from:
            raise DeliveryError("SMTP is not configured (SMTP_HOST, MAIL_FROM)", transient=True)
        domain = smtp.mail_from.rsplit("@", 1)[-1].rstrip(">").strip() or "pinbot.invalid"
        try:
            message = build_welcome_email(
                WelcomeEmail(
                    to_address=payload["to_address"],
                    guardian_name=payload["guardian_name"],
                    child_first_name=payload["child_first_name"],
                    pin=payload["pin"],
                    practice=self.practice,
                    sibling_first_names=tuple(payload["sibling_first_names"]),
                    message_id=f"<pinbot.pin-{payload['pin_id']}.batch-{work.batch_id}@{domain}>",
                    expires_on=_date_or_none(payload.get("expires_on")),
                ),
                mail_from=smtp.mail_from,
                language=payload.get("language") or self.settings.default_language,
            )
            send_email(smtp, message, timeout=self.smtp_timeout)
        except UnicodeError:
            # An address with non-ASCII characters: no retry will make the server take it.
            raise DeliveryError(
                "the email address has non-ASCII characters", transient=False
            ) from None

        notice = EmailDelivered(
            child_first_name=payload["child_first_name"],
            masked_address=mask_email(payload["to_address"]),
        )

        def announce(session: Session) -> None:
            self.post_in_thread(
                session,
                dedupe_key=keys.delivered_notice(work.id or 0),
                channel_id=payload.get("channel_id"),
                thread_ts=payload.get("thread_ts"),
                family_id=work.family_id,
                notice=notice,
            )

        return Outcome({"message_id": message["Message-ID"]}, announce)

    def _still_active(self, work: OutgoingWork) -> set[int]:
        """Children of this batch whose PIN is still the active one: a re-issue since the
        batch revoked the others, and a letter must never print a revoked PIN."""
        with self.database.read_session() as session:
            return set(
                session.exec(
                    select(Pin.patient_id).where(
                        Pin.batch_id == work.batch_id, Pin.status == PinStatus.ACTIVE
                    )
                ).all()
            )

    def _upload_letters(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        started = json.loads(work.result or "{}").get(STARTED)
        active = self._still_active(work)
        if isinstance(started, dict):  # a try that died after sending the file: finish it,
            upload = StartedUpload(
                **{**started, "patient_ids": tuple(started.get("patient_ids", ()))}
            )
            if set(upload.patient_ids) <= active:  # unless a PIN in it was replaced since
                return self._complete_letters(payload, upload, retrying=True)
        items = [item for item in payload["letters"] if item["patient_id"] in active]
        if not items:
            return Outcome({"skipped": "every PIN of this batch was replaced before upload"})
        letters = [
            Letter(
                child_full_name=item["full_name"],
                child_dob=date.fromisoformat(item["dob"]),
                pin=item["pin"],
                issued_on=date.fromisoformat(item["issued_on"]),
                expires_on=_date_or_none(item["expires_on"]),
                case=LetterCase(item["case"]),
                emailed_to=item["emailed_to"],
                first_child_name=item["first_child_name"],
            )
            for item in items
        ]
        # Work queued before languages existed has none: DEFAULT_LANGUAGE, as then.
        language = payload.get("language") or self.settings.default_language
        pdf = render_letters(self.practice, letters, language=language)
        upload = StartedUpload(
            file_id=self._slack().start_upload(
                content=pdf, filename=f"pin-letters-{work.batch_id}.pdf"
            ),
            title=_title(len(letters), language),
            pages=len(letters),
            patient_ids=tuple(item["patient_id"] for item in items),
        )
        self._record_started(work, payload, upload)
        return self._complete_letters(payload, upload, retrying=False)

    def _record_started(
        self, work: OutgoingWork, payload: dict[str, Any], upload: StartedUpload
    ) -> None:
        """Its own committed step before the upload is shared: the file id is on record (and
        in the letters sweep's table, so it is deleted on time) whatever happens next."""
        with self.database.transaction() as session:
            row = session.get(OutgoingWork, work.id)
            assert row is not None
            row.result = json.dumps({STARTED: asdict(upload)})
            session.add(
                LetterFile(
                    batch_id=work.batch_id or 0,
                    file_id=upload.file_id,
                    channel_id=payload["channel_id"],
                    thread_ts=payload.get("thread_ts"),
                    uploaded_at=self.clock(),
                )
            )

    def _complete_letters(
        self, payload: dict[str, Any], upload: StartedUpload, *, retrying: bool
    ) -> Outcome:
        """Share the recorded upload. On a retry Slack may answer that there is no such
        upload to complete: it was completed before the process died (completing is what
        consumes an upload), so the letters are in the thread and nothing is uploaded again."""
        try:
            self._slack().complete_upload(
                file_id=upload.file_id,
                channel=payload["channel_id"],
                thread_ts=payload.get("thread_ts"),
                title=upload.title,
            )
        except DeliveryError as error:
            if not (retrying and error.code in COMPLETED_BEFORE):
                raise
            # Shared before the crash: the TTL keeps running from the time on record (taken
            # just before that share), so the letter is never kept past it.
            return Outcome({"file_id": upload.file_id, "pages": upload.pages})
        shared_at = self.clock()

        def remember(session: Session) -> None:
            # The TTL runs from when the letters were shared.
            session.execute(
                update(LetterFile)
                .where(col(LetterFile.file_id) == upload.file_id)
                .values(uploaded_at=shared_at)
            )

        return Outcome({"file_id": upload.file_id, "pages": upload.pages}, remember)

    def _post_message(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:  # noqa: ARG002 - every performer takes the work
        # A typed notice is rendered now, by the Slack adapter; text was written by it already.
        message = (
            self.render_notice(from_payload(payload["notice"])) if "notice" in payload else payload
        )
        ts = self._slack().post_message(
            channel=payload["channel_id"],
            thread_ts=payload.get("thread_ts"),
            text=message["text"],
            blocks=message.get("blocks"),
        )
        return Outcome({"ts": ts}, self._mark_posted(payload.get("reminder_run_id")))

    def _mark_posted(self, run_id: int | None) -> Callable[[Session], None] | None:
        if run_id is None:
            return None
        posted_at = self.clock()

        def mark_posted(session: Session) -> None:
            # A digest (or weekly report) counts as posted once any of its messages is in
            # Slack: a later sweep must not take the run over and post it again.
            session.execute(
                update(ReminderRun)
                .where(col(ReminderRun.id) == run_id, col(ReminderRun.posted_at).is_(None))
                .values(posted_at=posted_at)
            )

        return mark_posted

    def _upload_report(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:  # noqa: ARG002 - every performer takes the work
        """The weekly adoption chart, rendered now from the stored figures (counts only)."""
        from bot.reports.chart import render_chart  # matplotlib: loaded when first needed
        from bot.reports.figures import alt_text
        from bot.reports.post import report_from_json

        report = report_from_json(payload["report"])
        file_id = self._slack().upload_file(
            channel=payload["channel_id"],
            thread_ts=None,
            content=render_chart(report),
            filename=payload["filename"],
            title=payload["title"],
            alt_txt=alt_text(report),
            initial_comment=payload["comment"],
        )
        return Outcome({"file_id": file_id}, self._mark_posted(payload.get("reminder_run_id")))

    def _delete_letters(self, payload: dict[str, Any], work: OutgoingWork) -> Outcome:
        file_id = payload["file_id"]
        self._slack().delete_file(file_id)  # a file already gone counts as deleted
        deleted_at = self.clock()

        def record(session: Session) -> None:
            session.execute(
                update(LetterFile)
                .where(col(LetterFile.file_id) == file_id, col(LetterFile.deleted_at).is_(None))
                .values(deleted_at=deleted_at)
            )
            self.post_in_thread(
                session,
                dedupe_key=keys.letters_deleted_notice(file_id),
                channel_id=payload.get("channel_id"),
                thread_ts=payload.get("thread_ts"),
                family_id=work.family_id,
                notice=LettersRemoved(ttl_hours=payload.get("ttl_hours", 24)),
            )

        return Outcome({"file_id": file_id}, record)

    def _slack(self) -> SlackPort:
        if self.slack is None:
            raise DeliveryError("Slack is not connected", transient=True)
        return self.slack
