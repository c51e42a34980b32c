"""Issue PINs: the card's button and /pin open the dialog; its submission issues the batch."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import threads
from bot.errors import PinbotError, ValidationFailed
from bot.family import load_family
from bot.issuance import Field, IssueRequest, active_pin_ids, issue_pins
from bot.search import is_single_match, search_patients
from bot.services import Services
from handlers.blocks import child_choices, no_match
from handlers.dialogs import issue_dialog, issue_summary, read_issue_form
from handlers.family import post_family_card
from handlers.ids import Commands, FamilyIds, IssueIds
from handlers.payloads import ChildRef, FamilyRef, IssueDialogMeta

log = logging.getLogger(__name__)

_ERROR_BLOCKS = {Field.CHILDREN: IssueIds.CHILDREN, Field.RECIPIENT: IssueIds.RECIPIENT,
                 Field.EMAILED_CHILD: IssueIds.EMAILED_CHILD}


def open_dialog(client: WebClient, services: Services, *, trigger_id: str, family_id: int,
                channel_id: str | None, thread_ts: str | None,
                preselected: int | None = None) -> None:
    with services.database.read_session() as session:
        threads.check_thread_family(session, channel_id=channel_id, thread_ts=thread_ts,
                                    family_id=family_id)
        family = load_family(session, family_id, today=services.today(),
                             minor_age_limit=services.settings.minor_age_limit)
        seen = active_pin_ids(session, [c.id for c in family.children])
    meta = IssueDialogMeta(family_id=family_id, channel_id=channel_id, thread_ts=thread_ts,
                           seen_active_pin_ids=seen)
    client.views_open(trigger_id=trigger_id,
                      view=issue_dialog(family, meta, preselected=preselected))


def ensure_thread(client: WebClient, services: Services, *, family_id: int, channel_id: str,
                  user_id: str) -> str:
    """The family's recent card in this channel, or a new one (for /pin, which has none)."""
    with services.database.read_session() as session:
        thread = threads.recent_thread(session, family_id=family_id, channel_id=channel_id)
    if thread is not None:
        return thread.thread_ts
    return post_family_card(client, services, family_id=family_id, channel_id=channel_id,
                            user_id=user_id)


def card_button(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient,
                services: Services) -> None:
    ack()
    ref = FamilyRef.load(action.get("value"))
    message = body.get("message") or {}
    container = body.get("container") or {}
    thread_ts = message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    open_dialog(client, services, trigger_id=body["trigger_id"], family_id=ref.family_id,
                channel_id=(body.get("channel") or {}).get("id"), thread_ts=thread_ts)


def _open_for_child(client: WebClient, services: Services, *, trigger_id: str, ref: ChildRef,
                    channel_id: str, user_id: str) -> None:
    # The dialog first: trigger_id expires 3 s after the click or command.
    open_dialog(client, services, trigger_id=trigger_id, family_id=ref.family_id,
                channel_id=channel_id, thread_ts=None, preselected=ref.patient_id)
    ensure_thread(client, services, family_id=ref.family_id, channel_id=channel_id,
                  user_id=user_id)


def pin_command(ack: Ack, command: dict[str, Any], client: WebClient,
                services: Services) -> None:
    query = (command.get("text") or "").strip()
    try:
        with services.database.read_session() as session:
            hits = search_patients(session, query)
    except PinbotError as error:
        ack(text=error.user_message)
        return
    if not hits:
        ack(text=no_match(query))
    elif is_single_match(hits):
        ack()
        _open_for_child(client, services, trigger_id=command["trigger_id"],
                        ref=ChildRef(family_id=hits[0].family_id,
                                     patient_id=hits[0].patient_id),
                        channel_id=command["channel_id"], user_id=command["user_id"])
    else:
        ack(text=f"{len(hits)} children match.", blocks=child_choices(query, hits))


def pick_child(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient,
               services: Services) -> None:
    ack()
    _open_for_child(client, services, trigger_id=body["trigger_id"],
                    ref=ChildRef.load(action.get("value")),
                    channel_id=(body.get("channel") or {}).get("id")
                    or body["container"]["channel_id"], user_id=body["user"]["id"])


def _thread_for(services: Services, meta: IssueDialogMeta) -> str | None:
    if meta.thread_ts or not meta.channel_id:
        return meta.thread_ts
    with services.database.read_session() as session:
        thread = threads.recent_thread(session, family_id=meta.family_id,
                                       channel_id=meta.channel_id)
    return thread.thread_ts if thread else None


def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient,
           services: Services) -> None:
    meta = IssueDialogMeta.load(view.get("private_metadata"))
    form = read_issue_form(view)
    user_id = body["user"]["id"]
    request = IssueRequest(
        family_id=meta.family_id, patient_ids=form.patient_ids,
        recipient_guardian_id=form.recipient_guardian_id,
        emailed_patient_id=form.emailed_patient_id, issued_by=user_id,
        idempotency_key=f"view:{view['id']}", channel_id=meta.channel_id,
        thread_ts=_thread_for(services, meta), seen_active_pin_ids=meta.seen_active_pin_ids)
    try:
        with services.database.transaction() as session:
            result = issue_pins(session, request, policy=services.issue_policy(),
                                gateway=services.gateway)
    except ValidationFailed as error:
        ack(response_action="errors",
            errors={_ERROR_BLOCKS[Field(k)]: v for k, v in error.errors.items()})
        return
    except PinbotError as error:
        ack(response_action="errors", errors={IssueIds.CHILDREN: error.user_message})
        return
    ack()
    services.kick()
    log.info("pins issued", extra={"batch_id": result.batch_id, "family_id": result.family_id,
                                   "user_id": user_id, "replayed": not result.created})
    if result.created and result.channel_id:
        client.chat_postMessage(channel=result.channel_id, thread_ts=result.thread_ts,
                                text=issue_summary(result, user_id))


def register(app: App) -> None:
    app.action(IssueIds.OPEN_DIALOG)(card_button)
    app.action(FamilyIds.PICK_CHILD)(pick_child)
    app.command(Commands.PIN)(pin_command)
    app.view(IssueIds.CALLBACK)(submit)
