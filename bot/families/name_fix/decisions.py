"""Deciding a name fix in the thread, and closing it when the EHR brings the real name.

A decision claims the request with a conditional UPDATE ... WHERE status = 'pending', so when
two supervisors click at the same moment (on any replica) exactly one decision is recorded and
the other learns who won. A refused click changes nothing; record_refusal audits it in its own
transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot import audit
from bot.db import rows_changed
from bot.delivery import keys, outbox
from bot.delivery.notices import NameFixClosedByImport
from bot.errors import AlreadyDecided, NotAllowed, NotFound, ValidationFailed
from bot.families.name_fix.records import (
    DONE_AS,
    IMPORT_ACTOR,
    NOTE_LIMIT,
    STATUS_OF,
    Decision,
    NameFixField,
    NameFixRecord,
    record_of,
)
from bot.families.record import full_name, name_flag
from bot.text import clean, fold
from models import NameFix, NameFixStatus, Patient, utcnow

# --------------------------------------------------------------------------- deciding


def _already(status: str, decided_by: str | None) -> AlreadyDecided:
    if status == NameFixStatus.CLOSED:
        return AlreadyDecided(
            "This name fix is already closed: the EHR import brought the "
            "child's real name, or the request could not be posted."
        )
    done_as = DONE_AS.get(status, status)
    return AlreadyDecided(f"This name fix was already {done_as}.", decided_by=decided_by)


def _checked(
    session: Session,
    *,
    name_fix_id: int,
    user_id: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
) -> tuple[NameFix, Patient]:
    found = session.exec(
        select(NameFix, Patient).join(Patient).where(NameFix.id == name_fix_id)
    ).first()
    if found is None:
        raise NotFound("That name-fix request is no longer in pinbot.")
    fix, patient = found
    if fix.message_ts and (fix.channel_id, fix.message_ts) != (channel_id, message_ts):
        raise NotAllowed("That button doesn't belong to this name-fix request.")
    # A decided request says so to anyone: who decided is more useful than who may.
    if fix.status != NameFixStatus.PENDING:
        raise _already(fix.status, fix.decided_by)
    if user_id == fix.requested_by:
        raise NotAllowed(
            "You asked for this name fix, so someone else decides it: another supervisor."
        )
    if not is_supervisor:
        raise NotAllowed(
            "Only a supervisor can decide a name fix; the supervisors are mentioned in the request."
        )
    return fix, patient


def check_decider(
    session: Session,
    *,
    name_fix_id: int,
    user_id: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
) -> NameFixRecord:
    """Whether this user may decide this pending request now (before a reason dialog)."""
    fix, patient = _checked(
        session,
        name_fix_id=name_fix_id,
        user_id=user_id,
        is_supervisor=is_supervisor,
        channel_id=channel_id,
        message_ts=message_ts,
    )
    return record_of(fix, patient)


def _claim(
    session: Session,
    name_fix_id: int,
    *,
    status: str,
    decided_by: str,
    decided_at: datetime,
    note: str,
) -> bool:
    """First decision wins: only a still-pending row changes, whatever another transaction
    read before (a read-then-write would let two supervisors both win)."""
    claimed = rows_changed(
        session.execute(
            update(NameFix)
            .where(col(NameFix.id) == name_fix_id, col(NameFix.status) == NameFixStatus.PENDING)
            .values(status=status, decided_by=decided_by, decided_at=decided_at, decision_note=note)
        )
    )
    return claimed == 1


def _winner(session: Session, name_fix_id: int) -> AlreadyDecided:
    status, decided_by = session.exec(
        select(NameFix.status, NameFix.decided_by).where(NameFix.id == name_fix_id)
    ).one()
    return _already(status, decided_by)


def _reason(raw: str) -> str:
    reason = clean(raw, limit=10 * NOTE_LIMIT)
    if not reason:
        raise ValidationFailed({NameFixField.REASON: "Say why the name fix is rejected."})
    if len(reason) > NOTE_LIMIT:
        raise ValidationFailed({NameFixField.REASON: f"At most {NOTE_LIMIT} characters."})
    return reason


def _rename(patient: Patient, fix: NameFix, now: datetime) -> None:
    patient.first_name, patient.middle_name = fix.proposed_first, fix.proposed_middle
    patient.last_name = fix.proposed_last
    patient.first_key, patient.last_key = fold(fix.proposed_first), fold(fix.proposed_last)
    patient.updated_at = now


def decide(
    session: Session,
    *,
    name_fix_id: int,
    decision: Decision,
    decided_by: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
    reason: str = "",
    now: datetime | None = None,
) -> NameFixRecord:
    """Approve (rename + verify), confirm the name on file (verify), or reject (with a
    reason). Raises NotAllowed / AlreadyDecided and changes nothing when refused."""
    fix, patient = _checked(
        session,
        name_fix_id=name_fix_id,
        user_id=decided_by,
        is_supervisor=is_supervisor,
        channel_id=channel_id,
        message_ts=message_ts,
    )
    note = _reason(reason) if decision == Decision.REJECT else ""
    now = now or utcnow()
    if not _claim(
        session,
        name_fix_id,
        status=STATUS_OF[decision],
        decided_by=decided_by,
        decided_at=now,
        note=note,
    ):
        raise _winner(session, name_fix_id)
    old_name = full_name(patient)
    if decision == Decision.APPROVE:
        _rename(patient, fix, now)
    if decision != Decision.REJECT:
        patient.name_verified = True
    # Names belong in this event: the old and new name are what the audit must show.
    audit.record(
        session,
        actor=decided_by,
        action=f"name_fix.{STATUS_OF[decision]}",
        family_id=fix.family_id,
        patient_id=fix.patient_id,
        name_fix_id=fix.id,
        old_name=old_name,
        new_name=full_name(patient),
        reason=note or None,
    )
    session.flush()
    session.refresh(fix)
    return record_of(fix, patient, name_on_file=old_name)


def record_refusal(session: Session, *, name_fix_id: int, user_id: str, why: str) -> None:
    family_id = session.exec(select(NameFix.family_id).where(NameFix.id == name_fix_id)).first()
    audit.record(
        session,
        actor=user_id,
        action="name_fix.refused",
        family_id=family_id,
        name_fix_id=name_fix_id,
        why=why,
    )


# --------------------------------------------------------------------------- imports


def close_resolved(
    session: Session, renamed_patient_ids: Iterable[int], *, actor: str = IMPORT_ACTOR
) -> list[int]:
    """After a families import: close the pending requests of children the import renamed to
    a name that no longer looks unofficial, with a note in the request's thread (queued, so it
    goes out after commit). Returns the closed request ids."""
    renamed = set(renamed_patient_ids)
    # Pending requests are few; filtering them here avoids an IN list of every renamed chart.
    pending = session.exec(
        select(NameFix, Patient).join(Patient).where(NameFix.status == NameFixStatus.PENDING)
    ).all()
    closed = []
    for fix, patient in pending:
        if patient.id not in renamed or name_flag(patient) is not None:
            continue
        name = full_name(patient)
        if not _claim(
            session,
            fix.id or 0,
            status=NameFixStatus.CLOSED,
            decided_by=IMPORT_ACTOR,
            decided_at=utcnow(),
            note=f"the EHR import brought the name {name}",
        ):
            continue
        outbox.post_in_thread(
            session,
            dedupe_key=keys.name_fix_closed(fix.id or 0),
            channel_id=fix.channel_id,
            thread_ts=fix.thread_ts,
            family_id=fix.family_id,
            notice=NameFixClosedByImport(name=name, requested_by=fix.requested_by),
        )
        audit.record(
            session,
            actor=actor,
            action="name_fix.closed",
            family_id=fix.family_id,
            patient_id=fix.patient_id,
            name_fix_id=fix.id,
            new_name=name,
        )
        closed.append(fix.id or 0)
    return closed
