"""`pinbot check` and delivery take the same SMTP path (SPEC §4, §6): one table of cases, run
through both, against real TLS servers on loopback (aiosmtpd with TLS from the first byte and
with STARTTLS + AUTH required), a throwaway private CA trusted through SSL_CERT_FILE.

A case either succeeds on both paths (the check sends nothing; delivery hands one message to
the server) or fails on both with the same sentence, naming the setting to fix. Port 465 is
what turns on TLS from the first byte; the tests' servers listen on free ports, so the test
maps that port number onto the server's (`IMPLICIT_TLS_PORT`) and the code path is the one a
real 465 takes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bot.config import Settings, load_settings
from bot.delivery import smtp as smtp_module
from bot.delivery.performers import Deliveries, DeliveryError
from bot.delivery.smtp import MailError
from bot.runtime.checks import check_smtp
from handlers.notices import render_notice
from models import OutgoingWork, WorkKind
from tests.support.smtp_server import (
    HOST,
    PASSWORD,
    USERNAME,
    Security,
    SmtpServer,
    free_port,
    running_smtp_server,
)
from tests.support.tls import Certificates, certificates_fixture

FIXTURES = (certificates_fixture,)
TO_ADDRESS = "jane.doe@example.com"
MAIL_FROM = "Maple Street Pediatrics <frontdesk@maple.example>"


@dataclass(frozen=True)
class Case:
    id: str
    server: Security | None  # None: nothing listens
    env: dict[str, str] = field(default_factory=dict)
    implicit: bool = False  # the configured port is the implicit-TLS one
    trust: str = "ca"  # SSL_CERT_FILE: "ca" (signed the server's certificate) or "stranger"
    mail_reply: str | None = None
    ok: bool = False
    names: tuple[str, ...] = ()  # words the failure sentence must contain


LOGIN = {"SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": PASSWORD}
STARTTLS = {"SMTP_STARTTLS": "true", **LOGIN}
CASES = [
    Case("implicit TLS, trusted", "implicit", LOGIN, implicit=True, ok=True),
    Case(
        "implicit TLS, untrusted certificate",
        "implicit",
        LOGIN,
        implicit=True,
        trust="stranger",
        names=("certificate was not trusted", "SSL_CERT_FILE"),
    ),
    Case("port 465 on a server without TLS", "plain", implicit=True, names=("SMTP_PORT",)),
    Case("STARTTLS + AUTH, trusted", "starttls", STARTTLS, ok=True),
    Case(
        "STARTTLS, untrusted certificate",
        "starttls",
        STARTTLS,
        trust="stranger",
        names=("certificate was not trusted", "SSL_CERT_FILE"),
    ),
    Case(
        "STARTTLS, wrong password",
        "starttls",
        {**STARTTLS, "SMTP_PASSWORD": "not-the-password"},
        names=("login", "SMTP_USERNAME and SMTP_PASSWORD"),
    ),
    Case(
        "STARTTLS, no login where one is required",
        "starttls",
        {"SMTP_STARTTLS": "true"},
        names=("requires a login", "SMTP_USERNAME and SMTP_PASSWORD"),
    ),
    Case(
        "SMTP_STARTTLS=false where TLS is required",
        "starttls",
        {**LOGIN, "SMTP_STARTTLS": "false"},
        names=("SMTP_STARTTLS=true",),
    ),
    Case(
        "SMTP_STARTTLS=true where the server offers none",
        "plain",
        {"SMTP_STARTTLS": "true"},
        names=("does not offer STARTTLS", "SMTP_STARTTLS"),
    ),
    Case(
        "sender refused",
        "starttls",
        STARTTLS,
        mail_reply="553 5.7.1 <frontdesk@maple.example>: Sender address rejected",
        names=("refused the sender", "MAIL_FROM"),
    ),
    Case("nothing listens", None, names=("could not reach", "SMTP_HOST and SMTP_PORT")),
    Case(
        "a host name that does not resolve",  # .invalid never resolves (RFC 2606)
        None,
        {"SMTP_HOST": "smtp.maple.invalid"},
        names=("SMTP host name smtp.maple.invalid could not be found", "check SMTP_HOST"),
    ),
]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str


def through_check(settings: Settings) -> Outcome:
    result = check_smtp(settings)
    assert result.name == "smtp"
    return Outcome(result.ok, result.detail)


def through_delivery(settings: Settings) -> Outcome:
    """The outbox's welcome-email performer, as the worker runs it."""
    deliveries = Deliveries(
        database=None,  # type: ignore[arg-type]  # the email performer reads no records
        settings=settings,
        slack=None,
        clock=lambda: datetime.now(UTC),
        post_in_thread=lambda *args, **kwargs: None,
        render_notice=render_notice,
        smtp_timeout=5,
    )
    payload = {
        "to_address": TO_ADDRESS,
        "guardian_name": "Jane Doe",
        "child_first_name": "Ava",
        "pin": "ABCD2345",
        "pin_id": 7,
        "sibling_first_names": ["Ben"],
    }
    work = OutgoingWork(
        id=1, kind=WorkKind.WELCOME_EMAIL, dedupe_key="email:1", batch_id=1, payload="{}"
    )
    try:
        deliveries.performer(WorkKind.WELCOME_EMAIL)(json.loads(json.dumps(payload)), work)
    except (MailError, DeliveryError) as error:
        return Outcome(False, str(error))
    return Outcome(True, "delivered")


