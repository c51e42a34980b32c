"""Lists staff ask for: today's appointments that need attention, pending name fixes.
Shared by /pinbot and the reminder digest."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot.families.record import NOT_MERGED, full_name, name_flag
from models import (
    Appointment,
    AppointmentStatus,
    Family,
    NameFix,
    NameFixStatus,
    Patient,
    Pin,
    PinStatus,
)


@dataclass(frozen=True)
class AttentionItem:
    patient_id: int
    family_id: int
    child_name: str
    account_number: str
    starts_at: datetime
    needs: str  # what the front desk should do
    no_access: bool = False  # no active or registered PIN (set by todays_attention)


@dataclass(frozen=True)
class PendingFix:
    name_fix_id: int
    family_id: int
    child_name: str
    proposed_name: str
    requested_by: str
    requested_at: datetime
    channel_id: str | None
    thread_ts: str | None
    message_ts: str | None  # the request message itself, inside the family thread
    last_nudged_on: str | None = None  # the local date (ISO) supervisors were last nudged


def patients_with_portal_access(session: Session, patient_ids: list[int]) -> set[int]:
    if not patient_ids:
        return set()
    rows = session.exec(
        select(Pin.patient_id).where(
            col(Pin.patient_id).in_(patient_ids),
            col(Pin.status).in_([PinStatus.ACTIVE, PinStatus.REGISTERED]),
        )
    ).all()
    return set(rows)


def appointments_between(
    session: Session, start: datetime, end: datetime
) -> list[tuple[Appointment, Patient, Family]]:
    return list(
        session.exec(
            select(Appointment, Patient, Family)
            .join(Patient, col(Appointment.patient_id) == col(Patient.id))
            .join(Family, col(Patient.family_id) == col(Family.id))
            .where(
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
                # Cancelled, deleted and no-show visits (SIU S15/S17/S26) are not coming.
                Appointment.status == AppointmentStatus.BOOKED,
                NOT_MERGED,
            )
            .order_by(col(Appointment.starts_at))
        ).all()
    )


def todays_attention(session: Session, today: date) -> list[AttentionItem]:
    """Today's patients (one line each, at their first visit) with no portal access or an
    unofficial name. Those without access are exactly what the Home tab and the digest count
    as "appointments today without portal access" (`appointments_without_access`)."""
    start = datetime.combine(today, time.min)
    rows = _first_visit_per_patient(appointments_between(session, start, start + timedelta(days=1)))
    with_access = patients_with_portal_access(session, [p.id for _, p, _ in rows if p.id])
    items = []
    for appointment, patient, family in rows:
        flag = name_flag(patient)
        needs = [f"unofficial name ({flag}): request a name fix"] if flag else []
        if patient.id not in with_access:
            needs.append("no portal access: issue PINs")
        if needs:
            item = _attention_item(appointment, patient, family, "; ".join(needs))
            items.append(replace(item, no_access=patient.id not in with_access))
    return items


def pending_name_fixes(session: Session, *, older_than: datetime | None = None) -> list[PendingFix]:
    query = (
        select(NameFix, Patient)
        .join(Patient, col(NameFix.patient_id) == col(Patient.id))
        .where(NameFix.status == NameFixStatus.PENDING, NOT_MERGED)
        .order_by(col(NameFix.requested_at))
    )
    if older_than is not None:
        query = query.where(NameFix.requested_at < older_than)
    return [
        PendingFix(
            name_fix_id=fix.id or 0,
            family_id=fix.family_id,
            child_name=full_name(patient),
            proposed_name=" ".join(
                p for p in (fix.proposed_first, fix.proposed_middle, fix.proposed_last) if p
            ),
            requested_by=fix.requested_by,
            requested_at=fix.requested_at,
            channel_id=fix.channel_id,
            thread_ts=fix.thread_ts,
            message_ts=fix.message_ts,
            last_nudged_on=fix.last_nudged_on,
        )
        for fix, patient in session.exec(query).all()
    ]


# Queries behind the reminder digest (sweep.py). Times in, rows out: the digest decides
# what the windows are and how entries read.


@dataclass(frozen=True)
class PinItem:
    pin_id: int
    patient_id: int
    family_id: int
    child_name: str
    account_number: str
    issued_at: datetime
    expires_at: datetime | None


def account_numbers(session: Session, family_ids: list[int]) -> dict[int, str]:
    if not family_ids:
        return {}
    rows = session.exec(
        select(Family.id, Family.account_number).where(col(Family.id).in_(family_ids))
    ).all()
    return {family_id: account for family_id, account in rows if family_id is not None}


def _first_visit_per_patient(
    rows: list[tuple[Appointment, Patient, Family]],
) -> list[tuple[Appointment, Patient, Family]]:
    """One entry per child: their earliest appointment (rows come sorted by time)."""
    seen: set[int | None] = set()
    first = []
    for row in rows:
        if row[1].id not in seen:
            seen.add(row[1].id)
            first.append(row)
    return first


def _attention_item(
    appointment: Appointment, patient: Patient, family: Family, needs: str
) -> AttentionItem:
    return AttentionItem(
        patient_id=patient.id or 0,
        family_id=family.id or 0,
        child_name=full_name(patient),
        account_number=family.account_number,
        starts_at=appointment.starts_at,
        needs=needs,
    )


def unofficial_names_between(
    session: Session, start: datetime, end: datetime
) -> list[AttentionItem]:
    """Children with an unofficial name and an appointment in [start, end) (local times).
    `needs` is the name flag's reason."""
    rows = _first_visit_per_patient(appointments_between(session, start, end))
    return [
        _attention_item(a, p, f, flag) for a, p, f in rows if (flag := name_flag(p)) is not None
    ]


