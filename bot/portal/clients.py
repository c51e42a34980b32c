"""API clients (SPEC §11): `pinbot portal key create NAME` prints a new key once; only its
HMAC under the secret's API_KEY_LOOKUP key is kept, so neither the database nor a backup holds
a usable key. Every request looks its key up again, so a revocation holds from the next
request on, on every replica."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, or_, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from bot import audit
from bot.db import table_of
from bot.errors import PinbotError
from bot.portal.answers import Client
from models import PortalClient

KEY_PREFIX = "pinbot_"
# The audit actor is "portal:NAME" and actors are at most 32 characters.
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,24}$")
# last_used_at is written at most this often per client (not one write per request).
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class ClientInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def key_hash(lookup_key: bytes, key: str) -> str:
    return hmac.new(lookup_key, key.encode(), hashlib.sha256).hexdigest()


def create_client(session: Session, *, name: str, lookup_key: bytes, now: datetime) -> str:
    """A new client's key (shown once). A revoked client's name can be reused: that is how a
    key is rotated by name; a live one must be revoked first."""
    if not CLIENT_NAME.match(name):
        raise PinbotError(
            "A key name is 1 to 25 letters, digits, dots, dashes or underscores, such as "
            "portal or portal-2025."
        )
    existing = session.exec(select(PortalClient).where(PortalClient.name == name)).first()
    if existing is not None and existing.revoked_at is None:
        raise PinbotError(
            f"A key named {name} already exists. Create the new one under another name "
            f"(portal-2), switch the portal over, then `pinbot portal key revoke {name}`."
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(PortalClient(name=name, key_hash=key_hash(lookup_key, key), created_at=now))
    audit.record(session, actor="cli", action="portal.key_created", client=name)
    return key


def list_clients(session: Session) -> list[ClientInfo]:
    rows = session.exec(select(PortalClient).order_by(col(PortalClient.name))).all()
    return [ClientInfo(r.name, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def revoke_client(session: Session, *, name: str, now: datetime) -> None:
    client = session.exec(select(PortalClient).where(PortalClient.name == name)).first()
    if client is None:
        raise PinbotError(f"No key named {name}; `pinbot portal key list` shows them.")
    if client.revoked_at is None:
        client.revoked_at = now
        audit.record(session, actor="cli", action="portal.key_revoked", client=name)


# Built once: every request runs the first, every attempt the second.
_CLIENTS = table_of(PortalClient)
_BY_KEY = core_select(_CLIENTS.c.id, _CLIENTS.c.name, _CLIENTS.c.last_used_at).where(
    col(PortalClient.key_hash) == bindparam("key_hash"), col(PortalClient.revoked_at).is_(None)
)
_MARK_USED = (
    update(_CLIENTS)
    .where(
        col(PortalClient.id) == bindparam("client_id"),
        or_(
            col(PortalClient.last_used_at).is_(None),
            col(PortalClient.last_used_at) < bindparam("stale_before"),
        ),
    )
    .values(last_used_at=bindparam("now"))
)


def by_key() -> Select[*tuple[Any, ...]]:
    """The live client whose key hashes to the parameter `key_hash`: its id, name and last
    use (`client_of` reads them), for a statement that asks more in the same trip."""
    return _BY_KEY


def client_of(row: Sequence[Any]) -> Client:
    return Client(id=row[0], name=row[1], last_used_at=row[2])


def authenticate(
    connection: Connection, *, lookup_key: bytes, presented: str | None
) -> Client | None:
    if not presented:
        return None
    row = connection.execute(_BY_KEY, {"key_hash": key_hash(lookup_key, presented)}).first()
    return client_of(row) if row else None


def mark_used(session: Session, client: Client, now: datetime) -> None:
    """Record the use when the recorded one is over LAST_USED_PRECISION old: most requests
    send no statement (the conditional UPDATE keeps replicas from writing it twice)."""
    last = client.last_used_at
    if last is not None and (last if last.tzinfo else last.replace(tzinfo=UTC)) > (
        now - LAST_USED_PRECISION
    ):
        return
    session.connection().execute(
        _MARK_USED,
        {"client_id": client.id, "stale_before": now - LAST_USED_PRECISION, "now": now},
    )
