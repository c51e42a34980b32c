"""Global middleware: puts the services into Bolt's context, and refuses guests and channels
outside ALLOWED_CHANNEL_IDS before any listener runs (and audits the refusal)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

from bot import audit
from bot.services import Services
from handlers.directory import Directory

log = logging.getLogger(__name__)

GUEST_REFUSAL = "pinbot is for practice staff only; guest accounts can't use it."
CHANNEL_REFUSAL = ("pinbot works only in the practice's staff channels. Ask your administrator "
                   "which channel to use.")


def request_channel(body: dict[str, Any]) -> str | None:
    return (body.get("channel_id") or (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id"))


def request_user(body: dict[str, Any]) -> str | None:
    return body.get("user_id") or (body.get("user") or {}).get("id")


def _refusal_response(body: dict[str, Any], client: WebClient, text: str) -> BoltResponse:
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    channel, user = request_channel(body), request_user(body)
    if body.get("type") == "block_actions" and channel and user:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    return BoltResponse(status=200, body="")


def _refusal(body: dict[str, Any], services: Services, directory: Directory) -> str | None:
    user = request_user(body)
    if not user:
        return None
    allowed = services.settings.allowed_channel_ids
    channel = request_channel(body)
    # Dialog submissions carry no channel; the dialog was opened from an allowed one.
    if allowed and body.get("type") != "view_submission" and channel not in allowed:
        return CHANNEL_REFUSAL
    if directory.is_guest(user):
        return GUEST_REFUSAL
    return None


def install(app: App, services: Services, directory: Directory) -> None:
    @app.middleware
    def provide_services(context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002
        context["services"] = services
        context["directory"] = directory
        next()

    @app.middleware
    def refuse_outsiders(body: dict[str, Any], client: WebClient,
                         next: Callable[[], None]) -> BoltResponse | None:  # noqa: A002
        refusal = _refusal(body, services, directory)
        if refusal is None:
            next()
            return None
        user = request_user(body)
        with services.database.transaction() as session:
            audit.record(session, actor=user or "unknown", action="refused",
                         reason="guest" if refusal == GUEST_REFUSAL else "channel",
                         channel=request_channel(body), kind=body.get("command")
                         or body.get("type"))
        log.info("request refused", extra={"user_id": user, "channel_id": request_channel(body)})
        return _refusal_response(body, client, refusal)
