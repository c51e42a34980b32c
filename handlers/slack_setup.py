"""What `pinbot run` and `pinbot check` ask Slack before relying on it: is SLACK_BOT_TOKEN
accepted (auth.test), does SLACK_APP_TOKEN open a Socket Mode connection
(apps.connections.open), and is the bot a member of the channels it posts to. Each failure is
one sentence naming the variable to fix, never a traceback or a raw slack_sdk log line.

Membership with the manifest's scopes: conversations.info and conversations.members need
channels:read / groups:read, which the manifest does not ask for. chat.postEphemeral (chat:write)
addressed to the bot's own user is the harmless probe: Slack answers not_in_channel (or
channel_not_found for a private channel it was not invited to) exactly when a post there would
fail, and an ephemeral message to the bot itself is seen by nobody."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.config import ANY_CHANNEL, Settings
from bot.errors import CannotStart


class SlackCheck(NamedTuple):
    """One line of `pinbot check` about Slack; the composition root makes it a CheckResult."""

    name: str
    ok: bool
    detail: str


TIMEOUT_SECONDS = 10
PROBE_TEXT = "pinbot check: can pinbot post here? (only pinbot sees this)"
_REFUSED = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}

BOT_TOKEN_FIX = (
    "copy the Bot User OAuth Token (xoxb-…) again from the app's OAuth & Permissions page"
)
APP_TOKEN_FIX = (
    "create an app-level token with the connections:write scope (Basic Information > "
    "App-Level Tokens) and put it (xapp-…) in SLACK_APP_TOKEN, or leave SLACK_APP_TOKEN empty "
    "for HTTP mode"
)


def _unreachable(settings: Settings, error: Exception) -> str:
    return (
        f"Can't reach Slack at {settings.slack_api_url} ({type(error).__name__}): check the "
        "network or proxy, or SLACK_API_URL."
    )


def _code(error: SlackApiError) -> str:
    return str(error.response.get("error") or error.response.status_code)


def _why(error: SlackApiError) -> str:
    code = _code(error)
    meaning = _MEANINGS.get(code) or ("it is not valid" if code in _REFUSED else "")
    return f"Slack said {code}: {meaning}" if meaning else f"Slack said {code}"


_MEANINGS = {
    "not_allowed_token_type": "it is not that kind of token",
    "missing_scope": "the token lacks a scope",
}


def bot_identity(settings: Settings, client: WebClient) -> dict[str, Any]:
    """auth.test with SLACK_BOT_TOKEN: the bot's identity, or CannotStart saying what to fix."""
    with _refusal_names(settings, "SLACK_BOT_TOKEN", BOT_TOKEN_FIX):
        return dict(client.auth_test().data)  # type: ignore[arg-type]


def open_socket_mode(settings: Settings) -> None:
    """apps.connections.open with SLACK_APP_TOKEN, as Socket Mode does first (the URL it
    returns is simply not used)."""
    client = WebClient(
        token=settings.slack_app_token, base_url=settings.slack_api_url, timeout=TIMEOUT_SECONDS
    )
    with _refusal_names(settings, "SLACK_APP_TOKEN", APP_TOKEN_FIX):
        client.apps_connections_open(app_token=settings.slack_app_token or "")


@contextmanager
def _refusal_names(settings: Settings, variable: str, fix: str) -> Iterator[None]:
    """A Slack call with `variable`'s token: a refusal or an unreachable Slack becomes
    CannotStart with one sentence."""
    try:
        yield
    except SlackApiError as error:
        raise CannotStart(f"{variable} was refused ({_why(error)}): {fix}.") from error
    except (SlackRequestError, OSError) as error:
        raise CannotStart(_unreachable(settings, error)) from error


def verify_tokens(settings: Settings, client: WebClient) -> None:
    """Before `pinbot run` serves: the bot token, and the app token in Socket Mode."""
    with quiet_slack_sdk():
        bot_identity(settings, client)
        if settings.socket_mode:
            open_socket_mode(settings)


def channels_to_check(settings: Settings) -> dict[str, str]:
    """channel ID -> the variable that names it (a channel in both is checked once)."""
    # "*" is no channel to look at (the channels line warns about it).
    listed = (c for c in settings.allowed_channel_ids if c != ANY_CHANNEL)
    channels = dict.fromkeys(listed, "ALLOWED_CHANNEL_IDS")
    if settings.reminder_channel_id:
        channels.setdefault(settings.reminder_channel_id, "REMINDER_CHANNEL_ID")
    return channels


def membership_problem(client: WebClient, channel: str, variable: str, bot_user: str) -> str:
    """ "" when the bot can post in `channel`, else what to do about it."""
    try:
        client.chat_postEphemeral(channel=channel, user=bot_user, text=PROBE_TEXT)
    except SlackApiError as error:
        code = _code(error)
        if code in {"not_in_channel", "user_not_in_channel"}:
            return f"pinbot is not in {channel} ({variable}): /invite @pinbot in that channel"
        if code == "channel_not_found":
            return (
                f"{channel} ({variable}) does not exist, or is private and pinbot was not "
                "invited: check the ID (channel details > About, at the bottom) and /invite "
                "@pinbot there"
            )
        if code == "is_archived":
            return f"{channel} ({variable}) is archived: unarchive it or use another channel"
        return f"can't tell whether pinbot can post in {channel} ({variable}): Slack said {code}"
    return ""


def slack_checks(settings: Settings) -> list[SlackCheck]:
    """`pinbot check`'s Slack lines: the bot token, Socket Mode, and every channel pinbot
    posts to. Stops at the first token failure (nothing after it can be checked)."""
    if not settings.slack_bot_token:
        return [SlackCheck("slack", False, "SLACK_BOT_TOKEN is not set")]
    client = WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=TIMEOUT_SECONDS
    )
    with quiet_slack_sdk():
        try:
            identity = bot_identity(settings, client)
        except CannotStart as error:
            return [SlackCheck("slack", False, str(error))]
        results = [
            SlackCheck(
                "slack", True, f"connected as @{identity.get('user')} in {identity.get('team')}"
            )
        ]
        if settings.socket_mode:
            try:
                open_socket_mode(settings)
                results.append(
                    SlackCheck("socket mode", True, "SLACK_APP_TOKEN opens a connection")
                )
            except CannotStart as error:
                results.append(SlackCheck("socket mode", False, str(error)))
        bot_user = str(identity.get("user_id") or "")
        for channel, variable in channels_to_check(settings).items():
            problem = membership_problem(client, channel, variable, bot_user)
            detail = problem or f"pinbot can post in {channel} ({variable})"
            results.append(SlackCheck("channel", not problem, detail))
    return results


@contextmanager
def quiet_slack_sdk() -> Iterator[None]:
    """slack_sdk logs failed calls itself; the sentences above replace those lines."""
    logger = logging.getLogger("slack_sdk")  # its modules' loggers inherit this level
    before = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(before)
