"""Request bodies over 1 MiB are refused (413) before they are read: by waitress as `pinbot run`
configures it (a declared length, and a chunked body as it arrives), and by the WSGI app
itself should another server sit in front of it. Waitress hands the app a chunked body whole,
with its length, so the app reads Content-Length only."""

from __future__ import annotations

import io
import socket
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from handlers.app import create_app, make_client
from handlers.serving import MAX_BODY_BYTES, make_wsgi_app
from tests.support.slack_requests import command_payload, sign
from tests.support.stack import Stack

FOUR_HUNDRED_MB = 400 * 1024 * 1024


def _exchange(stack: Stack, head: bytes, body_chunks: list[bytes]) -> tuple[bytes, float]:
    """Send a raw request to the served bot; the status line and how long the answer took."""
    url = urlsplit(stack.sender.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:  # the server answered and closed while the body was still coming
            pass
        answer = sock.makefile("rb").readline()
    return answer, time.monotonic() - started


def _head(stack: Stack, *headers: str) -> bytes:
    url = urlsplit(stack.sender.url)
    lines = [f"POST {url.path} HTTP/1.1", f"Host: {url.netloc}", *headers, "", ""]
    return "\r\n".join(lines).encode()


def test_a_declared_400_mb_body_is_refused_unread(stack: Stack) -> None:
    head = _head(stack, f"Content-Length: {FOUR_HUNDRED_MB}", "Content-Type: text/plain")

    status, took = _exchange(stack, head, [b"x" * 1024])  # the rest is never sent

    assert status.startswith(b"HTTP/1.1 413"), status
    assert took < 5  # answered at once: nothing waited for 400 MB


def test_a_chunked_body_over_1_mib_is_refused(stack: Stack) -> None:
    head = _head(stack, "Transfer-Encoding: chunked", "Content-Type: text/plain")
    piece = b"x" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    chunks = [chunk] * (MAX_BODY_BYTES // len(piece) + 2) + [b"0\r\n\r\n"]

    status, _ = _exchange(stack, head, chunks)

    assert status.startswith(b"HTTP/1.1 413"), status


def test_a_chunked_body_reaches_the_app_whole_with_its_length(stack: Stack) -> None:
    """Signed, chunked: answered as if sent with Content-Length (a body the app saw as
    empty would fail its signature: 401)."""
    payload = command_payload("/pinbot", "help", response_url=stack.fake_slack.response_url())
    body = urlencode(payload).encode()
    signature = [f"{k}: {v}" for k, v in sign(body, stack.sender.signing_secret).items()]
    head = _head(
        stack,
        "Transfer-Encoding: chunked",
        "Content-Type: application/x-www-form-urlencoded",
        *signature,
    )
    chunks = [b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:50], body[50:])]

    status, _ = _exchange(stack, head, [*chunks, b"0\r\n\r\n"])

    assert status.startswith(b"HTTP/1.1 200"), status


class Untouchable(io.RawIOBase):
    """A request body that must not be read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


def test_the_app_itself_refuses_a_long_body_without_reading_it(stack: Stack) -> None:
    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "CONTENT_TYPE": "text/plain"}
    client = make_client(stack.settings)
    wsgi = make_wsgi_app(create_app(stack.services, client), stack.database)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        statuses.append(status)

    declared = {**base, "CONTENT_LENGTH": str(FOUR_HUNDRED_MB), "wsgi.input": Untouchable()}
    wsgi(declared, start_response)
    # No length (a server that passes a chunked body through): not read, refused unsigned.
    unsized = {**base, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": Untouchable()}
    wsgi(unsized, start_response)
    small = {**base, "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    wsgi(small, start_response)  # unsigned: 401, as before

    assert statuses == ["413 Request Entity Too Large", "401 Unauthorized", "401 Unauthorized"]
