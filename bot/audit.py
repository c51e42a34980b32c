"""Audit trail: every lookup, issuance, decision and refusal, by id. Never a PIN or a name
unless the event is itself a name change (whose old and new names are the record)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from bot.db import table_of
from models import AuditEvent, utcnow

INSERT = insert(table_of(AuditEvent))  # built once: every lookup and feed message writes one


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    family_id: int | None = None,
    patient_id: int | None = None,
    **details: Any,
) -> None:
    """Insert the event now, in the session's transaction: a plain INSERT, not an object for
    the unit of work to flush at commit (on the feed's and /family's hot paths)."""
    session.connection().execute(  # Core, not the ORM's execute: same transaction, less work
        INSERT,
        row(actor=actor, action=action, family_id=family_id, patient_id=patient_id, **details),
    )


def row(
    *,
    actor: str,
    action: str,
    family_id: int | None = None,
    patient_id: int | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The event's columns, as `record` inserts them (for a statement that inserts it along
    with other work: bot/portal/failures.py)."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "family_id": family_id,
        "patient_id": patient_id,
        "details": json.dumps(details, default=str, sort_keys=True),
    }
