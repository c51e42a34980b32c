"""The floor of /family end to end: a bare Bolt app on the same server setup as `pinbot run`
in HTTP mode (waitress, 8 threads, the same WebClient settings, request verification and
token verification on), whose /family acks and posts a fixed message; with SLACK_APP_TOKEN set
it runs in Socket Mode instead, as `pinbot run` does. Whatever pinbot adds on top of this —
middleware, search, the family card, audit rows — is pinbot's own cost.

Run by bench/procs.py as a child process; configured by the same environment as the bot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.config import load_settings
from handlers.app import make_client

FIXED_TEXT = "Family card"


def build_app(client: WebClient, signing_secret: str) -> App:
    app = App(
        client=client,
        signing_secret=signing_secret,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.command("/family")
    def family(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postMessage(channel=command["channel_id"], text=FIXED_TEXT)

    @app.action("family_open")
    def open_family(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postMessage(channel=body["channel"]["id"], text=FIXED_TEXT)

    return app


def wsgi_app(app: App) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            body = json.dumps({"ok": True}).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return slack(environ, start_response)

    return wsgi


def main() -> None:
    settings = load_settings()
    app = build_app(make_client(settings), settings.slack_signing_secret or "")
    if settings.socket_mode:  # as `pinbot run` does with SLACK_APP_TOKEN set
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(app, settings.slack_app_token).start()
        return
    waitress.serve(
        wsgi_app(app), host="0.0.0.0", port=settings.port, threads=8, ident="pinbot-floor"
    )
