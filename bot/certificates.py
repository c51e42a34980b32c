"""TLS certificate files named in settings (HL7_TLS_CERT, HL7_TLS_KEY, HL7_TLS_CLIENT_CA; any
listener's certificate, key and client CA): checked when the settings load, so a missing,
unreadable or mismatched file is one line naming its variable instead of a traceback at the
first connection; the server context a listener wraps its connections in; when a certificate
expires, for `pinbot check`.

It imports nothing from pinbot (config.py uses it).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

T = TypeVar("T")
_PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class NamedFile:
    """A file path as a setting gave it: problems name the variable, not just the path."""

    variable: str
    path: Path | None


def file_problems(cert: NamedFile, key: NamedFile, client_ca: NamedFile | None = None) -> list[str]:
    """One line per problem: a certificate without its key (or the other way round), a client
    CA without a certificate, a file that can't be read or is not what it should be, a key
    that does not belong to the certificate. Empty when all is well or nothing is set."""
    ca = client_ca or NamedFile("", None)
    problems = _pairing_problems(cert, key, ca)
    certificates = _read(cert, _certificates, problems, "a PEM certificate (chain)")
    private_key = _read(key, _private_key, problems, "an unencrypted PEM private key")
    _read(
        ca, _certificates, problems, "the PEM certificate of the CA that signs client certificates"
    )
    if certificates and private_key and not _same_key(certificates[0], private_key):
        problems.append(f"{key.variable} is not the private key of {cert.variable}'s certificate.")
    return problems


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2 or newer; with a client CA, a client certificate it signed is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    expires: datetime  # aware, UTC


def certificate_info(path: Path) -> CertificateInfo:
    """The first certificate of a PEM file: its subject and when it expires."""
    first = _certificates(path.read_bytes())[0]
    return CertificateInfo(
        first.subject.rfc4514_string() or "(no subject)", first.not_valid_after_utc
    )


def _pairing_problems(cert: NamedFile, key: NamedFile, ca: NamedFile) -> list[str]:
    problems = []
    if cert.path and not key.path:
        problems.append(f"{key.variable} is required with {cert.variable} (its private key).")
    if key.path and not cert.path:
        problems.append(f"{cert.variable} is required with {key.variable} (the certificate).")
    if ca.path and not cert.path:
        problems.append(
            f"{ca.variable} needs {cert.variable} and {key.variable}: client certificates are "
            "only asked for over TLS."
        )
    return problems


def _read(
    named: NamedFile, parse: Callable[[bytes], T], problems: list[str], expect: str
) -> T | None:
    if named.path is None:
        return None
    try:
        data = named.path.read_bytes()
    except OSError as error:
        problems.append(
            f"{named.variable} must be a readable file ({named.path}: {error.strerror})."
        )
        return None
    try:
        return parse(data)
    except TypeError:  # cryptography: the key is encrypted and no passphrase was given
        problems.append(
            f"{named.variable} must be {expect} ({named.path} is encrypted: pinbot can't ask "
            "for a passphrase; keep the key unencrypted and readable only by pinbot's user)."
        )
    except (ValueError, UnsupportedAlgorithm):
        problems.append(f"{named.variable} must be {expect} ({named.path} is not).")
    return None


def _certificates(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def _private_key(data: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(data, password=None)


def _same_key(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    return bool(
        certificate.public_key().public_bytes(*_PUBLIC) == key.public_key().public_bytes(*_PUBLIC)
    )
