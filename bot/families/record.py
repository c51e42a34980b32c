"""What staff see of a family: the data behind the family card and the Issue PINs dialog.

Plain dataclasses; the Slack rendering lives in handlers/blocks.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Select,
    bindparam,
    cast,
    exists,
    literal_column,
    null,
    union_all,
)
from sqlalchemy import select as core_select
from sqlmodel import Session, col

from bot.clock import last_valid_day, local_date
from bot.errors import NotFound
from bot.families.names import check_name
from bot.text import mask_email, mask_phone
from models import Family, Guardian, NameFix, NameFixStatus, Patient, Pin, PinStatus, utcnow

# A chart merged away (HL7 A40) is gone for staff: no card, list or count shows it as a child
# of its own (the survivor has its visits and name fixes). The one definition:
# the card, the work lists, the digest and the Home tab's counts all filter with it.
NOT_MERGED = col(Patient.merged_into_id).is_(None)


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
    pin_status: str  # none | active | registered | locked | expired
    pin_since: date | None
    pin_expires: date | None
    name_flag: str | None  # why the name looks unofficial, None when it is fine
    pending_name_fix: bool
    ineligible_reason: str | None
    # When the PIN became registered or locked (its status's date), None otherwise.
    pin_changed: date | None = None

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


class PatientName(Protocol):
    """What naming a child takes: a `Patient`, or a row of its columns."""

    @property
    def first_name(self) -> str: ...
    @property
    def middle_name(self) -> str: ...
    @property
    def last_name(self) -> str: ...
    @property
    def name_type(self) -> str | None: ...
    @property
    def name_verified(self) -> bool: ...


def full_name(patient: PatientName) -> str:
    return " ".join(p for p in (patient.first_name, patient.middle_name, patient.last_name) if p)


def name_flag(patient: PatientName) -> str | None:
    """Why the child's name looks unofficial; a supervisor-verified name is never flagged."""
    if patient.name_verified:
        return None
    check = check_name(
        patient.first_name, patient.middle_name, patient.last_name, patient.name_type
    )
    return check.reason if check.flagged else None


class _ChildRow(NamedTuple):
    id: int | None  # never None: a family without children has no child rows
    chart_id: str
    first_name: str
    middle_name: str
    last_name: str
    dob: date
    name_type: str | None
    name_verified: bool


class _GuardianRow(NamedTuple):
    id: int | None
    first_name: str
    last_name: str
    relationship: str
    email: str | None
    phone: str | None
    has_portal_account: bool
    language: str | None


class _PinRow(NamedTuple):
    patient_id: int
    status: str
    issued_at: datetime
    expires_at: datetime | None
    changed_at: datetime | None = None


def _pin_state(pins: Sequence[_PinRow]) -> tuple[str, _PinRow | None]:
    now = utcnow()
    for status in (PinStatus.ACTIVE, PinStatus.REGISTERED, PinStatus.LOCKED, PinStatus.EXPIRED):
        current = [p for p in pins if p.status == status]
        if current:
            pin = max(current, key=lambda p: p.issued_at)
            if status == PinStatus.ACTIVE and pin.expires_at and pin.expires_at <= now:
                return PinStatus.EXPIRED, pin
            return status, pin
    return "none", None


def _child_view(
    patient: _ChildRow,
    pins: Sequence[_PinRow],
    pending: bool,
    *,
    today: date,
    zone: tzinfo,
    minor_age_limit: int,
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
        pin_since=local_date(pin.issued_at, zone) if pin else None,
        pin_expires=last_valid_day(pin.expires_at, zone) if pin and pin.expires_at else None,
        pin_changed=local_date(pin.changed_at, zone) if pin and pin.changed_at else None,
        name_flag=flag,
        pending_name_fix=pending,
        ineligible_reason=reason,
    )


def _guardian_view(
    id: int | None,
    first_name: str,
    last_name: str,
    relationship: str,
    email: str | None,
    phone: str | None,
    has_portal_account: bool,
    language: str | None,
) -> GuardianRecord:
    return GuardianRecord(
        id=id or 0,
        name=f"{first_name} {last_name}".strip(),
        relationship=relationship,
        masked_email=mask_email(email),
        masked_phone=mask_phone(phone),
        has_email=bool(email),
        has_portal_account=has_portal_account,
        language=language,
    )


