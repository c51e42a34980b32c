"""MLLP over TLS against the listener started as `pinbot run` starts it (HL7_TLS_CERT,
HL7_TLS_KEY, HL7_TLS_CLIENT_CA): python-hl7's own MLLPClient with its socket wrapped in TLS
is the interface engine. Certificates come from throwaway CAs made in the test run."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hl7.client import MLLPClient

from models import FeedMessage, Patient
from tests.core.feed.conftest import fixture_bytes
from tests.core.feed.support import msa, recording, send
from tests.flows.feed_support import FeedStack, build_feed_stack
from tests.flows.test_feed import count
from tests.support.fake_slack import FakeSlack
from tests.support.pki import Issued, TestAuthority
from tests.support.smtp_server import SmtpServer
from tests.support.stack import eventually

NEWBORN = fixture_bytes("adt_a04_newborn_v251.hl7")


class TlsMllpClient(MLLPClient):  # type: ignore[misc]  # python-hl7 has no type hints
    """The library's client (its framing, send and receive), over a TLS-wrapped socket."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port)
        self.socket.settimeout(10)
        self.socket = context.wrap_socket(self.socket, server_hostname="127.0.0.1")


class Practice:
    """The practice's CA (it signs pinbot's server certificate and the engine's client
    certificate) and a stranger's CA that signs a look-alike engine certificate."""

    def __init__(self, folder: Path) -> None:
        self.ca = TestAuthority(folder, "practice")
        self.server = self.ca.issue("localhost", server=True)
        self.engine = self.ca.issue("mirth engine")
        self.stranger = TestAuthority(folder, "stranger")
        self.impostor = self.stranger.issue("mirth engine")

    def env(self, *, client_ca: bool = True) -> dict[str, str]:
        env = {"HL7_TLS_CERT": str(self.server.cert_file), "HL7_TLS_KEY": str(self.server.key_file)}
        if client_ca:
            env["HL7_TLS_CLIENT_CA"] = str(self.ca.cert_file)
        return env


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Practice:
    return Practice(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def tls_feed(
    database_url: str, fake_slack: FakeSlack, smtp: SmtpServer, env: dict[str, str]
) -> Iterator[FeedStack]:
    yield from build_feed_stack(database_url, fake_slack, smtp, **env)


def tls_send(feed: FeedStack, context: ssl.SSLContext, raw: bytes) -> bytes:
    """One message over TLS: the ACK's bytes, or b"" when the listener closed the connection
    (the client may learn it in the handshake, on sending, or on reading)."""
    try:
        with TlsMllpClient(feed.server.port, context) as client:
            return send(client, raw)
    except (ssl.SSLError, OSError):
        return b""


def engine_context(practice: Practice, client: Issued | None) -> ssl.SSLContext:
    return practice.ca.client_context(client)


@pytest.mark.parametrize("client_ca", [True, False], ids=["mutual-tls", "server-tls"])
def test_a_trusted_engine_gets_aa_and_the_child_is_stored(
    database_url: str,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    practice: Practice,
    client_ca: bool,
) -> None:
    env = practice.env(client_ca=client_ca)
    with recording() as log, tls_feed(database_url, fake_slack, smtp_server, env) as feed:
        reply = tls_send(feed, engine_context(practice, practice.engine), NEWBORN)
        assert msa(reply) == ("AA", "EP000101")
        assert count(feed, Patient) == 1 and count(feed, FeedMessage) == 1
        if not client_ca:  # server-only TLS: an engine without a client certificate is fine
            second = NEWBORN.replace(b"|EP000101|", b"|EP000102|")
            assert msa(tls_send(feed, engine_context(practice, None), second))[0] == "AA"
    assert "hl7 TLS from 127.0.0.1 (TLSv1." in log.text()
    expected = "TLS, client certificates required" if client_ca else "(TLS)"
    assert expected in log.text()


REFUSED = {
    "no client certificate": lambda p: engine_context(p, None),
    "a certificate from another CA": lambda p: engine_context(p, p.impostor),
}


@pytest.mark.parametrize("client", list(REFUSED), ids=["no-cert", "other-ca"])
def test_an_engine_without_a_trusted_certificate_is_closed_and_nothing_applied(
    database_url: str,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    practice: Practice,
    client: str,
) -> None:
    context: ssl.SSLContext = REFUSED[client](practice)
    with (
        recording() as log,
        tls_feed(database_url, fake_slack, smtp_server, practice.env()) as feed,
    ):
        assert tls_send(feed, context, NEWBORN) == b""
        eventually(lambda: _handshake_lines(log, 1))
        assert count(feed, FeedMessage) == 0 and count(feed, Patient) == 0
        # The listener goes on serving the real engine.
        assert msa(tls_send(feed, engine_context(practice, practice.engine), NEWBORN))[0] == "AA"
    [line] = _handshake_lines(log, 1)
    reason = "CERTIFICATE_VERIFY_FAILED" if "other" in client else "CERTIFICATE"
    assert reason in line, line


def test_plain_mllp_to_the_tls_port_is_closed_unanswered_and_logged_once_a_minute(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, practice: Practice
) -> None:
    with (
        recording() as log,
        tls_feed(database_url, fake_slack, smtp_server, practice.env()) as feed,
    ):
        for _ in range(5):
            assert _plain_send(feed) == b""
        eventually(lambda: _handshake_lines(log, 1))
        assert count(feed, FeedMessage) == 0 and count(feed, Patient) == 0
    # Five failures from one source within the minute: one line at once, and the other four
    # counted in one line when the listener stops (or when the minute is over).
    first, summary = _handshake_lines(log, 2)
    assert "127.0.0.1" in first and "closed unanswered" in first
    assert "(and 4 more like it since the last such line" in summary


def _plain_send(feed: FeedStack) -> bytes:
    try:
        with feed.connection() as client:  # the library's plain MLLP client
            return send(client, NEWBORN)
    except OSError:
        return b""


def _handshake_lines(log: Any, expected: int) -> list[str]:
    lines = [line for line in log.text().splitlines() if "TLS handshake with" in line]
    assert len(lines) == expected, lines
    return lines


def test_a_slow_handshake_is_closed_at_its_deadline_while_others_are_served(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, practice: Practice
) -> None:
    """A ClientHello trickled byte by byte (each byte resets no timer) and a connection that
    never says anything hold no slot past the handshake deadline, and the engine connecting
    meanwhile is served at once: the handshake happens on the connection's own thread."""
    limits = {"handshake_timeout": 1.0}
    with (
        recording() as log,
        contextlib.ExitStack() as held,
    ):
        feed = held.enter_context(
            contextlib.contextmanager(build_feed_stack)(
                database_url, fake_slack, smtp_server, limits, **practice.env()
            )
        )
        silent = held.enter_context(socket.create_connection(("127.0.0.1", feed.server.port)))
        trickled = held.enter_context(socket.create_connection(("127.0.0.1", feed.server.port)))
        started = time.monotonic()
        reply = tls_send(feed, engine_context(practice, practice.engine), NEWBORN)
        assert msa(reply)[0] == "AA" and time.monotonic() - started < 1.0
        hello = _client_hello(engine_context(practice, practice.engine))
        closed_after = None
        for byte in hello:
            try:
                trickled.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.05)
            if time.monotonic() - started > 6:
                break
        closed_after = closed_after or time.monotonic() - started
        assert 0.9 < closed_after < 3, closed_after
        silent.settimeout(5)
        assert silent.recv(1024) == b""
        eventually(lambda: _handshake_lines(log, 1))
    first, summary = _handshake_lines(log, 2)  # the two slow ones: one line and its count
    assert "failed (not done within 1 s): closed unanswered" in first
    assert "(and 1 more like it since" in summary


def _client_hello(context: ssl.SSLContext) -> bytes:
    """The first bytes a TLS client sends, made without a socket."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()
