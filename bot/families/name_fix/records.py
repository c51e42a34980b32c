"""The name-fix vocabulary: how a name was confirmed, the dialog's fields, the decisions,
and the plain records the Slack adapter renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from bot.families.record import full_name
from models import NameFix, NameFixStatus, Patient

NAME_LIMIT = 100
NOTE_LIMIT = 500
IMPORT_ACTOR = "import"  # decided_by of a request an import closed


class ConfirmedBy(StrEnum):
    BIRTH_CERTIFICATE = "birth_certificate"
    PARENT_IN_PERSON = "parent_in_person"
    HOSPITAL_RECORD = "hospital_record"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class NameFixField(StrEnum):
    """Dialog fields a validation error can point at (mapped to block ids by the handler)."""

    FIRST = "first"
    MIDDLE = "middle"
    LAST = "last"
    CONFIRMED_BY = "confirmed_by"
    NOTE = "note"
    REASON = "reason"


class Decision(StrEnum):
    APPROVE = "approve"
    CONFIRM = "confirm"  # the flagged name on file is the child's real name
    REJECT = "reject"


STATUS_OF = {
    Decision.APPROVE: NameFixStatus.APPROVED,
    Decision.CONFIRM: NameFixStatus.CONFIRMED,
    Decision.REJECT: NameFixStatus.REJECTED,
}
DONE_AS: dict[str, str] = {
    NameFixStatus.APPROVED: "approved",
    NameFixStatus.CONFIRMED: "confirmed as the real name",
    NameFixStatus.REJECTED: "rejected",
}


@dataclass(frozen=True)
class FixableChild:
    """What the request dialog shows about the child."""

    family_id: int
    patient_id: int
    full_name: str
    middle_name: str
    last_name: str
    dob: date
    flag_reason: str


@dataclass(frozen=True)
class NameFixRequest:
    family_id: int
    patient_id: int
    first: str
    middle: str
    last: str
    confirmed_by: str
    note: str
    requested_by: str
    channel_id: str | None
    thread_ts: str | None


@dataclass(frozen=True)
class NameFixRecord:
    id: int
    family_id: int
    patient_id: int
    name_on_file: str  # before the decision: an approval's "old name"
    dob: date
    proposed_name: str
    confirmed_by: str  # label
    note: str
    requested_by: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    channel_id: str | None
    thread_ts: str | None
    message_ts: str | None

    @property
    def renames(self) -> bool:
        return self.proposed_name != self.name_on_file


def _joined(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _confirmed_label(value: str) -> str:
    return ConfirmedBy(value).label if value in set(ConfirmedBy) else value


def record_of(fix: NameFix, patient: Patient, *, name_on_file: str | None = None) -> NameFixRecord:
    return NameFixRecord(
        id=fix.id or 0,
        family_id=fix.family_id,
        patient_id=fix.patient_id,
        name_on_file=name_on_file or full_name(patient),
        dob=patient.dob,
        proposed_name=_joined(fix.proposed_first, fix.proposed_middle, fix.proposed_last),
        confirmed_by=_confirmed_label(fix.confirmed_by),
        note=fix.note,
        requested_by=fix.requested_by,
        status=fix.status,
        decided_by=fix.decided_by,
        decided_at=fix.decided_at,
        decision_note=fix.decision_note,
        channel_id=fix.channel_id,
        thread_ts=fix.thread_ts,
        message_ts=fix.message_ts,
    )
