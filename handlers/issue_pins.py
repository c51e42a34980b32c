"""Issue PINs: the card's button and /pin open the dialog; its submission issues the batch."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlmodel import Session

from bot.delivery import keys, outbox
from bot.errors import NotFound
from bot.families import threads
from bot.families.record import load_family
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueRequest, IssueResult, active_pin_ids
from bot.lookup.search import is_single_match, search_patients
from bot.services import Services
from handlers.blocks import child_choices
from handlers.dialogs import issue_dialog, issue_summary, read_issue_form
from handlers.family import audit_lookup, post_family_card, search_or_answer
from handlers.ids import Commands, FamilyIds, IssueIds
from handlers.notices import UploadRef
from handlers.payloads import ChildRef, FamilyRef, IssueDialogMeta
from handlers.pipeline import RequestDatabase, Staff, listener
from handlers.replies import click_thread, tell

log = logging.getLogger(__name__)


def open_dialog(
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    *,
    trigger_id: str,
    family_id: int,
    channel_id: str | None,
    thread_ts: str | None,
    preselected: int | None = None,
) -> None:
    threads.check_thread_family(
        db.reads, channel_id=channel_id, thread_ts=thread_ts, family_id=family_id
    )
    family = load_family(
        db.reads,
        family_id,
        today=services.today(),
        zone=services.settings.timezone,
        minor_age_limit=services.settings.minor_age_limit,
    )
    if preselected is not None and family.child(preselected) is None:
        raise NotFound("That child is no longer in this family in pinbot. Search again with /pin.")
    seen = active_pin_ids(db.reads, [c.id for c in family.children])
    meta = IssueDialogMeta(
        family_id=family_id, channel_id=channel_id, thread_ts=thread_ts, seen_active_pin_ids=seen
    )
    client.views_open(
        trigger_id=trigger_id,
        view=issue_dialog(
            family,
            meta,
            preselected=preselected,
            default_language=services.settings.default_language,
        ),
    )


def ensure_thread(
    client: WebClient, services: Services, db: RequestDatabase, *, family_id: int, staff: Staff
) -> str:
    """The family's recent card in this channel, or a new one (for /pin, which has none)."""
    thread = threads.recent_thread(db.reads, family_id=family_id, channel_id=staff.channel_id or "")
    if thread is not None:
        return thread.thread_ts
    return post_family_card(client, services, db, family_id=family_id, staff=staff)


def card_button(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    ack()
    ref = FamilyRef.load(action.get("value"))
    open_dialog(
        client,
        services,
        db,
        trigger_id=body["trigger_id"],
        family_id=ref.family_id,
        channel_id=staff.channel_id,
        thread_ts=click_thread(body),
    )


def _open_for_child(
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    *,
    trigger_id: str,
    ref: ChildRef,
    staff: Staff,
    clicked_in: str | None = None,
) -> None:
    if clicked_in:  # a click inside a family's thread acts on that family only
        threads.check_thread_family(
            db.reads,
            channel_id=staff.channel_id or "",
            thread_ts=clicked_in,
            family_id=ref.family_id,
        )
    # The dialog first: trigger_id expires 3 s after the click or command.
    open_dialog(
        client,
        services,
        db,
        trigger_id=trigger_id,
        family_id=ref.family_id,
        channel_id=staff.channel_id or "",
        thread_ts=None,
        preselected=ref.patient_id,
    )
    ensure_thread(client, services, db, family_id=ref.family_id, staff=staff)


def pin_command(
    ack: Ack,
    command: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    hits = search_or_answer(ack, db, command, search_patients)
    if hits is None:
        return
    audit_lookup(db.writes, command, hits)
    if hits and is_single_match(hits):
        ack()
        _open_for_child(
            client,
            services,
            db,
            trigger_id=command["trigger_id"],
            ref=ChildRef(family_id=hits[0].family_id, patient_id=hits[0].patient_id),
            staff=staff,
        )
    elif hits:
        ack(
            text=f"{len(hits)} children match.", blocks=child_choices(command["text"].strip(), hits)
        )


def pick_child(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    ack()
    _open_for_child(
        client,
        services,
        db,
        trigger_id=body["trigger_id"],
        ref=ChildRef.load(action.get("value")),
        staff=staff,
        clicked_in=click_thread(body),
    )


def _thread_for(db: RequestDatabase, meta: IssueDialogMeta) -> str | None:
    if meta.thread_ts or not meta.channel_id:
        return meta.thread_ts
    thread = threads.recent_thread(db.reads, family_id=meta.family_id, channel_id=meta.channel_id)
    return thread.thread_ts if thread else None


def submit(
    ack: Ack,
    view: dict[str, Any],
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    """Issue the batch; the dialog closes once it is committed (the pipeline commits on ack).
    A refusal raises before the ack, and the error handler shows it on the field it names."""
    meta = IssueDialogMeta.load(view.get("private_metadata"))
    form = read_issue_form(view)
    request = IssueRequest(
        family_id=meta.family_id,
        patient_ids=form.patient_ids,
        recipient_guardian_id=form.recipient_guardian_id,
        emailed_patient_id=form.emailed_patient_id,
        issued_by=staff.user_id,
        idempotency_key=f"view:{view['id']}",
        channel_id=meta.channel_id,
        thread_ts=_thread_for(db, meta),
        seen_active_pin_ids=meta.seen_active_pin_ids,
        language=form.language,
    )
    result = issue_pins(
        db.writes, request, policy=services.issue_policy(), gateway=services.gateway
    )
    _queue_summary(db.writes, result, staff.user_id)
    ack()
    log.info(
        "pins issued",
        extra={
            "batch_id": result.batch_id,
            "family_id": result.family_id,
            "user_id": staff.user_id,
            "replayed": not result.created,
        },
    )


def _queue_summary(session: Session, result: IssueResult, user_id: str) -> None:
    """The thread's summary is outgoing work in the batch's own transaction: a Slack outage
    after the commit delays it (retried) but can neither lose it nor tell the user that
    nothing happened while the PINs exist."""
    if result.created:
        outbox.post_in_thread(
            session,
            dedupe_key=keys.batch_summary(result.batch_id),
            channel_id=result.channel_id,
            thread_ts=result.thread_ts,
            family_id=result.family_id,
            text=issue_summary(result, user_id),
        )


def retry_upload(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    """Re-queue the failed upload with the letters it kept: the same PINs, none issued."""
    ack()
    ref = UploadRef.load(action.get("value"))
    result = outbox.retry_upload(
        db.writes,
        work_id=ref.work_id,
        channel_id=staff.channel_id,
        thread_ts=click_thread(body),
        requested_by=staff.user_id,
        now=services.clock(),
        settings=services.settings,
    )
    db.commit()  # queued for the worker before the user reads that it is
    log.info(
        "letters retry",
        extra={"work_id": ref.work_id, "queued": result.queued, "user_id": staff.user_id},
    )
    tell(client, body, result.message)


def register(app: App) -> None:
    app.action(IssueIds.OPEN_DIALOG)(listener(card_button))
    app.action(FamilyIds.PICK_CHILD)(listener(pick_child))
    app.command(Commands.PIN)(listener(pin_command))
    app.view(IssueIds.CALLBACK)(listener(submit))
    app.action(IssueIds.RETRY_UPLOAD)(listener(retry_upload))
