"""The one error handler: a domain error becomes its sentence for the user; anything else
becomes "something went wrong (ref …)" with the ref in the log, never a traceback in Slack."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import DatabaseUnavailable
from bot.errors import PinbotError
from handlers.middleware import request_channel, request_user

log = logging.getLogger(__name__)


def user_sentence(error: Exception) -> str:
    if isinstance(error, PinbotError):
        return error.user_message
    if isinstance(error, DatabaseUnavailable):
        return "pinbot can't reach its database right now. Nothing was changed; try again."
    ref = uuid.uuid4().hex[:8]
    log.error("unhandled error", exc_info=error, extra={"ref": ref})
    return f"Something went wrong (ref {ref}). Nothing was changed; try again or tell IT."


def tell_user(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral sentence to whoever acted, wherever they acted."""
    channel, user = request_channel(body), request_user(body)
    if not (channel and user):
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError:
        log.warning("could not tell the user about an error", extra={"user_id": user})


def handle_error(error: Exception, body: dict[str, Any], client: WebClient) -> BoltResponse:
    tell_user(client, body, user_sentence(error))
    # 200: Slack must not show its own generic failure on top of our sentence.
    return BoltResponse(status=200, body="")


def register(app: App) -> None:
    app.error(handle_error)