PATHS: dict[str, Callable[[Settings], Outcome]] = {
    "check": through_check,
    "delivery": through_delivery,
}


@pytest.fixture
def server_for(
    request: pytest.FixtureRequest, certificates: Certificates
) -> Iterator[Callable[[Case], SmtpServer | None]]:
    servers: list[Iterator[SmtpServer]] = []

    def start(case: Case) -> SmtpServer | None:
        if case.server is None:
            return None
        running = running_smtp_server(case.server, certificates.server_context())
        server = running.__enter__()
        servers.append(running)  # type: ignore[arg-type]
        server.mail_reply = case.mail_reply
        return server

    yield start
    for running in servers:
        running.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_check_and_delivery_agree(
    case: Case,
    path: str,
    certificates: Certificates,
    server_for: Callable[[Case], SmtpServer | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_for(case)
    port = server.port if server else free_port()
    trusted = certificates.ca_file if case.trust == "ca" else certificates.stranger_ca_file
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))  # read by the delivery's TLS context
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if case.implicit:
        monkeypatch.setattr(smtp_module, "IMPLICIT_TLS_PORT", port)
    settings = load_settings(
        {
            "PORTAL_URL": "https://portal.example.com/register",
            "PRACTICE_NAME": "Maple Street Pediatrics",
            "PRACTICE_PHONE": "(555) 010-0100",
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(port),
            "SMTP_STARTTLS": "false",
            "MAIL_FROM": MAIL_FROM,
            **case.env,
        }
    )
    assert not settings.problems

    outcome = PATHS[path](settings)

    assert outcome.ok is case.ok, outcome
    for words in case.names:
        assert words in outcome.text, outcome
    assert TO_ADDRESS not in outcome.text and "frontdesk@" not in outcome.text
    assert PASSWORD not in outcome.text
    if server is None:
        return
    if case.ok and case.env.get("SMTP_USERNAME"):
        assert server.logins == [USERNAME]  # it really logged in
    sent = [item.rcpt_tos for item in server.received]
    assert sent == ([[TO_ADDRESS]] if case.ok and path == "delivery" else [])


def test_the_check_says_how_the_connection_is_secured(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    with running_smtp_server("starttls", certificates.server_context()) as server:
        settings = load_settings(
            {
                "SMTP_HOST": HOST,
                "SMTP_PORT": str(server.port),
                "MAIL_FROM": MAIL_FROM,
                **STARTTLS,
            }
        )
        result = check_smtp(settings)
    assert result.ok, result
    assert result.detail == (
        f"{HOST}:{server.port} (STARTTLS, certificate verified, logged in with SMTP_USERNAME) "
        "accepts MAIL_FROM as the sender; no message was sent"
    )
    assert server.received == []
