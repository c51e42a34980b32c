"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, messages collected.

Use the `smtp_server` fixture (import `smtp_server_fixture` into a conftest or test module).
It accepts AUTH PLAIN/LOGIN without TLS for USERNAME/PASSWORD, does not require it, and can be
told to answer MAIL FROM or RCPT TO with an error (`server.mail_reply = "553 5.7.1 Sender not
allowed"`, `server.rcpt_reply = "550 5.1.1 No such user"`). `running_smtp_server` starts one
with TLS: from the first byte ("implicit", as on port 465) or STARTTLS required before AUTH,
which is then required too ("starttls").
"""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"
USERNAME = "pinbot"
PASSWORD = "test-password"


# Below Linux's ephemeral range (32768-60999): an outgoing connection of any test can take a
# port the kernel handed out as "free" before the server that was given it binds it (seen once
# the portal API began binding in a process of its own, a second after pinbot starts). Ports
# here are only ever taken by an explicit bind.
_UNEPHEMERAL_PORTS = (15000, 32000)
_PICK = random.SystemRandom()  # not the seedable module-level one: workers must not agree


def free_port() -> int:
    """A port nothing listens on (closed again at once: connecting to it is refused)."""
    for _ in range(100):
        port = _PICK.randrange(*_UNEPHEMERAL_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    host: str = HOST
    port: int = 0
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "451 4.3.0 Try again later"; None accepts
    mail_reply: str | None = None  # e.g. "553 5.7.1 Sender not allowed"; None accepts

    @property
    def messages(self) -> list[EmailMessage]:
        return [item.message for item in self.received]

    # aiosmtpd handler hooks
    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USERNAME
            and auth_data.password.decode() == PASSWORD
        )
        if ok:
            self.logins.append(USERNAME)
        # handled=False: aiosmtpd then answers "535" itself (handled=True would send nothing).
        return AuthResult(success=ok, handled=False)


Security = Literal["plain", "implicit", "starttls"]


@contextmanager
def running_smtp_server(
    security: Security = "plain", tls: ssl.SSLContext | None = None
) -> Iterator[SmtpServer]:
    """A server on a free loopback port. "implicit": TLS from the first byte with `tls` (the
    server's context); "starttls": STARTTLS with `tls`, required before AUTH and mail, and
    AUTH required; "plain": no TLS, AUTH offered but optional."""
    server = SmtpServer(port=free_port())
    options: dict[str, Any] = {"auth_require_tls": False, "auth_required": False}
    if security == "implicit":
        options["ssl_context"] = tls
    elif security == "starttls":
        options |= {
            "tls_context": tls,
            "require_starttls": True,
            "auth_require_tls": True,
            "auth_required": True,
        }
    controller = Controller(
        server,
        hostname=server.host,
        port=server.port,
        authenticator=server.authenticate,
        ready_timeout=10,
        **options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server
