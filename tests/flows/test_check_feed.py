"""`pinbot check` and `pinbot run` as the IT person runs them, with the HL7 listener's TLS
files and bind address set: what they say about a certificate about to expire, a key that is
not the certificate's, and HL7_BIND=0.0.0.0 with the loopback-only default."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.core.runtime.test_cli import REQUIRED, pinbot
from tests.support.pki import TestAuthority
from tests.support.smtp_server import free_port


def test_check_names_the_expiring_certificate_and_the_contradictory_bind(
    tmp_path: Path, database_url: str
) -> None:
    ca = TestAuthority(tmp_path / "pki", "practice", lifetime=timedelta(days=3650))
    server = ca.issue("hl7.practice.example", server=True, lifetime=timedelta(days=20))
    env = {
        **REQUIRED,
        "DATABASE_URL": database_url,
        "HL7_PORT": str(free_port()),
        "HL7_BIND": "0.0.0.0",
        "HL7_TLS_CERT": str(server.cert_file),
        "HL7_TLS_KEY": str(server.key_file),
        "HL7_TLS_CLIENT_CA": str(ca.cert_file),
    }
    run = pinbot(tmp_path, "check", **env)
    hl7 = [line for line in run.said if " hl7: " in line]
    assert hl7[0].startswith("ok  hl7: listener 0.0.0.0:")
    assert hl7[1].startswith("FAIL hl7: contradictory: HL7_BIND=0.0.0.0 listens on every network")
    assert hl7[2].startswith("FAIL hl7: TLS 1.2 or newer; HL7_TLS_CERT and HL7_TLS_KEY load as")
    assert "(CN=hl7.practice.example) expires on " in hl7[2] and "in 19 days" in hl7[2]
    assert hl7[3].startswith("ok  hl7: mutual TLS: only engines with a certificate signed by")
    assert run.code == 1


def test_a_key_of_another_certificate_stops_run_with_one_line(
    tmp_path: Path, database_url: str
) -> None:
    ca = TestAuthority(tmp_path / "pki", "practice")
    server, other = ca.issue("server", server=True), ca.issue("other", server=True)
    env = {
        **REQUIRED,
        "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "SLACK_SIGNING_SECRET": "abc",
        "DATABASE_URL": database_url,
        "HL7_PORT": str(free_port()),
        "HL7_TLS_CERT": str(server.cert_file),
        "HL7_TLS_KEY": str(other.key_file),
    }
    run = pinbot(tmp_path, "run", **env)
    assert run.code == 2
    assert "HL7_TLS_KEY is not the private key of HL7_TLS_CERT's certificate." in run.said
    check = pinbot(tmp_path, "check", **env)
    assert (
        "FAIL configuration: HL7_TLS_KEY is not the private key of HL7_TLS_CERT's certificate."
        in check.said
    )
    assert "FAIL hl7: TLS not checked: fix the HL7_TLS_ lines above first" in check.said
