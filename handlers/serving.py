"""HTTP serving of the Bolt app: a WSGI app for waitress (a production threaded WSGI server;
Bolt's own app.start() is a development server), with a health check."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.db import Database
from handlers import ack_runner

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
# Slack's requests are a few kilobytes; a body over 1 MiB is refused (413) before it is read.
MAX_BODY_BYTES = 1024 * 1024
# waitress's options for `pinbot run` (and the tests' server): waitress answers 413 itself to a
# body over the limit, declared (Content-Length) or counted as it arrives (chunked), so it
# never buffers one; its default limit is 1 GiB.
SERVER_OPTIONS: dict[str, Any] = {"max_request_body_size": MAX_BODY_BYTES, "ident": "pinbot"}


def make_wsgi_app(
    app: App, database: Database, *, signing_secret: str | None = None
) -> Callable[..., Iterable[bytes]]:
    """POST /slack/events to Bolt; GET /healthz answers 200 when the database answers.

    Bolt parses a body before it checks the signature, and some malformed payloads make that
    parsing raise (a 500). So the signature is checked here first (401, as Bolt would), and a
    signed request Bolt still chokes on gets an empty 200: only Slack can sign, and Slack must
    not show the user a failure for a payload pinbot can't read."""
    slack = SlackRequestHandler(app, path="/slack/events")
    # Bolt keeps the secret it was built with private; run() passes it explicitly.
    verifier = SignatureVerifier(signing_secret or getattr(app, "_signing_secret", "") or "-")

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            return _health(database, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return slack(environ, start_response)
        body = _read_body(environ)
        if body is None:
            return _json(start_response, "413 Request Entity Too Large", {"error": "too large"})
        if not _signed(verifier, environ, body):
            return _json(start_response, "401 Unauthorized", {"error": "invalid request"})
        try:
            with ack_runner.handing_over() as written:
                return _Written(slack(environ, start_response), written)
        except Exception as error:
            # The type only: an exception message may quote the payload.
            log.warning("unreadable Slack request", extra={"error": type(error).__name__})
            return _json(start_response, "200 OK", {})

    return wsgi


class _Written:
    """A response body that says when the server has written it: a WSGI server calls `close()`
    once the body is sent (waitress, with its default send_bytes, from the request's own
    thread). A listener's bookkeeping after an answer in the ack waits for it
    (handlers/ack_runner.py `handing_over`)."""

    def __init__(self, body: Iterable[bytes], written: threading.Event) -> None:
        self._body, self._written = body, written

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:  # WSGI: the server's close() is the wrapped body's too
                close()
        finally:
            self._written.set()


def _signed(verifier: SignatureVerifier, environ: dict[str, Any], body: bytes) -> bool:
    try:
        return verifier.is_valid(
            body,
            environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
            environ.get("HTTP_X_SLACK_SIGNATURE"),
        )
    except (UnicodeDecodeError, ValueError):  # Slack signs UTF-8 text with a numeric time
        return False


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, put back for Bolt to read again; None, unread, when its declared
    length is over MAX_BODY_BYTES. Only Content-Length is read: waitress de-chunks a chunked
    body (refusing it past its limit) and hands it over with its length. A body without one
    is read as empty, so it fails the signature (401) rather than being read unbounded."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return None
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]


def _health(database: Database, start_response: StartResponse) -> Iterable[bytes]:
    body: dict[str, Any]
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        status, body = "200 OK", {"ok": True}
    except SQLAlchemyError:
        status, body = "503 Service Unavailable", {"ok": False, "error": "database unreachable"}
    return _json(start_response, status, body)
