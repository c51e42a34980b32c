"""The one secret pinbot keeps outside its database (SPEC §12), and the keys derived from it.

A copy of the database alone must not let anyone test PINs faster than scrypt allows, nor read
a PIN waiting in undelivered work: both need a key that lives only in PINBOT_KEY_FILE (or
PINBOT_KEY). Each use gets its own key, derived with HKDF-SHA256 under a purpose label, so a
key leaked from one use says nothing about another and one secret is all there is to back up.

The key file holds 32 random bytes as URL-safe base64 on one line. It is created at first start
with mode 0600 whatever the umask, and a file that others can read is refused.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32
# PINBOT_KEY may be any string this long or longer (a password manager's output, say).
MIN_OVERRIDE_CHARS = 32
OWNER_ONLY = 0o600


class KeyPurpose(StrEnum):
    """One derived key per use; the label is part of the derivation, so never rename one."""

    PIN_LOOKUP = "pin-lookup"
    PIN_ENCRYPTION = "pin-encryption"
    API_KEY_LOOKUP = "api-key-lookup"


class SecretError(Exception):
    """The secret cannot be read or is kept unsafely; the message says what to do."""


@dataclass(frozen=True)
class Secret:
    material: bytes = field(repr=False)
    # Where it came from, for `pinbot check`: a file path or "PINBOT_KEY".
    source: str

    def derive(self, purpose: KeyPurpose, length: int = 32) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=b"pinbot/" + purpose.value.encode(),
        ).derive(self.material)

    @classmethod
    def ephemeral(cls) -> Secret:
        """A throwaway secret for tests and the in-memory demo; never for a real practice."""
        return cls(material=secrets.token_bytes(SECRET_BYTES), source="(ephemeral)")


def others_can_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_owner_only(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) readable and writable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    try:
        os.fchmod(descriptor, OWNER_ONLY)  # the umask can only remove bits; make it exact
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def create_owner_only(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist yet, whatever the umask (the SQLite
    database before SQLite opens it, a backup before it is written); an existing file is
    left as it is."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, OWNER_ONLY)
    finally:
        os.close(descriptor)


def create_key_file(path: Path) -> None:
    """Write a new key beside `path`, then link it into place: two processes starting at once
    both end up reading the one key that won, never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    write_owner_only(draft, base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)) + b"\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        draft.unlink()


def read_key_file(path: Path) -> Secret:
    if others_can_read(path):
        raise SecretError(
            f"PINBOT_KEY_FILE {path} can be read by other users; run `chmod 600 {path}`."
        )
    try:
        material = base64.urlsafe_b64decode(path.read_bytes().strip())
    except (binascii.Error, ValueError) as error:
        raise SecretError(f"PINBOT_KEY_FILE {path} is not a pinbot key file.") from error
    if len(material) != SECRET_BYTES:
        raise SecretError(f"PINBOT_KEY_FILE {path} is not a pinbot key file.")
    return Secret(material=material, source=str(path))


def load_secret(key_file: Path, override: str | None, *, create: bool = True) -> Secret:
    """PINBOT_KEY when set, else the key file (created at first start when `create`)."""
    if override:
        if len(override) < MIN_OVERRIDE_CHARS:
            raise SecretError(f"PINBOT_KEY must be at least {MIN_OVERRIDE_CHARS} characters.")
        return Secret(material=override.encode(), source="PINBOT_KEY")
    if not key_file.exists():
        if not create:
            raise SecretError(
                f"PINBOT_KEY_FILE {key_file} does not exist; `pinbot run` creates it."
            )
        create_key_file(key_file)
    return read_key_file(key_file)
