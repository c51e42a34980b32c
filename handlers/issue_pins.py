"""Issue PINs: the card's button and /pin open the dialog; its submission issues the batch."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock
from sqlmodel import Session

from bot.delivery import outbox
from bot.errors import NotFound, PinbotError, ValidationFailed
from bot.families import threads
from bot.families.record import load_family
from bot.issuing.issuance import Field, IssueRequest, IssueResult, active_pin_ids, issue_pins
from bot.lookup.search import is_single_match, search_patients
from bot.services import Services
from handlers.blocks import child_choices
from handlers.dialogs import issue_dialog, issue_summary, read_issue_form
from handlers.errors import answered
from handlers.family import post_family_card, search_or_answer
from handlers.ids import Commands, FamilyIds, IssueIds
from handlers.payloads import ChildRef, FamilyRef, Id, IssueDialogMeta, Payload
from handlers.replies import click_thread, request_channel, request_user, tell
from models import WorkKind

log = logging.getLogger(__name__)

_ERROR_BLOCKS = {
    Field.CHILDREN: IssueIds.CHILDREN,
    Field.RECIPIENT: IssueIds.RECIPIENT,
    Field.EMAILED_CHILD: IssueIds.EMAILED_CHILD,
    Field.LANGUAGE: IssueIds.LANGUAGE,
}


def open_dialog(
    client: WebClient,
    services: Services,
    *,
    trigger_id: str,
    family_id: int,
    channel_id: str | None,
    thread_ts: str | None,
    preselected: int | None = None,
) -> None:
    with services.database.read_session() as session:
        threads.check_thread_family(
            session, channel_id=channel_id, thread_ts=thread_ts, family_id=family_id
        )
        family = load_family(
            session,
            family_id,
            today=services.today(),
            minor_age_limit=services.settings.minor_age_limit,
        )
        if preselected is not None and family.child(preselected) is None:
            raise NotFound(
                "That child is no longer in this family in pinbot. Search again with /pin."
            )
        seen = active_pin_ids(session, [c.id for c in family.children])
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
    client: WebClient, services: Services, *, family_id: int, channel_id: str, user_id: str
) -> str:
    """The family's recent card in this channel, or a new one (for /pin, which has none)."""
    with services.database.read_session() as session:
        thread = threads.recent_thread(session, family_id=family_id, channel_id=channel_id)
    if thread is not None:
        return thread.thread_ts
    return post_family_card(
        client, services, family_id=family_id, channel_id=channel_id, user_id=user_id
    )


def card_button(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, services: Services
) -> None:
    ack()
    ref = FamilyRef.load(action.get("value"))
    open_dialog(
        client,
        services,
        trigger_id=body["trigger_id"],
        family_id=ref.family_id,
        channel_id=request_channel(body),
        thread_ts=click_thread(body),
    )


def _open_for_child(
    client: WebClient,
    services: Services,
    *,
    trigger_id: str,
    ref: ChildRef,
    channel_id: str,
    user_id: str,
    clicked_in: str | None = None,
) -> None:
    if clicked_in:  # a click inside a family's thread acts on that family only
        with services.database.read_session() as session:
            threads.check_thread_family(
                session, channel_id=channel_id, thread_ts=clicked_in, family_id=ref.family_id
            )
    # The dialog first: trigger_id expires 3 s after the click or command.
    open_dialog(
        client,
        services,
        trigger_id=trigger_id,
        family_id=ref.family_id,
        channel_id=channel_id,
        thread_ts=None,
        preselected=ref.patient_id,
    )
    ensure_thread(client, services, family_id=ref.family_id, channel_id=channel_id, user_id=user_id)


def pin_command(ack: Ack, command: dict[str, Any], client: WebClient, services: Services) -> None:
    hits = search_or_answer(ack, services, command, search_patients)
    if hits is None:
        return
    if is_single_match(hits):
        ack()
        _open_for_child(
            client,
            services,
            trigger_id=command["trigger_id"],
            ref=ChildRef(family_id=hits[0].family_id, patient_id=hits[0].patient_id),
            channel_id=command["channel_id"],
            user_id=command["user_id"],
        )
    else:
        ack(
            text=f"{len(hits)} children match.", blocks=child_choices(command["text"].strip(), hits)
        )


