"""Global middleware, the first half of the request pipeline (handlers/pipeline.py is the
second): puts the services and the directory into Bolt's context, refuses guests and channels
outside ALLOWED_CHANNEL_IDS before any listener runs (and audits the refusal), and names the
acting `Staff` member for the listeners that ask for one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

from bot import audit
from bot.services import Services
from handlers.directory import Directory
from handlers.pipeline import Staff
from handlers.replies import dialog_channel, dialog_error, request_channel, request_user, tell

log = logging.getLogger(__name__)

GUEST_REFUSAL = "pinbot is for practice staff only; guest accounts can't use it."
UNKNOWN_REFUSAL = "pinbot couldn't tell who sent this, so it did nothing."
CHANNEL_REFUSAL = (
    "pinbot works only in the practice's staff channels. Ask your administrator "
    "which channel to use."
)

_REASONS = {GUEST_REFUSAL: "guest", CHANNEL_REFUSAL: "channel", UNKNOWN_REFUSAL: "no user"}


def _refusal_response(body: dict[str, Any], client: WebClient, text: str) -> BoltResponse:
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    if body.get("type") == "view_submission":
        return dialog_error(body, text)
    tell(client, body, text)
    return BoltResponse(status=200, body="")


def _on_home_tab(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def _refusal(body: dict[str, Any], services: Services, directory: Directory) -> str | None:
    if body.get("type") == "event_callback":
        # The only event pinbot subscribes to is app_home_opened: the Home tab answers a
        # guest itself, with a one-sentence view (handlers/home.py), and is in no channel.
        return None
    user = request_user(body)
    if not user:  # Slack names the user on every command and interaction pinbot handles
        return UNKNOWN_REFUSAL
    allowed = services.settings.allowed_channel_ids
    if body.get("type") == "view_submission":
        # Slack sends no channel with a submission: the dialog's metadata names the one it
        # was opened from (a dialog left open while ALLOWED_CHANNEL_IDS changed is refused).
        channel = dialog_channel(body)
        outside = channel is not None and channel not in allowed
    elif _on_home_tab(body):
        outside = False  # a Home tab button: it posts only into the staff channel
    else:
        outside = request_channel(body) not in allowed
    if allowed and outside:
        return CHANNEL_REFUSAL
    if directory.is_guest(user):
        return GUEST_REFUSAL
    return None


def install(app: App, services: Services, directory: Directory) -> None:
    @app.middleware
    def provide_services(context: BoltContext, next: Callable[[], None]) -> None:
        context["services"] = services
        context["directory"] = directory
        next()

    @app.middleware
    def admit_staff(
        body: dict[str, Any], client: WebClient, context: BoltContext, next: Callable[[], None]
    ) -> BoltResponse | None:
        refusal = _refusal(body, services, directory)
        if refusal is None:
            if user := request_user(body):  # every command and interaction; not an event
                context["staff"] = Staff(user_id=user, channel_id=request_channel(body))
            next()
            return None
        user = request_user(body)
        with services.database.transaction() as session:
            audit.record(
                session,
                actor=user or "unknown",
                action="refused",
                reason=_REASONS[refusal],
                channel=request_channel(body),
                kind=body.get("command") or body.get("type"),
            )
        log.info("request refused", extra={"user_id": user, "channel_id": request_channel(body)})
        return _refusal_response(body, client, refusal)
