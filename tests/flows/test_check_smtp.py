"""`pinbot check`, run as the IT person runs it, against a STARTTLS + AUTH server whose
certificate comes from a private CA: trusted through SSL_CERT_FILE it says ok; without that
trust it fails, naming the certificate and SSL_CERT_FILE, while delivery would fail the same
way (tests/core/delivery/test_smtp_paths.py holds the full table of cases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.runtime.test_cli import full_config, pinbot
from tests.support.fake_slack import FakeSlack, fake_slack_fixture
from tests.support.smtp_server import HOST, PASSWORD, SmtpServer, running_smtp_server
from tests.support.tls import Certificates, certificates_fixture

FIXTURES = (fake_slack_fixture, certificates_fixture)


@pytest.fixture
def tls_server(certificates: Certificates) -> Iterator[SmtpServer]:
    with running_smtp_server("starttls", certificates.server_context()) as server:
        yield server


def check(tmp_path: Path, fake_slack: FakeSlack, server: SmtpServer, ca_file: Path) -> str:
    env = full_config(f"sqlite:///{tmp_path / 'check.db'}", fake_slack, server.port)
    env |= {"SMTP_STARTTLS": "true", "SSL_CERT_FILE": str(ca_file)}
    run = pinbot(tmp_path, "check", **env)
    [line] = [line for line in run.said if line.split()[1:2] == ["smtp:"]]
    assert PASSWORD not in run.output and "SEKRIT" not in run.output
    return f"{run.code} {line}"


def test_trusted_private_ca_is_ok(
    tmp_path: Path, fake_slack: FakeSlack, tls_server: SmtpServer, certificates: Certificates
) -> None:
    said = check(tmp_path, fake_slack, tls_server, certificates.ca_file)
    assert said == (
        f"0 ok  smtp: {HOST}:{tls_server.port} (STARTTLS, certificate verified, logged in "
        "with SMTP_USERNAME) accepts MAIL_FROM as the sender; no message was sent"
    )
    assert tls_server.received == []


def test_untrusted_certificate_fails_and_says_how_to_trust_it(
    tmp_path: Path, fake_slack: FakeSlack, tls_server: SmtpServer, certificates: Certificates
) -> None:
    said = check(tmp_path, fake_slack, tls_server, certificates.stranger_ca_file)
    assert said.startswith("1 FAIL smtp: the SMTP server's TLS certificate was not trusted ("), said
    assert said.endswith(
        "): if it is signed by a private CA, set SSL_CERT_FILE to that CA's certificate, "
        "or check SMTP_HOST"
    ), said
    assert tls_server.logins == []  # no password went to a server it could not trust