# The family card's one statement, built once (building a statement costs more than running
# it: see bot/lookup/search.py) and run on the session's connection without the ORM layer: the
# family with its children, each child once per PIN (or once, without), and whether a name
# fix is pending for it; then, in the same columns, its guardians. One round trip (there were
# five, then two).
_PENDING_FIX = (
    exists()
    .where(
        col(NameFix.patient_id) == col(Patient.id),
        col(NameFix.status) == NameFixStatus.PENDING,
    )
    .label("pending_fix")
)
_CHILDREN_PART, _GUARDIANS_PART = 0, 1
_FAMILY_CHILDREN_PINS: Select[*tuple[Any, ...]] = (
    core_select(
        literal_column(str(_CHILDREN_PART)).label("part"),
        col(Family.account_number).label("account_number"),
        col(Patient.id).label("id"),
        col(Patient.chart_id).label("c1"),
        col(Patient.first_name).label("c2"),
        col(Patient.middle_name).label("c3"),
        col(Patient.last_name).label("c4"),
        col(Patient.dob).label("dob"),
        col(Patient.name_type).label("c5"),
        col(Patient.name_verified).label("c6"),
        col(Pin.status).label("c7"),
        col(Pin.issued_at).label("issued_at"),
        col(Pin.expires_at).label("expires_at"),
        _PENDING_FIX,
        col(Pin.id).label("pin_id"),
        col(Pin.status_changed_at).label("changed_at"),
    )
    .select_from(Family)
    .outerjoin(Patient, (col(Patient.family_id) == col(Family.id)) & NOT_MERGED)
    .outerjoin(Pin, col(Pin.patient_id) == col(Patient.id))
    .where(col(Family.id) == bindparam("family_id"))
)
_GUARDIANS: Select[*tuple[Any, ...]] = core_select(
    literal_column(str(_GUARDIANS_PART)),
    null(),
    col(Guardian.id),
    col(Guardian.first_name),
    col(Guardian.last_name),
    col(Guardian.relationship),
    col(Guardian.email),
    cast(null(), Date),
    col(Guardian.phone),
    col(Guardian.has_portal_account),
    col(Guardian.language),
    cast(null(), DateTime),
    cast(null(), DateTime),
    cast(null(), Boolean),
    null(),
    cast(null(), DateTime),
).where(col(Guardian.family_id) == bindparam("family_id"))
_FAMILY = union_all(_FAMILY_CHILDREN_PINS, _GUARDIANS).order_by(
    literal_column("part"), literal_column("dob"), literal_column("id"), literal_column("pin_id")
)


def load_family(
    session: Session, family_id: int, *, today: date, zone: tzinfo, minor_age_limit: int
) -> FamilyRecord:
    """The family as staff see it; `today` and `zone` are the practice's (PRACTICE_TIMEZONE):
    every date on the card is a local date."""
    session.flush()  # what this transaction wrote so far is part of the family (no-op if none)
    rows = session.connection().execute(_FAMILY, {"family_id": family_id}).all()
    family_rows = [row for row in rows if row[0] == _CHILDREN_PART]
    if not family_rows:
        raise NotFound("That family is no longer in pinbot. Search again with /family.")
    account_number = family_rows[0][1]
    by_id: dict[int, _ChildRow] = {}  # in the statement's order: by date of birth
    pins: dict[int, list[_PinRow]] = {}
    pending: set[int] = set()
    for row in family_rows:
        patient_id = row[2]
        if patient_id is None:  # a family with no children: one row of NULLs
            continue
        if patient_id not in by_id:
            by_id[patient_id] = _ChildRow(*row[2:10])
        if row[10] is not None:
            pin = _PinRow(patient_id, row[10], row[11], row[12], row[15])
            pins.setdefault(patient_id, []).append(pin)
        if row[13]:
            pending.add(patient_id)
    patients = list(by_id.values())
    # A guardian's row: id, first and last name, relationship, email, -, phone, portal account,
    # language (the columns the children's rows use for theirs).
    guardians = [
        _GuardianRow(row[2], row[3], row[4], row[5], row[6], row[8], bool(row[9]), row[10])
        for row in rows
        if row[0] == _GUARDIANS_PART
    ]
    children = tuple(
        _child_view(
            p,
            pins.get(p.id or 0, []),
            p.id in pending,
            today=today,
            zone=zone,
            minor_age_limit=minor_age_limit,
        )
        for p in patients
    )
    surnames = dict.fromkeys(p.last_name for p in patients) or dict.fromkeys(
        g.last_name for g in guardians
    )
    return FamilyRecord(
        id=family_id,
        account_number=account_number,
        surname=" / ".join(surnames) or account_number,
        guardians=tuple(_guardian_view(*g) for g in guardians),
        children=children,
    )
