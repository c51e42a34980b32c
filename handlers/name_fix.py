"""Name fixes in the family thread: "Request name fix" opens the dialog, its submission posts
the request mentioning the supervisors, and "Approve" / "Reject" (with a reason dialog) / "This
is the real name" decide it. Refusals reach the clicker ephemerally through the error handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.errors import AlreadyDecided, NotAllowed
from bot.families import name_fix
from bot.families.name_fix import Decision, NameFixRecord, NameFixRequest
from bot.lookup.search import forget_name_keys
from handlers.directory import Directory
from handlers.ids import NameFixIds
from handlers.name_fix_views import (
    NameFixRef,
    RejectMeta,
    RequestMeta,
    decided_blocks,
    decided_text,
    decision_reply,
    read_reason,
    read_request_form,
    reject_dialog,
    request_blocks,
    request_dialog,
    request_text,
)
from handlers.payloads import ChildRef
from handlers.pipeline import Listener, RequestDatabase, Staff, listener
from models import NameFixStatus

log = logging.getLogger(__name__)

NOT_POSTED = (
    "Slack wouldn't post the name-fix request in the family thread, so nothing was "
    "requested. Try again in a minute."
)


@dataclass(frozen=True)
class Click:
    """A button click on a message: who, where, and the message's own ts."""

    user_id: str
    channel_id: str | None
    message_ts: str | None
    thread_ts: str | None
    trigger_id: str


def _click(body: dict[str, Any]) -> Click:
    message, container = body.get("message") or {}, body.get("container") or {}
    message_ts = container.get("message_ts") or message.get("ts")
    return Click(
        user_id=body["user"]["id"],
        channel_id=(body.get("channel") or {}).get("id") or container.get("channel_id"),
        message_ts=message_ts,
        thread_ts=message.get("thread_ts") or message_ts,
        trigger_id=body["trigger_id"],
    )


# --------------------------------------------------------------------------- requesting


def request_button(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    db: RequestDatabase,
) -> None:
    ack()
    ref, click = ChildRef.load(action.get("value")), _click(body)
    child = name_fix.fixable_child(
        db.reads,
        family_id=ref.family_id,
        patient_id=ref.patient_id,
        channel_id=click.channel_id,
        thread_ts=click.thread_ts,
    )
    meta = RequestMeta(
        family_id=ref.family_id,
        patient_id=ref.patient_id,
        channel_id=click.channel_id,
        thread_ts=click.thread_ts,
    )
    client.views_open(trigger_id=click.trigger_id, view=request_dialog(child, meta))


