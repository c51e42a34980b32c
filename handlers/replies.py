"""Where a request came from, and how a sentence gets back to whoever sent it: an ephemeral
message for a command or a click, an error inside the dialog for a submission. Shared by the
refusal middleware and the error handler, and safe on any payload shape: a malformed payload
must still get an answer, not a second exception."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

log = logging.getLogger(__name__)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def request_user(body: dict[str, Any]) -> str | None:
    return _text(body.get("user_id")) or _text(_dict(body.get("user")).get("id"))


def request_channel(body: dict[str, Any]) -> str | None:
    return (
        _text(body.get("channel_id"))
        or _text(_dict(body.get("channel")).get("id"))
        or _text(_dict(body.get("container")).get("channel_id"))
    )


def dialog_channel(body: dict[str, Any]) -> str | None:
    """The channel a submitted dialog was opened from: every pinbot dialog keeps it in its
    private_metadata (Slack sends no channel with a submission)."""
    raw = _dict(body.get("view")).get("private_metadata")
    try:
        meta = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return None
    return _text(_dict(meta).get("channel_id"))


def click_thread(body: dict[str, Any]) -> str | None:
    """The thread of the clicked message: its thread_ts, or its own ts when it is the card
    (a thread's first message). None for a click outside a message (a dialog)."""
    message, container = _dict(body.get("message")), _dict(body.get("container"))
    own = _text(container.get("message_ts")) or _text(message.get("ts"))
    return _text(message.get("thread_ts")) or _text(container.get("thread_ts")) or own


def dialog_error(
    body: dict[str, Any], text: str, fields: dict[str, str] | None = None
) -> BoltResponse:
    """The sentence inside the submitted dialog: on the blocks `fields` names (a dialog's input
    block ids are the domain's field names), else on its first input. Only an input block can
    show an error (Slack rejects the response otherwise), so a dialog without one is replaced
    by a notice."""
    blocks = _dict(body.get("view")).get("blocks")
    inputs = [
        b["block_id"]
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("type") == "input" and _text(b.get("block_id"))
    ]
    on_fields = {field: error for field, error in (fields or {}).items() if field in inputs}
    if on_fields:
        return BoltResponse(status=200, body={"response_action": "errors", "errors": on_fields})
    if inputs:
        return BoltResponse(
            status=200, body={"response_action": "errors", "errors": {inputs[0]: text}}
        )
    notice = View(
        type="modal",
        title="pinbot",
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text[:3000]))],
    )
    return BoltResponse(status=200, body={"response_action": "update", "view": notice.to_dict()})


def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral sentence to whoever acted, wherever they acted."""
    channel, user = request_channel(body) or dialog_channel(body), request_user(body)
    if not (channel and user):
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError:
        log.warning("could not tell the user", extra={"user_id": user})
