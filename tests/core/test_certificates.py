"""HL7_TLS_CERT, HL7_TLS_KEY, HL7_TLS_CLIENT_CA (and the portal API's PORTAL_API_TLS_CERT and
_KEY, checked the same way): every problem is one line naming the variable when the settings
load (never a traceback at the first connection), and the server context is TLS 1.2 or newer,
requiring a client certificate when a client CA is set."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.certificates import server_context
from bot.config import load_settings
from tests.support.pki import TestAuthority


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls-files")
    ca = TestAuthority(folder, "practice")
    server = ca.issue("localhost", server=True)
    other = ca.issue("other", server=True)
    encrypted = folder / "encrypted.key"
    encrypted.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"SEKRITpassphrase"),
        )
    )
    text = folder / "notes.txt"
    text.write_text("not a certificate\n")
    return {
        "cert": server.cert_file,
        "key": server.key_file,
        "other_key": other.key_file,
        "ca": ca.cert_file,
        "encrypted": encrypted,
        "text": text,
        "missing": folder / "missing.pem",
    }


def problems(files: dict[str, Path], **chosen: str) -> tuple[str, ...]:
    """The settings' problems with HL7_TLS_<NAME> set to the file named by each value."""
    env = {f"HL7_TLS_{name.upper()}": str(files[value]) for name, value in chosen.items()}
    return load_settings(env).problems


def test_a_matching_pair_and_a_ca_load_without_a_problem(files: dict[str, Path]) -> None:
    assert problems(files, cert="cert", key="key", client_ca="ca") == ()
    assert problems(files, cert="cert", key="key") == ()


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        ({"cert": "cert"}, "HL7_TLS_KEY is required with HL7_TLS_CERT (its private key)."),
        ({"key": "key"}, "HL7_TLS_CERT is required with HL7_TLS_KEY (the certificate)."),
        ({"cert": "missing", "key": "key"}, "HL7_TLS_CERT must be a readable file ("),
        ({"cert": "text", "key": "key"}, "HL7_TLS_CERT must be a PEM certificate (chain) ("),
        ({"cert": "cert", "key": "text"}, "HL7_TLS_KEY must be an unencrypted PEM private key ("),
        ({"cert": "cert", "key": "cert"}, "HL7_TLS_KEY must be an unencrypted PEM private key ("),
        ({"cert": "cert", "key": "encrypted"}, "HL7_TLS_KEY must be an unencrypted PEM private"),
        (
            {"cert": "cert", "key": "other_key"},
            "HL7_TLS_KEY is not the private key of HL7_TLS_CERT's certificate.",
        ),
        ({"cert": "cert", "key": "key", "client_ca": "text"}, "HL7_TLS_CLIENT_CA must be the PEM"),
        ({"cert": "cert", "key": "key", "client_ca": "missing"}, "HL7_TLS_CLIENT_CA must be a "),
    ],
    ids=[
        "cert-without-key",
        "key-without-cert",
        "cert-missing",
        "cert-not-pem",
        "key-not-pem",
        "key-is-a-cert",
        "key-encrypted",
        "key-of-another-cert",
        "ca-not-pem",
        "ca-missing",
    ],
)
def test_each_problem_is_one_line_naming_the_variable(
    files: dict[str, Path], chosen: dict[str, str], expected: str
) -> None:
    [problem] = problems(files, **chosen)
    assert problem.startswith(expected), problem
    assert "\n" not in problem and "SEKRIT" not in problem


def test_a_client_ca_alone_says_tls_is_needed(files: dict[str, Path]) -> None:
    assert problems(files, client_ca="ca") == (
        "HL7_TLS_CLIENT_CA needs HL7_TLS_CERT and HL7_TLS_KEY: client certificates are only "
        "asked for over TLS.",
    )


PORTAL = {"PORTAL_API_PORT": "8443"}


def portal_problems(files: dict[str, Path], **chosen: str) -> tuple[str, ...]:
    """The settings' problems with PORTAL_API_TLS_<NAME> set likewise."""
    env = {f"PORTAL_API_TLS_{name.upper()}": str(files[value]) for name, value in chosen.items()}
    return load_settings({**PORTAL, **env}).problems


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        ({"cert": "cert", "key": "key"}, ()),
        (
            {"cert": "cert"},
            ("PORTAL_API_TLS_KEY is required with PORTAL_API_TLS_CERT (its private key).",),
        ),
        (
            {"cert": "cert", "key": "other_key"},
            ("PORTAL_API_TLS_KEY is not the private key of PORTAL_API_TLS_CERT's certificate.",),
        ),
    ],
    ids=["pair", "cert-without-key", "key-of-another-cert"],
)
def test_the_portal_apis_files_are_checked_as_the_feeds_are(
    files: dict[str, Path], chosen: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert portal_problems(files, **chosen) == expected


def test_the_portal_apis_certificate_must_be_one(files: dict[str, Path]) -> None:
    """A file that is there but is no certificate fails when the settings load, not when
    the portal API starts serving."""
    [problem] = portal_problems(files, cert="text", key="key")
    assert problem.startswith("PORTAL_API_TLS_CERT must be a PEM certificate (chain) ("), problem


def test_the_portal_apis_tls_needs_its_port(files: dict[str, Path]) -> None:
    env = {"PORTAL_API_TLS_CERT": str(files["cert"]), "PORTAL_API_TLS_KEY": str(files["key"])}
    assert load_settings(env).problems == (
        "PORTAL_API_TLS_CERT/KEY are set but PORTAL_API_PORT is not: set the port the "
        "portal API listens on.",
    )


def test_the_server_context_is_tls_1_2_or_newer_and_asks_for_a_client_certificate(
    files: dict[str, Path],
) -> None:
    plain = server_context(files["cert"], files["key"])
    assert plain.minimum_version == ssl.TLSVersion.TLSv1_2
    assert plain.verify_mode == ssl.CERT_NONE
    mutual = server_context(files["cert"], files["key"], files["ca"])
    assert mutual.minimum_version == ssl.TLSVersion.TLSv1_2
    assert mutual.verify_mode == ssl.CERT_REQUIRED