def submit_request(
    ack: Ack,
    view: dict[str, Any],
    client: WebClient,
    directory: Directory,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    meta = RequestMeta.load(view.get("private_metadata"))
    request = NameFixRequest(
        family_id=meta.family_id,
        patient_id=meta.patient_id,
        requested_by=staff.user_id,
        channel_id=meta.channel_id,
        thread_ts=meta.thread_ts,
        **read_request_form(view),
    )
    fix = name_fix.request_name_fix(db.writes, request)
    ack()
    _post_request(client, db, fix, directory.mention_supervisors(), staff.user_id)


def _post_request(
    client: WebClient, db: RequestDatabase, fix: NameFixRecord, mentions: str, user_id: str
) -> None:
    """Post the request with its buttons and remember the message; a request Slack refused to
    post is withdrawn, or nobody could ever decide it."""
    channel = fix.channel_id or ""
    try:
        response = client.chat_postMessage(
            channel=channel,
            thread_ts=fix.thread_ts,
            text=request_text(fix, mentions),
            blocks=request_blocks(fix, mentions),
        )
    except (SlackApiError, SlackRequestError, OSError) as error:
        log.warning(
            "name fix request not posted",
            extra={"name_fix_id": fix.id, "error": type(error).__name__},
        )
        name_fix.withdraw_unposted(db.writes, name_fix_id=fix.id)
        db.commit()  # withdrawn before the user reads that nothing was requested
        _tell(client, channel, user_id, NOT_POSTED)
        return
    name_fix.record_message(db.writes, name_fix_id=fix.id, message_ts=str(response["ts"]))
    log.info(
        "name fix requested",
        extra={"name_fix_id": fix.id, "family_id": fix.family_id, "user_id": user_id},
    )


def _tell(client: WebClient, channel: str, user_id: str, text: str) -> None:
    try:
        client.chat_postEphemeral(channel=channel, user=user_id, text=text)
    except SlackApiError:
        log.warning("could not tell the user", extra={"user_id": user_id})


# --------------------------------------------------------------------------- deciding


@contextmanager
def _audited_refusal(db: RequestDatabase, name_fix_id: int, user_id: str) -> Iterator[None]:
    """A refused decision changes nothing, but the attempt is on the record."""
    try:
        yield
    except (NotAllowed, AlreadyDecided) as error:
        with db.independent() as session:
            name_fix.record_refusal(
                session, name_fix_id=name_fix_id, user_id=user_id, why=type(error).__name__
            )
        log.info(
            "name fix decision refused", extra={"name_fix_id": name_fix_id, "user_id": user_id}
        )
        raise


def _decide(
    db: RequestDatabase,
    directory: Directory,
    *,
    name_fix_id: int,
    user_id: str,
    channel_id: str | None,
    message_ts: str | None,
    decision: Decision,
    reason: str = "",
) -> NameFixRecord:
    supervisor = directory.is_supervisor(user_id)
    with _audited_refusal(db, name_fix_id, user_id):
        return name_fix.decide(
            db.writes,
            name_fix_id=name_fix_id,
            decision=decision,
            decided_by=user_id,
            is_supervisor=supervisor,
            channel_id=channel_id,
            message_ts=message_ts,
            reason=reason,
        )


def _show_decision(client: WebClient, fix: NameFixRecord) -> None:
    """Edit the request (buttons gone, who and when) and reply in the thread."""
    if fix.status == NameFixStatus.APPROVED and fix.renames:
        forget_name_keys()  # committed (the ack): typo-tolerant search learns the name at once
    channel = fix.channel_id or ""
    if fix.message_ts:
        try:
            client.chat_update(
                channel=channel,
                ts=fix.message_ts,
                text=decided_text(fix),
                blocks=decided_blocks(fix),
            )
        except SlackApiError as error:  # the decision stands; the stale buttons refuse
            log.warning(
                "name fix message not updated",
                extra={"name_fix_id": fix.id, "error": error.response.get("error")},
            )
    text, blocks = decision_reply(fix)
    client.chat_postMessage(channel=channel, thread_ts=fix.thread_ts, text=text, blocks=blocks)
    log.info(
        "name fix decided",
        extra={"name_fix_id": fix.id, "status": fix.status, "user_id": fix.decided_by},
    )


def _decision_button(decision: Decision) -> Listener:
    """Approve and "This is the real name": decide (a refusal reaches the clicker through the
    error handler), acknowledge once committed, then show the decision."""

    def on_click(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        client: WebClient,
        directory: Directory,
        db: RequestDatabase,
    ) -> None:
        ref, click = NameFixRef.load(action.get("value")), _click(body)
        fix = _decide(
            db,
            directory,
            name_fix_id=ref.name_fix_id,
            user_id=click.user_id,
            channel_id=click.channel_id,
            message_ts=click.message_ts,
            decision=decision,
        )
        ack()
        _show_decision(client, fix)

    on_click.__name__ = f"{decision.value}_button"
    return on_click


def reject_button(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    directory: Directory,
    db: RequestDatabase,
) -> None:
    """Refuse before asking for a reason: nobody types a reason that can't count."""
    ack()
    ref, click = NameFixRef.load(action.get("value")), _click(body)
    supervisor = directory.is_supervisor(click.user_id)
    with _audited_refusal(db, ref.name_fix_id, click.user_id):
        fix = name_fix.check_decider(
            db.reads,
            name_fix_id=ref.name_fix_id,
            user_id=click.user_id,
            is_supervisor=supervisor,
            channel_id=click.channel_id,
            message_ts=click.message_ts,
        )
    meta = RejectMeta(name_fix_id=fix.id, channel_id=click.channel_id, message_ts=click.message_ts)
    client.views_open(trigger_id=click.trigger_id, view=reject_dialog(fix, meta))


def submit_reject(
    ack: Ack,
    view: dict[str, Any],
    client: WebClient,
    directory: Directory,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    meta = RejectMeta.load(view.get("private_metadata"))
    fix = _decide(
        db,
        directory,
        name_fix_id=meta.name_fix_id,
        user_id=staff.user_id,
        channel_id=meta.channel_id,
        message_ts=meta.message_ts,
        decision=Decision.REJECT,
        reason=read_reason(view),
    )
    ack()
    _show_decision(client, fix)


def register(app: App) -> None:
    app.action(NameFixIds.REQUEST)(listener(request_button))
    app.view(NameFixIds.CALLBACK)(listener(submit_request))
    app.action(NameFixIds.APPROVE)(listener(_decision_button(Decision.APPROVE)))
    app.action(NameFixIds.CONFIRM_AS_IS)(listener(_decision_button(Decision.CONFIRM)))
    app.action(NameFixIds.REJECT)(listener(reject_button))
    app.view(NameFixIds.REJECT_CALLBACK)(listener(submit_reject))