def pick_child(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, services: Services
) -> None:
    ack()
    _open_for_child(
        client,
        services,
        trigger_id=body["trigger_id"],
        ref=ChildRef.load(action.get("value")),
        channel_id=request_channel(body) or "",
        user_id=body["user"]["id"],
        clicked_in=click_thread(body),
    )


def _thread_for(services: Services, meta: IssueDialogMeta) -> str | None:
    if meta.thread_ts or not meta.channel_id:
        return meta.thread_ts
    with services.database.read_session() as session:
        thread = threads.recent_thread(
            session, family_id=meta.family_id, channel_id=meta.channel_id
        )
    return thread.thread_ts if thread else None


def submit(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    client: WebClient,  # noqa: ARG001 - answered() reports errors through it
    services: Services,
) -> None:
    meta = IssueDialogMeta.load(view.get("private_metadata"))
    user_id = body["user"]["id"]
    try:
        form = read_issue_form(view)
        request = IssueRequest(
            family_id=meta.family_id,
            patient_ids=form.patient_ids,
            recipient_guardian_id=form.recipient_guardian_id,
            emailed_patient_id=form.emailed_patient_id,
            issued_by=user_id,
            idempotency_key=f"view:{view['id']}",
            channel_id=meta.channel_id,
            thread_ts=_thread_for(services, meta),
            seen_active_pin_ids=meta.seen_active_pin_ids,
            language=form.language,
        )
        with services.database.transaction() as session:
            result = issue_pins(
                session, request, policy=services.issue_policy(), gateway=services.gateway
            )
            _queue_summary(session, result, user_id)
    except ValidationFailed as error:
        ack(
            response_action="errors",
            errors={_ERROR_BLOCKS[Field(k)]: v for k, v in error.errors.items()},
        )
        return
    except PinbotError as error:
        ack(response_action="errors", errors={IssueIds.CHILDREN: error.user_message})
        return
    ack()
    services.kick()
    log.info(
        "pins issued",
        extra={
            "batch_id": result.batch_id,
            "family_id": result.family_id,
            "user_id": user_id,
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
            dedupe_key=f"summary:{result.batch_id}",
            channel_id=result.channel_id,
            thread_ts=result.thread_ts,
            family_id=result.family_id,
            text=issue_summary(result, user_id),
        )


class UploadRef(Payload):
    work_id: Id


def failure_notice(notice: outbox.FailureNotice) -> dict[str, Any]:
    """The thread's message when a delivery finally failed; a letters upload whose letters
    are still kept gets a "Retry upload" button (bot.delivery.outbox.NoticeRenderer)."""
    text = outbox.notice_text(notice)
    if notice.kind != WorkKind.LETTERS_UPLOAD or notice.retry_until is None:
        return {"text": text}
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=text)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Retry upload",
                    action_id=IssueIds.RETRY_UPLOAD,
                    value=UploadRef(work_id=notice.work_id).dump(),
                )
            ]
        ),
    ]
    return {"text": text, "blocks": [block.to_dict() for block in blocks]}


def retry_upload(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, services: Services
) -> None:
    """Re-queue the failed upload with the letters it kept: the same PINs, none issued."""
    ack()
    ref = UploadRef.load(action.get("value"))
    with services.database.transaction() as session:
        result = outbox.retry_upload(
            session,
            work_id=ref.work_id,
            channel_id=request_channel(body),
            thread_ts=click_thread(body),
            requested_by=request_user(body) or "unknown",
            now=services.clock(),
            settings=services.settings,
        )
    if result.queued:
        services.kick()
    log.info(
        "letters retry",
        extra={"work_id": ref.work_id, "queued": result.queued, "user_id": request_user(body)},
    )
    tell(client, body, result.message)


def register(app: App) -> None:
    app.action(IssueIds.OPEN_DIALOG)(answered(card_button))
    app.action(FamilyIds.PICK_CHILD)(answered(pick_child))
    app.command(Commands.PIN)(answered(pin_command))
    app.view(IssueIds.CALLBACK)(answered(submit))
    app.action(IssueIds.RETRY_UPLOAD)(answered(retry_upload))
