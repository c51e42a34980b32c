"""What staff see of a family: the data behind the family card and the Issue PINs dialog.

Plain dataclasses; the Slack rendering lives in handlers/blocks.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, select

from bot.errors import NotFound
from bot.families.names import check_name
from bot.text import mask_email, mask_phone
from models import Family, Guardian, NameFix, NameFixStatus, Patient, Pin, PinStatus, utcnow


@dataclass(frozen=True)
class GuardianRecord:
    id: int
    name: str
    relationship: str
    masked_email: str
    masked_phone: str
    has_email: bool
    has_portal_account: bool
    language: str | None = None  # ISO 639-1 ("es"); None when not known


@dataclass(frozen=True)
class ChildRecord:
    id: int
    chart_id: str
    first_name: str
    full_name: str
    dob: date
    age_label: str
    age_years: int
    pin_status: str  # none | active | registered | expired
    pin_since: date | None
    pin_expires: date | None
    name_flag: str | None  # why the name looks unofficial, None when it is fine
    pending_name_fix: bool
    ineligible_reason: str | None

    @property
    def eligible(self) -> bool:
        return self.ineligible_reason is None


@dataclass(frozen=True)
class FamilyRecord:
    id: int
    account_number: str
    surname: str
    guardians: tuple[GuardianRecord, ...]
    children: tuple[ChildRecord, ...]

    def child(self, patient_id: int) -> ChildRecord | None:
        return next((c for c in self.children if c.id == patient_id), None)

    def guardian(self, guardian_id: int) -> GuardianRecord | None:
        return next((g for g in self.guardians if g.id == guardian_id), None)

    def language_of(self, guardian_id: int | None) -> str | None:
        """The language the letters should speak: the receiving guardian's when known; with no
        receiving guardian (or one whose language is not known), the first guardian's that is."""
        chosen = self.guardian(guardian_id) if guardian_id is not None else None
        if chosen is not None and chosen.language:
            return chosen.language
        return next((g.language for g in self.guardians if g.language), None)

    @property
    def eligible_children(self) -> tuple[ChildRecord, ...]:
        return tuple(c for c in self.children if c.eligible)


def age_in_years(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def age_label(dob: date, today: date) -> str:
    years = age_in_years(dob, today)
    if years >= 2:
        return f"{years} y"
    months = (today.year - dob.year) * 12 + today.month - dob.month - (today.day < dob.day)
    if months >= 1:
        return f"{months} mo"
    return f"{max((today - dob).days, 0)} d"


def full_name(patient: Patient) -> str:
    return " ".join(p for p in (patient.first_name, patient.middle_name, patient.last_name) if p)


def name_flag(patient: Patient) -> str | None:
    """Why the child's name looks unofficial; a supervisor-verified name is never flagged."""
    if patient.name_verified:
        return None
    check = check_name(
        patient.first_name, patient.middle_name, patient.last_name, patient.name_type
    )
    return check.reason if check.flagged else None


def _pin_state(pins: Sequence[Pin]) -> tuple[str, Pin | None]:
    now = utcnow()
    for status in (PinStatus.ACTIVE, PinStatus.REGISTERED, PinStatus.EXPIRED):
        current = [p for p in pins if p.status == status]
        if current:
            pin = max(current, key=lambda p: p.issued_at)
            if status == PinStatus.ACTIVE and pin.expires_at and pin.expires_at <= now:
                return PinStatus.EXPIRED, pin
            return status, pin
    return "none", None


def _child_view(
    patient: Patient, pins: Sequence[Pin], pending: bool, *, today: date, minor_age_limit: int
) -> ChildRecord:
    state, pin = _pin_state(pins)
    flag = name_flag(patient)
    years = age_in_years(patient.dob, today)
    reason = None
    if flag:
        reason = f"unofficial name ({flag}): fix the name first"
    elif years >= minor_age_limit:
        reason = f"{years} years old: gets their own PIN, not through the family"
    return ChildRecord(
        id=patient.id or 0,
        chart_id=patient.chart_id,
        first_name=patient.first_name,
        full_name=full_name(patient),
        dob=patient.dob,
        age_label=age_label(patient.dob, today),
        age_years=years,
        pin_status=state,
        pin_since=pin.issued_at.date() if pin else None,
        pin_expires=pin.expires_at.date() if pin and pin.expires_at else None,
        name_flag=flag,
        pending_name_fix=pending,
        ineligible_reason=reason,
    )


def _guardian_view(guardian: Guardian) -> GuardianRecord:
    return GuardianRecord(
        id=guardian.id or 0,
        name=f"{guardian.first_name} {guardian.last_name}".strip(),
        relationship=guardian.relationship,
        masked_email=mask_email(guardian.email),
        masked_phone=mask_phone(guardian.phone),
        has_email=bool(guardian.email),
        has_portal_account=guardian.has_portal_account,
        language=guardian.language,
    )


def load_family(
    session: Session, family_id: int, *, today: date, minor_age_limit: int
) -> FamilyRecord:
    family = session.get(Family, family_id)
    if family is None:
        raise NotFound("That family is no longer in pinbot. Search again with /family.")
    patients = session.exec(
        select(Patient)
        .where(Patient.family_id == family_id)
        .order_by(col(Patient.dob), col(Patient.id))
    ).all()
    guardians = session.exec(
        select(Guardian).where(Guardian.family_id == family_id).order_by(col(Guardian.id))
    ).all()
    ids = [p.id for p in patients]
    pins = session.exec(select(Pin).where(col(Pin.patient_id).in_(ids))).all() if ids else []
    pending = set(
        session.exec(
            select(NameFix.patient_id).where(
                col(NameFix.patient_id).in_(ids), NameFix.status == NameFixStatus.PENDING
            )
        ).all()
    )
    children = tuple(
        _child_view(
            p,
            [pin for pin in pins if pin.patient_id == p.id],
            p.id in pending,
            today=today,
            minor_age_limit=minor_age_limit,
        )
        for p in patients
    )
    surnames = dict.fromkeys(p.last_name for p in patients) or dict.fromkeys(
        g.last_name for g in guardians
    )
    return FamilyRecord(
        id=family_id,
        account_number=family.account_number,
        surname=" / ".join(surnames) or family.account_number,
        guardians=tuple(_guardian_view(g) for g in guardians),
        children=children,
    )
