"""Global middleware, the first half of the request pipeline (handlers/pipeline.py is the
second): puts the services and the directory into Bolt's context, refuses users of another
workspace, guests and channels outside ALLOWED_CHANNEL_IDS before any listener runs (and
audits the refusal), and names the acting `Staff` member for the listeners that ask for one."""

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
TEAM_REFUSAL = "pinbot works only for the practice's own Slack workspace."

_REASONS = {
    GUEST_REFUSAL: "guest",
    CHANNEL_REFUSAL: "channel",
    UNKNOWN_REFUSAL: "no user",
    TEAM_REFUSAL: "workspace",
}


def _refusal_response(body: dict[str, Any], client: WebClient, text: str) -> BoltResponse:
    if body.get("type") == "event_callback":
        return BoltResponse(status=200, body="")  # nobody to answer: the event is dropped
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    if body.get("type") == "view_submission":
        return dialog_error(body, text)
    tell(client, body, text)
    return BoltResponse(status=200, body="")


def _on_home_tab(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def _request_teams(body: dict[str, Any]) -> set[str]:
    """Every workspace a request names: where it happened and whose user sent it."""
    team, user, view = (_part(body, key) for key in ("team", "user", "view"))
    found = (
        body.get("team_id"),
        body.get("user_team_id"),
        team.get("id"),
        user.get("team_id"),
        view.get("team_id"),
        view.get("app_installed_team_id"),
    )
    return {t for t in found if isinstance(t, str) and t}


def _part(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _refusal(
    body: dict[str, Any], services: Services, directory: Directory, own_team: str | None
) -> str | None:
    # pinbot is installed in one workspace: a request naming another (a Slack Connect user,
    # another workspace of a grid) is refused, whatever it is.
    if own_team and _request_teams(body) - {own_team}:
        return TEAM_REFUSAL
    if body.get("type") == "event_callback":
        # The only event pinbot subscribes to is app_home_opened: the Home tab answers a
        # guest itself, with a one-sentence view (handlers/home.py), and is in no channel.
        return None
    user = request_user(body)
    if not user:  # Slack names the user on every command and interaction pinbot handles
        return UNKNOWN_REFUSAL
    settings = services.settings
    if body.get("type") == "view_submission":
        # Slack sends no channel with a submission: the dialog's metadata names the one it
        # was opened from (a dialog left open while ALLOWED_CHANNEL_IDS changed is refused,
        # and so is one without it: every pinbot dialog carries it).
        channel = dialog_channel(body)
        outside = channel is None or not settings.channel_allowed(channel)
    elif _on_home_tab(body):
        outside = False  # a Home tab button: it posts only into the staff channel
    else:
        outside = not settings.channel_allowed(request_channel(body))
    if outside:
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
        # The workspace auth.test named for the bot token (Bolt runs it at start-up).
        own_team = context.authorize_result.team_id if context.authorize_result else None
        refusal = _refusal(body, services, directory, own_team)
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
