"""Audit trail: every lookup, issuance, decision and refusal, by id. Never a PIN or a name
unless the event is itself a name change (whose old and new names are the record)."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    family_id: int | None = None,
    patient_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        family_id=family_id,
        patient_id=patient_id,
        details=json.dumps(details, default=str, sort_keys=True),
    )
    session.add(event)
    return event
