"""`pinbot portal key create NAME | list | revoke NAME`: the portal API's clients. A new key is
printed once; only its keyed hash is stored, so a lost key is replaced, never recovered."""

from __future__ import annotations

import sys
from datetime import datetime

from bot.config import Settings
from bot.db import Database
from bot.errors import PinbotError
from bot.portal.clients import create_client, list_clients, revoke_client
from bot.secret import KeyPurpose, SecretError, load_secret
from models import utcnow


def _when(settings: Settings, moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"{moment.astimezone(settings.timezone):%Y-%m-%d %H:%M}"


def run(settings: Settings, database: Database, verb: str, name: str | None) -> int:
    try:
        secret = load_secret(settings.key_file, settings.key_override)
        lookup_key = secret.derive(KeyPurpose.API_KEY_LOOKUP)
        with database.transaction() as session:
            if verb == "create":
                key = create_client(session, name=name or "", lookup_key=lookup_key, now=utcnow())
            elif verb == "revoke":
                revoke_client(session, name=name or "", now=utcnow())
            else:
                clients = list_clients(session)
    except (PinbotError, SecretError) as error:
        print(str(error), file=sys.stderr)
        return 1
    if verb == "create":
        print(f"API key for {name} (shown once; pinbot keeps only its hash):")
        print(key)
        print("Give it to the portal as the header  Authorization: Bearer <key>")
    elif verb == "revoke":
        print(f"Revoked {name}: its key is refused from the next request on.")
    elif not clients:
        print("No API keys yet: pinbot portal key create NAME")
    else:
        print(f"{'name':<26} {'created':<17} {'last used':<17} status")
        for c in clients:
            status = f"revoked {_when(settings, c.revoked_at)}" if c.revoked_at else "active"
            print(
                f"{c.name:<26} {_when(settings, c.created_at):<17} "
                f"{_when(settings, c.last_used_at):<17} {status}"
            )
    return 0
