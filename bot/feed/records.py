"""What one feed message says, as plain frozen records: no hl7 containers, no database rows.
An ADT patient converts to the same row dict that one families-CSV line gives (SPEC §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

FAMILY_ROW_COLUMNS = (
    "account_number", "patient_id", "patient_first_name", "patient_middle_name",
    "patient_last_name", "patient_dob", "patient_sex", "name_type", "guardian_first_name",
    "guardian_last_name", "guardian_relationship", "guardian_email", "guardian_phone",
    "guardian_has_portal_account", "guardian_language",
)  # fmt: skip

AppointmentEvent = Literal["new", "rescheduled", "modified", "cancelled", "deleted", "no-show"]
AppointmentStatus = Literal["booked", "cancelled", "no-show"]

# Where an NK1 guardian's values are (SPEC §8); the email's field is the one it was found in.
NK1_ORIGIN: Mapping[str, str] = {
    "guardian_first_name": "NK1-2.2", "guardian_last_name": "NK1-2.1",
    "guardian_relationship": "NK1-3", "guardian_email": "NK1-5", "guardian_phone": "NK1-5",
    "guardian_language": "NK1-20",
}  # fmt: skip

# HD components of MSH-3..6 as sent, for the ACK's swapped MSH (SPEC §8).
Routing = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Header:
    """The MSH. `sending_app` etc. are the HD's namespace id (else its universal id);
    `charset` is MSH-18 as sent ("" when absent) and `encoding` the Python codec the bytes were
    actually decoded with (UTF-8, or Windows-1252 when undeclared text was not UTF-8)."""

    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    control_id: str
    type: str  # MSH-9.1, e.g. "ADT"
    trigger: str  # MSH-9.2, e.g. "A04"
    version: str  # MSH-12.1, e.g. "2.5.1"
    charset: str
    encoding: str
    processing_id: str = "P"  # MSH-11.1
    routing: Routing = field(default=((), (), (), ()), repr=False)
    # sha256 of the message's segments with MSH-7 blanked: a resend has the same one, another
    # message under a reused control id does not (SPEC §8). Never the text itself.
    content_digest: str = field(default="", repr=False)

    @property
    def actor(self) -> str:
        """The audit actor for changes this message makes (SPEC §8)."""
        return f"ehr:{self.sending_app}"

    @property
    def dedupe_key(self) -> tuple[str, str, str]:
        """MSH-3 + MSH-4 + MSH-10: a resent message has the same key (SPEC §8)."""
        return self.sending_app, self.sending_facility, self.control_id


@dataclass(frozen=True, slots=True)
class Guardian:
    """One NK1 segment (or, in a message without NK1, one GT1). `relationship` is in words
    ("Mother"); `language` is NK1-20.1 as sent, lowercased ("spa", "es"); the importer reads
    it as ISO 639-1. `origin` names the HL7 field of each families-CSV guardian column and
    `sequence` which segment of its id this is, for an ERR segment about it."""

    first_name: str
    last_name: str
    relationship: str
    phone: str
    email: str
    language: str
    origin: Mapping[str, str] = field(default_factory=lambda: NK1_ORIGIN, repr=False)
    sequence: int = 1


@dataclass(frozen=True, slots=True)
class AdtPatient:
    """ADT A01/A04/A05/A08/A28/A31: one patient and their guardians, to upsert."""

    account_number: str
    chart_id: str
    first_name: str
    middle_name: str
    last_name: str
    dob: date
    sex: str
    name_type: str  # HL7 table 0200, uppercased; NB and TEMP mean a temporary name
    guardians: tuple[Guardian, ...] = ()

    def to_family_rows(self) -> list[dict[str, str]]:
        """The families-CSV rows this patient is (SPEC §4), one per patient-guardian pair, or
        one row with empty guardian fields when there is no NK1. Nothing is validated here
        beyond what parsing needed: the importer decides what it accepts, exactly as for a CSV
        line. `guardian_has_portal_account` is always "" because HL7 does not say."""
        patient = {
            "account_number": self.account_number,
            "patient_id": self.chart_id,
            "patient_first_name": self.first_name,
            "patient_middle_name": self.middle_name,
            "patient_last_name": self.last_name,
            "patient_dob": self.dob.isoformat(),
            "patient_sex": self.sex,
            "name_type": self.name_type,
        }
        guardians = self.guardians or (Guardian("", "", "", "", "", ""),)
        return [
            patient
            | {
                "guardian_first_name": g.first_name,
                "guardian_last_name": g.last_name,
                "guardian_relationship": g.relationship,
                "guardian_email": g.email,
                "guardian_phone": g.phone,
                "guardian_has_portal_account": "",
                "guardian_language": g.language,
            }
            for g in guardians
        ]


@dataclass(frozen=True, slots=True)
class ChartMerge:
    survivor_chart_id: str  # PID-3: the record that stays
    merged_chart_id: str  # MRG-1: the record that goes away


@dataclass(frozen=True, slots=True)
class AdtMerge:
    """ADT A40. One message may merge several pairs (repeated PID/MRG groups)."""

    merges: tuple[ChartMerge, ...]


@dataclass(frozen=True, slots=True)
class SiuAppointment:
    """SIU S12/S13/S14/S15/S17/S26. `starts_at` is naive when the message gave no UTC offset
    (the caller applies PRACTICE_TIMEZONE) and aware when it did; it is None only for a
    cancellation, deletion or no-show that did not repeat the time."""

    event: AppointmentEvent
    appointment_id: str
    chart_id: str
    starts_at: datetime | None
    provider: str
    filler_status: str = ""  # SCH-25.1 (HL7 table 0278), upper-cased, spaces and dashes dropped

    @property
    def status(self) -> AppointmentStatus:
        """The Appointment status of SPEC §3: SCH-25 NOSHOW is a no-show whatever the event
        (some schedulers send a no-show as an S15 cancellation); a deleted appointment, or
        a filler status Cancelled/Deleted/Dc, counts as cancelled."""
        if self.event == "no-show" or self.filler_status == "NOSHOW":
            return "no-show"
        if self.event in ("cancelled", "deleted") or self.filler_status in _CANCELLED:
            return "cancelled"
        return "booked"


_CANCELLED = frozenset({"CANCELLED", "CANCELED", "DELETED", "DC"})  # table 0278


Body = AdtPatient | AdtMerge | SiuAppointment


@dataclass(frozen=True, slots=True)
class FeedMessage:
    header: Header
    body: Body
