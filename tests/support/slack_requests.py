"""Requests as Slack sends them: signed, form-encoded, with realistic interactivity payloads.

`serve_wsgi` serves the bot's WSGI app with waitress on loopback; `SlackSender` posts slash
commands and interactivity payloads to it, signed like Slack (v0 HMAC-SHA256). The payload
builders return dicts shaped like Slack's; pass them to `block_action` / `view_submission`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from waitress import wasyncore
from waitress.server import create_server

from handlers.serving import SERVER_OPTIONS
from tests.support.fake_slack import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    STAFF_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
)

CHANNEL_ID = "C0FRONTDESK"
CHANNEL_NAME = "front-desk"
EVENTS_PATH = "/slack/events"
VERIFICATION_TOKEN = "deprecated-verification-token"

_serial = itertools.count(1)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature for `body`, exactly as Slack signs."""
    stamp = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(stamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": f"v0={digest}"}


def new_trigger_id() -> str:
    """A trigger id in Slack's shape (digits.digits.hex); each one is fresh."""
    return f"{int(time.time() * 1000)}.{next(_serial)}.{secrets.token_hex(16)}"


def new_action_ts() -> str:
    return f"{time.time():.6f}"


def hooks_url(kind: str = "actions") -> str:
    """A response_url with the path of Slack's (hooks.slack.com/<kind>/<team>/<id>/<secret>) on
    an unused loopback port: a stray respond() fails fast instead of leaving the machine. Pass
    FakeSlack.response_url() instead to have the posts recorded."""
    return f"http://127.0.0.1:9/{kind}/{TEAM_ID}/{next(_serial)}/{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10,
) -> Response:
    """A stdlib HTTP request; HTTP error statuses are returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, dict(reply.headers.items()), reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, dict(error.headers.items()), error.read())


class SlackSender:
    """Posts signed requests to the bot's /slack/events, form-encoded like Slack."""

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        path: str = EVENTS_PATH,
        response_urls: Callable[[], str] | None = None,
        timeout: float = 10,
    ) -> None:
        """`response_urls`: a callable returning a fresh response_url for each command
        (e.g. `fake_slack.response_url`); defaults to `hooks_url`."""
        self.url = base_url.rstrip("/") + path
        self.signing_secret = signing_secret
        self.response_urls = response_urls or (lambda: hooks_url("commands"))
        self.timeout = timeout

    def command(
        self,
        command: str = "/family",
        text: str = "",
        *,
        timestamp: int | None = None,
        **fields: str,
    ) -> Response:
        """A slash command; `fields` as in command_payload (user_id, channel_id, trigger_id…).
        The response_url comes from `response_urls` unless given."""
        fields.setdefault("response_url", self.response_urls())
        body = urlencode(command_payload(command, text, **fields)).encode()
        return self.raw(body, timestamp=timestamp)

    def block_action(self, payload: Mapping[str, Any], *, timestamp: int | None = None) -> Response:
        return self.interaction(payload, timestamp=timestamp)

    def view_submission(
        self, payload: Mapping[str, Any], *, timestamp: int | None = None
    ) -> Response:
        return self.interaction(payload, timestamp=timestamp)

    def interaction(self, payload: Mapping[str, Any], *, timestamp: int | None = None) -> Response:
        """Any interactivity payload, as Slack posts it: a `payload=<json>` form field."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.raw(body, timestamp=timestamp)

    def event(self, payload: Mapping[str, Any], *, timestamp: int | None = None) -> Response:
        """An Events API request: a JSON body (not a form), signed the same way."""
        body = json.dumps(payload).encode()
        return self.raw(body, {"Content-Type": "application/json"}, timestamp=timestamp)

    def raw(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        timestamp: int | None = None,
        signed: bool = True,
    ) -> Response:
        """POST `body`; signed unless `signed=False`; `headers` override the defaults."""
        all_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **(sign(body, self.signing_secret, timestamp) if signed else {}),
            **(headers or {}),
        }
        return http_request(self.url, body, all_headers, "POST", self.timeout)


# ---------------------------------------------------------------------------------------------
# payload builders


def command_payload(
    command: str = "/family",
    text: str = "",
    *,
    user_id: str = STAFF_USER_ID,
    user_name: str = "frontdesk",
    channel_id: str = CHANNEL_ID,
    channel_name: str = CHANNEL_NAME,
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, str]:
    """A slash command's fields, in Slack's order: the form body over HTTP, the envelope
    payload in Socket Mode."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url or hooks_url("commands"),
        "trigger_id": trigger_id or new_trigger_id(),
    }


