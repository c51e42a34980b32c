"""The one error handler: a domain error becomes its sentence for the user; anything else
becomes "something went wrong (ref …)" with the ref in the log, never a traceback in Slack.
The sentence goes where the user acted: a command's reply, an ephemeral message for a click,
an error inside the dialog for a submission not yet acknowledged."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import DatabaseUnavailable
from bot.errors import AlreadyDecided, PinbotError, ValidationFailed
from handlers.ids import Commands, FamilyIds, HomeIds, IssueIds, NameFixIds
from handlers.notices import mention
from handlers.replies import dialog_error, tell

log = logging.getLogger(__name__)

OUT_OF_DATE = (
    "That button or dialog is from an older pinbot and no longer works. Search again with /family."
)
TOO_SLOW = (
    "pinbot took longer than Slack allows to answer, so Slack gave up waiting. It may "
    "still have finished: check the family's thread before trying again."
)
_OUR_IDS = frozenset(
    str(i) for ids in (Commands, FamilyIds, HomeIds, IssueIds, NameFixIds) for i in ids
)


def _ours(body: dict[str, Any]) -> bool:
    """A request pinbot has a listener for: if it ends up unhandled, the listener was too slow
    to ack (Bolt gives up after 3 s), not an old button."""
    view, actions = body.get("view"), body.get("actions")
    keys = [body.get("command"), view.get("callback_id") if isinstance(view, dict) else None]
    if isinstance(actions, list):
        keys += [a.get("action_id") for a in actions if isinstance(a, dict)]
    return any(isinstance(k, str) and k in _OUR_IDS for k in keys)


def user_sentence(error: Exception, body: dict[str, Any] | None = None) -> str:
    if isinstance(error, AlreadyDecided) and error.decided_by:
        return f"{error.user_message.rstrip('.')} by {mention(error.decided_by)}."
    if isinstance(error, PinbotError):
        return error.user_message
    if isinstance(error, DatabaseUnavailable):
        return "pinbot can't reach its database right now. Nothing was changed; try again."
    if isinstance(error, BoltUnhandledRequestError) and _ours(body or {}):
        log.warning("listener did not ack in time")
        return TOO_SLOW
    if isinstance(error, SlackApiError):
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        log.warning("Slack refused a call", extra={"error": code})
        return f"Slack refused pinbot's request ({code}). Try again in a minute."
    if isinstance(error, BoltUnhandledRequestError):
        # No listener for it: a button or dialog of an older version, or a payload kind
        # pinbot never asked for. Not a bug worth an error line.
        log.info("unhandled request")
        return OUT_OF_DATE
    ref = uuid.uuid4().hex[:8]
    log.error("unhandled error", exc_info=error, extra={"ref": ref})
    return f"Something went wrong (ref {ref}). Nothing was changed; try again or tell IT."


def handle_error(
    error: Exception, body: dict[str, Any], client: WebClient, response: BoltResponse | None
) -> BoltResponse | None:
    sentence = user_sentence(error, body)
    if response is None:  # acknowledged already: only a message reaches the user now
        tell(client, body, sentence)
        return None
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": sentence})
    if body.get("type") == "view_submission":
        if isinstance(error, PinbotError) and error.closes_dialog:
            # Decided meanwhile: nothing left to type in the dialog, and the answer names who
            # decided, which only a message (not a dialog error) can show as a mention.
            tell(client, body, sentence)
            return BoltResponse(status=200, body="")
        fields = error.errors if isinstance(error, ValidationFailed) else None
        if isinstance(error, PinbotError) and error.field:
            fields = {error.field: sentence}
        return dialog_error(body, sentence, fields)
    tell(client, body, sentence)
    # 200: Slack must not show its own generic failure on top of our sentence.
    return BoltResponse(status=200, body="")


def register(app: App) -> None:
    app.error(handle_error)
