"""PINs inside undelivered work are sealed (SPEC §12): the plaintext never reaches the database.

`seal_pins` runs where a payload is written (bot.delivery.outbox.enqueue), `open_pins` where
it is delivered (the worker, just before the performer); erasing a payload's PINs
(`outbox.erase_secrets`) deletes the ciphertext. So the WAL, dead rows and backups hold at
most ciphertext, and without the secret outside the database (bot/secret.py) it stays that.

AES-256-GCM (`cryptography`'s AESGCM), not Fernet: an authenticated cipher that takes
associated data, which Fernet cannot. Each sealed PIN is bound to its row (the work's
dedupe key), its place in the payload, and where the work delivers it (the email address,
the Slack channel): a sealed PIN copied into another row, moved to another child's letter,
or a row pointed at another mailbox by someone who can write the database fails to open
instead of delivering the PIN elsewhere. The key is 256 bits from HKDF
(KeyPurpose.PIN_ENCRYPTION); the nonce is 96 random bits per PIN, far inside GCM's limit for
random nonces (2^32 messages per key) at a practice's volume. Fernet would add a cleartext
timestamp and a second key for HMAC and still bind nothing.

A sealed PIN is text: `sealed:v1:` + URL-safe base64 of nonce ‖ ciphertext ‖ tag. Anything
else under a "pin" key is plaintext written before this existed (`is_sealed`): the worker
still delivers it, and start-up seals it in place (`seal_legacy_payloads`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.secret import KeyPurpose, Secret

SEALED_PREFIX = "sealed:v1:"
PIN_KEY = "pin"  # the payload key that holds a PIN, at any depth
_NONCE_BYTES = 12
_LABEL = "pinbot/outbox-pin/v1"


class PinUnreadable(Exception):
    """A sealed PIN that this key cannot open: another secret, or the row was altered."""


class PinCipher:
    """Seals and opens the PINs of outgoing work with the key derived for that purpose."""

    def __init__(self, secret: Secret) -> None:
        self._aead = AESGCM(secret.derive(KeyPurpose.PIN_ENCRYPTION))

    def seal(self, pin: str, binding: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, pin.encode(), binding)
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, token: str, binding: bytes) -> str:
        try:
            raw = base64.urlsafe_b64decode(token.removeprefix(SEALED_PREFIX))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], binding)
        except (InvalidTag, ValueError):
            raise PinUnreadable("a sealed PIN did not open with this key") from None
        return plain.decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def binding_of(dedupe_key: str, payload: dict[str, Any], path: str) -> bytes:
    """What a sealed PIN is bound to: its row, its place, and the work's destination."""
    destination = [payload.get("to_address"), payload.get("channel_id")]
    return json.dumps([_LABEL, dedupe_key, path, destination]).encode()


def _map_pins(payload: dict[str, Any], change: Callable[[str, str], str]) -> dict[str, Any]:
    """A copy of `payload` with each string under a "pin" key replaced by change(value, path)."""

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    change(item, f"{path}/{key}")
                    if key == PIN_KEY and isinstance(item, str)
                    else walk(item, f"{path}/{key}")
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item, f"{path}/{index}") for index, item in enumerate(value)]
        return value

    result: dict[str, Any] = walk(payload, "")
    return result


def pins_in(payload: dict[str, Any]) -> list[str]:
    """Every string under a "pin" key, sealed or not."""
    found: list[str] = []

    def note(value: str, _path: str) -> str:
        found.append(value)
        return value

    _map_pins(payload, note)
    return found


def has_plaintext_pins(payload: dict[str, Any]) -> bool:
    return any(not is_sealed(value) for value in pins_in(payload))


def seal_pins(payload: dict[str, Any], cipher: PinCipher, dedupe_key: str) -> dict[str, Any]:
    """The payload as it may be written: every plaintext PIN sealed, sealed ones kept."""
    return _map_pins(
        payload,
        lambda value, path: (
            value if is_sealed(value) else cipher.seal(value, binding_of(dedupe_key, payload, path))
        ),
    )


def open_pins(payload: dict[str, Any], cipher: PinCipher, dedupe_key: str) -> dict[str, Any]:
    """The payload as the performer needs it, PINs in plaintext (never written back).
    Plaintext from before sealing existed passes through: it still delivers."""
    return _map_pins(
        payload,
        lambda value, path: (
            cipher.open(value, binding_of(dedupe_key, payload, path)) if is_sealed(value) else value
        ),
    )