def _user(user_id: str, username: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": username, "name": username, "team_id": team_id}


def _base(kind: str, user_id: str, username: str, team_id: str) -> dict[str, Any]:
    return {
        "type": kind,
        "user": _user(user_id, username, team_id),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
    }


def block_actions_payload(
    action_id: str,
    value: str | None = None,
    *,
    user_id: str = STAFF_USER_ID,
    username: str = "frontdesk",
    channel_id: str = CHANNEL_ID,
    message_ts: str = "1700000000.000100",
    thread_ts: str | None = None,
    trigger_id: str | None = None,
    block_id: str | None = None,
    action_type: str = "button",
    button_text: str = "Open",
    message_blocks: list[dict[str, Any]] | None = None,
    message_text: str = "",
    is_ephemeral: bool = False,
    view: Mapping[str, Any] | None = None,
    response_url: str | None = None,
    action_fields: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A block_actions payload for one action.

    On a message by default (container + message, with `thread_ts` when the message is in a
    thread); `is_ephemeral=True` drops `message` like Slack does for ephemeral messages; `view=`
    makes it an action inside that modal. `action_fields` adds/overrides fields of the action
    (e.g. `selected_options` for checkboxes).
    """
    action: dict[str, Any] = {
        "type": action_type,
        "action_id": action_id,
        "block_id": block_id or f"blk-{next(_serial)}",
        "action_ts": new_action_ts(),
    }
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": button_text, "emoji": True}
    if value is not None:
        action["value"] = value
    action.update(action_fields or {})
    payload = _base("block_actions", user_id, username, team_id)
    payload.update(trigger_id=trigger_id or new_trigger_id(), actions=[action])
    payload["response_url"] = response_url or hooks_url("actions")
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id")}
        payload.update(view=dict(view), state=view.get("state", {"values": {}}))
        del payload["response_url"]
        return payload
    container = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    payload.update(
        container=container, channel={"id": channel_id, "name": CHANNEL_NAME}, state={"values": {}}
    )
    if not is_ephemeral:
        payload["message"] = _message(message_ts, thread_ts, message_text, message_blocks)
    return payload


def _message(
    ts: str, thread_ts: str | None, text: str, blocks: list[dict[str, Any]] | None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "bot_id": BOT_ID,
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
    if blocks is not None:
        message["blocks"] = blocks
    return message


def view_submission_payload(
    callback_id: str,
    state_values: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    view_id: str | None = None,
    private_metadata: str = "",
    user_id: str = STAFF_USER_ID,
    username: str = "frontdesk",
    trigger_id: str | None = None,
    view: Mapping[str, Any] | None = None,
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A view_submission payload. `view=` starts from a view Slack returned (e.g.
    `fake_slack.last("views.open").response["view"]`); the other arguments override it."""
    base = dict(view or {})
    submitted = {
        "id": view_id or base.get("id") or f"V0{next(_serial):08d}",
        "team_id": team_id,
        "type": "modal",
        "title": {"type": "plain_text", "text": "pinbot"},
        "blocks": [],
        "close": None,
        "submit": {"type": "plain_text", "text": "Submit"},
        "clear_on_close": False,
        "notify_on_close": False,
        "previous_view_id": None,
        "external_id": "",
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "app_id": APP_ID,
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
        **base,
        "callback_id": callback_id,
        "private_metadata": private_metadata or base.get("private_metadata", ""),
        "state": {"values": {k: dict(v) for k, v in (state_values or {}).items()}},
    }
    submitted.setdefault("root_view_id", submitted["id"])
    payload = _base("view_submission", user_id, username, team_id)
    payload.update(trigger_id=trigger_id or new_trigger_id(), view=submitted, response_urls=[])
    return payload


def event_callback_payload(event: Mapping[str, Any], *, team_id: str = TEAM_ID) -> dict[str, Any]:
    """An Events API envelope (type event_callback) around `event`, as Slack posts it."""
    stamp = int(time.time())
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": dict(event),
        "type": "event_callback",
        "event_id": f"Ev0{next(_serial):08d}",
        "event_time": stamp,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_hex(12)}",
    }


def app_home_opened_event(
    user_id: str = STAFF_USER_ID, *, tab: str = "home", view: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """app_home_opened: `view` is the tab's current view, present once one was published."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D0" + user_id[2:],
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    if view is not None:
        event["view"] = dict(view)
    return event_callback_payload(event)


# state.values entries, keyed block_id -> action_id -> one of these


def plain_text_value(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def _option(value: str, text: str | None) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}


def checkboxes_value(values: list[str]) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [_option(v, None) for v in values]}


def radio_value(value: str | None) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": _option(value, None) if value else None}


def static_select_value(value: str | None) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": _option(value, None) if value else None}


# ---------------------------------------------------------------------------------------------
# serving a WSGI app


@contextmanager
def serve_wsgi(wsgi_app: Any, *, threads: int = 4) -> Iterator[str]:
    """Serve `wsgi_app` with waitress on 127.0.0.1 (free port); yield "http://127.0.0.1:PORT"."""
    # The server `pinbot run` serves with: the same limits (handlers/serving.py).
    server = create_server(wsgi_app, host="127.0.0.1", port=0, threads=threads, **SERVER_OPTIONS)
    thread = threading.Thread(target=server.run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # close every socket from inside the loop thread, so the loop wakes and ends at once
        with contextlib.suppress(OSError):  # the loop already closed its trigger and ended
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
