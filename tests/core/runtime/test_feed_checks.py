"""`pinbot check`'s lines about reaching the HL7 listener: HL7_BIND against
HL7_ALLOWED_SOURCES, and the TLS files (a pair that loads, the client CA, when each expires,
a FAIL within 30 days). The command itself runs in tests/flows/test_check_feed.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.runtime.checks import CheckResult, check_feed_reach, check_feed_tls
from tests.support.pki import TestAuthority


def reach(**env: str) -> list[CheckResult]:
    return check_feed_reach(load_settings({"HL7_PORT": "2575", **env}))


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.0.4.2"])
def test_a_network_bind_with_loopback_only_sources_is_contradictory(bind: str) -> None:
    [result] = reach(HL7_BIND=bind)
    assert not result.ok
    assert result.detail.startswith(f"contradictory: HL7_BIND={bind} listens on ")
    assert "HL7_ALLOWED_SOURCES allows only this machine" in result.detail


def test_a_loopback_bind_with_only_remote_sources_is_contradictory() -> None:
    [result] = reach(HL7_ALLOWED_SOURCES="10.20.0.0/16")
    assert not result.ok
    assert "nothing can connect" in result.detail


@pytest.mark.parametrize(
    "env",
    [
        {},  # the defaults: loopback and loopback
        {"HL7_BIND": "0.0.0.0", "HL7_ALLOWED_SOURCES": "10.0.4.12"},
        {"HL7_BIND": "0.0.0.0", "HL7_ALLOWED_SOURCES": "127.0.0.1, 10.0.4.0/24"},
    ],
)
def test_agreeing_settings_say_nothing(env: dict[str, str]) -> None:
    assert reach(**env) == []


def test_no_feed_no_lines() -> None:
    assert check_feed_reach(load_settings({"HL7_BIND": "0.0.0.0"})) == []
    # A bad HL7_ALLOWED_SOURCES is its own configuration line, not a contradiction.
    assert reach(HL7_BIND="0.0.0.0", HL7_ALLOWED_SOURCES="10.0.5.1/24") == []
    assert check_feed_tls(load_settings({})) == []


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(tmp_path_factory.mktemp("check-pki"), "practice", timedelta(days=3650))


def tls_lines(
    authority: TestAuthority, name: str, lifetime: timedelta, *, client_ca: bool
) -> list[str]:
    server = authority.issue(name, server=True, lifetime=lifetime)
    env = {
        "HL7_PORT": "2575",
        "HL7_TLS_CERT": str(server.cert_file),
        "HL7_TLS_KEY": str(server.key_file),
    }
    if client_ca:
        env["HL7_TLS_CLIENT_CA"] = str(authority.cert_file)
    return [f"{'ok' if r.ok else 'FAIL'} {r.detail}" for r in check_feed_tls(load_settings(env))]


def test_a_valid_pair_and_client_ca_say_when_they_expire(authority: TestAuthority) -> None:
    cert_line, ca_line = tls_lines(authority, "hl7-400", timedelta(days=400), client_ca=True)
    assert cert_line.startswith(
        "ok TLS 1.2 or newer; HL7_TLS_CERT and HL7_TLS_KEY load as a pair; "
        "HL7_TLS_CERT (CN=hl7-400) is valid until "
    )
    assert cert_line.endswith("(399 days)")
    assert ca_line.startswith(
        "ok mutual TLS: only engines with a certificate signed by HL7_TLS_CLIENT_CA connect; "
        "HL7_TLS_CLIENT_CA (CN=pinbot test CA practice) is valid until "
    )
    assert ca_line.endswith("(3649 days)")


def test_a_certificate_expiring_within_30_days_is_a_fail_saying_when(
    authority: TestAuthority,
) -> None:
    cert_line, note = tls_lines(authority, "hl7-soon", timedelta(days=10), client_ca=False)
    assert cert_line.startswith("FAIL TLS 1.2 or newer; HL7_TLS_CERT and HL7_TLS_KEY load as a")
    assert "in 9 days: renew it before then" in cert_line
    assert note.startswith(
        "ok no HL7_TLS_CLIENT_CA: any program that can connect from HL7_ALLOWED_SOURCES may send"
    )


def test_an_expired_certificate_is_a_fail(authority: TestAuthority) -> None:
    [cert_line, _] = tls_lines(authority, "hl7-old", timedelta(minutes=-1), client_ca=False)
    assert "HL7_TLS_CERT (CN=hl7-old) EXPIRED on " in cert_line and cert_line.startswith("FAIL")


def test_plain_mllp_is_said_and_broken_files_are_not_checked_twice(tmp_path: Path) -> None:
    [plain] = check_feed_tls(load_settings({"HL7_PORT": "2575"}))
    assert plain.ok and plain.detail.startswith("plain MLLP (HL7_TLS_CERT not set)")
    broken = load_settings(
        {"HL7_PORT": "2575", "HL7_TLS_CERT": str(tmp_path / "x"), "HL7_TLS_KEY": str(tmp_path)}
    )
    assert [r.detail for r in check_feed_tls(broken)] == [
        "TLS not checked: fix the HL7_TLS_ lines above first"
    ]