def appointments_without_access(
    session: Session, start: datetime, end: datetime
) -> list[AttentionItem]:
    """Appointments in [start, end) whose patient has no active or registered PIN. `needs` is
    the name flag's reason when the name is unofficial too, else ""."""
    rows = _first_visit_per_patient(appointments_between(session, start, end))
    with_access = patients_with_portal_access(session, [p.id for _, p, _ in rows if p.id])
    return [
        _attention_item(a, p, f, name_flag(p) or "") for a, p, f in rows if p.id not in with_access
    ]


def pending_fix_patients(session: Session) -> set[int]:
    return set(
        session.exec(
            select(NameFix.patient_id).where(NameFix.status == NameFixStatus.PENDING)
        ).all()
    )


def _pin_items(session: Session, conditions: list[Any], order: Any) -> list[PinItem]:
    rows = session.exec(
        select(Pin, Patient, Family)
        .join(Patient, col(Pin.patient_id) == col(Patient.id))
        .join(Family, col(Patient.family_id) == col(Family.id))
        .where(Pin.status == PinStatus.ACTIVE, NOT_MERGED, *conditions)
        .order_by(order, col(Pin.id))
    ).all()
    return [
        PinItem(
            pin_id=pin.id or 0,
            patient_id=patient.id or 0,
            family_id=family.id or 0,
            child_name=full_name(patient),
            account_number=family.account_number,
            issued_at=pin.issued_at,
            expires_at=pin.expires_at,
        )
        for pin, patient, family in rows
    ]


def active_pins_issued_before(session: Session, cutoff: datetime) -> list[PinItem]:
    """Active (so not registered) PINs issued before `cutoff`."""
    return _pin_items(session, [col(Pin.issued_at) < cutoff], col(Pin.issued_at))


def active_pins_expiring_between(session: Session, start: datetime, end: datetime) -> list[PinItem]:
    """Active PINs whose expiry falls in (start, end], soonest first."""
    return _pin_items(
        session,
        [col(Pin.expires_at).is_not(None), col(Pin.expires_at) > start, col(Pin.expires_at) <= end],
        col(Pin.expires_at),
    )
