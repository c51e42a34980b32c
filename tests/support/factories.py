"""Synthetic practice records for service tests (never real patient data)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from bot.text import fold, normalized_email, phone_digits
from models import Family, Guardian, IssueBatch, Patient, Pin, PinStatus, utcnow


def make_family(session: Session, account: str = "A1001") -> Family:
    family = Family(account_number=account)
    session.add(family)
    session.flush()
    return family


def make_guardian(
    session: Session,
    family: Family,
    first: str = "Dana",
    last: str = "Testwood",
    *,
    email: str | None = "dana.testwood@example.com",
    phone: str | None = "(555) 010-0001",
    relationship: str = "mother",
    has_portal_account: bool = False,
) -> Guardian:
    guardian = Guardian(
        family_id=family.id or 0,
        first_name=first,
        last_name=last,
        relationship=relationship,
        email=email,
        phone=phone,
        phone_digits=phone_digits(phone),
        match_key=normalized_email(email) or f"name:{fold(first)} {fold(last)}",
        has_portal_account=has_portal_account,
        first_key=fold(first),
        last_key=fold(last),
    )
    session.add(guardian)
    session.flush()
    return guardian


def make_patient(
    session: Session,
    family: Family,
    first: str,
    dob: date,
    *,
    last: str = "Testwood",
    chart: str | None = None,
    middle: str = "",
    name_type: str | None = None,
) -> Patient:
    patient = Patient(
        family_id=family.id or 0,
        chart_id=chart or f"C-{family.account_number}-{fold(first)}",
        first_name=first,
        middle_name=middle,
        last_name=last,
        dob=dob,
        name_type=name_type,
        first_key=fold(first),
        last_key=fold(last),
    )
    session.add(patient)
    session.flush()
    return patient


def make_pin(
    session: Session,
    patient: Patient,
    issued_at: datetime | None = None,
    *,
    expires_at: datetime | None = None,
    status: str = PinStatus.ACTIVE,
    pin_hash: str = "scrypt$test",
    lookup: str | None = None,
) -> Pin:
    """A printed PIN for the patient, in a batch of its own (a placeholder hash unless one is
    given, with its portal API lookup when given one)."""
    issued_at = issued_at or utcnow()
    batch = IssueBatch(
        family_id=patient.family_id,
        issued_by="U0STAFF",
        mode="print_only",
        idempotency_key=f"test:{patient.id}:{issued_at.isoformat()}",
    )
    session.add(batch)
    session.flush()
    row = Pin(
        patient_id=patient.id or 0,
        batch_id=batch.id or 0,
        pin_hash=pin_hash,
        lookup=lookup,
        delivery="printed",
        issued_by="U0STAFF",
        issued_at=issued_at,
        expires_at=expires_at,
        status=status,
    )
    session.add(row)
    return row
