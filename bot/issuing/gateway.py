"""PINs: generation, hashing, and the portal gateway (SPEC §6).

A PIN is 8 characters of Crockford base32 (no I, L, O, U) from `secrets`: 32^8 ≈ 1.1e12
values. Only a salted scrypt hash is stored. scrypt(N=2^14, r=8, p=1) costs ~40 ms and 16 MiB
per guess here, so exhausting one PIN's space offline takes ~1,400 CPU-years (each PIN has its
own salt, and PINs expire); it keeps a batch of 4 siblings well inside Slack's 3 s. The
parameters travel in the stored string, so they can be raised without invalidating old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session, col, select

from bot.text import CROCKFORD_ALPHABET
from models import Patient, Pin, PinStatus, utcnow

PIN_LENGTH = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
# What a parent might type for a character we never print.
_MISREAD = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def generate_pin() -> str:
    return "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(PIN_LENGTH))


def normalize_pin(typed: str) -> str:
    """What a parent typed -> the canonical PIN (case, dashes, spaces, I/L/O/U forgiven)."""
    return "".join(ch for ch in typed.upper() if ch.isalnum()).translate(_MISREAD)


def pin_lookup(key: bytes, typed: str) -> str:
    """The PIN's lookup value (SPEC §11): HMAC-SHA256 of the normalized PIN under the secret's
    PIN_LOOKUP key. Indexed, so a typed PIN is found with one seek and a wrong one costs no
    scrypt; keyed, so a copy of the database alone cannot test guesses with it."""
    return hmac.new(key, normalize_pin(typed).encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        normalize_pin(pin).encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM
    )
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_pin(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        normalize_pin(pin).encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_SCRYPT_MAXMEM,
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


@dataclass(frozen=True)
class NewPin:
    plaintext: str
    pin_hash: str
    lookup: str | None = None  # None from a gateway that does not serve the portal API


class PortalGateway(Protocol):
    """The portal's side of a PIN. A vendor API can replace the built-in one without
    touching handlers or letters: issuance asks it for a PIN and tells it of changes."""

    def issue(self, patient: Patient, expires_at: datetime | None) -> NewPin: ...

    def revoke(self, pin: Pin) -> None: ...

    def mark_registered(self, pin: Pin) -> None: ...


class BuiltinGateway:
    """Makes PINs here and keeps only their hashes and keyed lookups, so the portal API
    (bot/portal) can answer "PIN + DOB" for the practice's portal. Without a lookup key
    (tests, tools) its PINs are found the way pre-API PINs are."""

    def __init__(self, lookup_key: bytes | None = None) -> None:
        self.lookup_key = lookup_key

    def issue(self, patient: Patient, expires_at: datetime | None) -> NewPin:  # noqa: ARG002
        plaintext = generate_pin()
        lookup = pin_lookup(self.lookup_key, plaintext) if self.lookup_key else None
        return NewPin(plaintext=plaintext, pin_hash=hash_pin(plaintext), lookup=lookup)

    def revoke(self, pin: Pin) -> None:
        """The database status is the record; nothing else to tell."""

    def mark_registered(self, pin: Pin) -> None:
        """The database status is the record; nothing else to tell."""


def verify_patient_pin(session: Session, *, chart_id: str, dob: object, typed: str) -> bool:
    """True when `typed` is the child's active, unexpired PIN and the DOB matches."""
    row = session.exec(
        select(Pin, Patient)
        .join(Patient, col(Pin.patient_id) == col(Patient.id))
        .where(Patient.chart_id == chart_id, Pin.status == PinStatus.ACTIVE)
    ).first()
    if row is None:
        return False
    pin, patient = row
    if patient.dob != dob or (pin.expires_at is not None and pin.expires_at <= utcnow()):
        return False
    return verify_pin(typed, pin.pin_hash)
