"""The practice's records as imported from the EHR: families, guardians, patients, visits."""

from datetime import date, datetime

from pydantic import NaiveDatetime
from sqlalchemy import text
from sqlmodel import Field, Index, SQLModel, UniqueConstraint

from models._base import AppointmentStatus, utcnow


def name_key_indexes(table: str) -> tuple[Index, Index]:
    """Each name key leads one index and is the other's second column: a surname or a first
    name alone is a look-up on the leading column, and "first last" one seek per pair of
    candidate keys (`last IN (...) AND first IN (...)`) instead of a walk through everyone who
    shares the commoner half — every "Matthew" to find the few "Matthew Smith"s."""
    return (
        Index(f"ix_{table}_last_first", "last_key", "first_key"),
        Index(f"ix_{table}_first_last", "first_key", "last_key"),
    )


class Family(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    account_number: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Guardian(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("family_id", "match_key", name="uq_guardian_family_key"),
        *name_key_indexes("guardian"),
    )

    id: int | None = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    # Re-import key: the lower-cased email, or "name:first last" when there is no email.
    match_key: str = Field(max_length=320, index=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    relationship: str = Field(default="", max_length=50)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    # Digits only (last 10) so "(555) 010-1234", "555.010.1234" and "+1 555 010 1234" all match.
    phone_digits: str | None = Field(default=None, max_length=15, index=True)
    has_portal_account: bool = False
    # ISO 639-1 code of the guardian's preferred language (CSV guardian_language, HL7 NK1-20);
    # None = not known.
    language: str | None = Field(default=None, max_length=8)
    # Lower-cased search keys for the candidate step of /family (indexed: name_key_indexes).
    first_key: str = Field(default="", max_length=100)
    last_key: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# Only merged charts are in it: a search's "merged_into_id IS NULL" can't pick it over the
# name indexes (SQLite has no statistics to tell), and finding the charts merged into one is
# a seek.
_MERGED = text("merged_into_id IS NOT NULL")


class Patient(SQLModel, table=True):
    __table_args__ = (
        *name_key_indexes("patient"),
        Index(
            "ix_patient_merged_into_id",
            "merged_into_id",
            sqlite_where=_MERGED,
            postgresql_where=_MERGED,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    chart_id: str = Field(max_length=64, unique=True)
    first_name: str = Field(max_length=100)
    middle_name: str = Field(default="", max_length=100)
    last_name: str = Field(max_length=100)
    dob: date = Field(index=True)
    sex: str = Field(default="", max_length=20)
    # HL7 table 0200 name type code from the EHR (NB / TEMP mean a temporary name).
    name_type: str | None = Field(default=None, max_length=10)
    name_verified: bool = False
    first_key: str = Field(default="", max_length=100)
    last_key: str = Field(default="", max_length=100)
    # Set by an HL7 A40 merge: the chart this one was merged into. A merged-away record is
    # kept (its PINs, name fixes and audit stay readable) but staff no longer see it.
    merged_into_id: int | None = Field(default=None, foreign_key="patient.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Appointment(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("patient_id", "starts_at", name="uq_appointment_slot"),
        UniqueConstraint("ehr_appointment_id", name="uq_appointment_ehr_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    # Local wall-clock time in PRACTICE_TIMEZONE, as the EHR exports it.
    starts_at: NaiveDatetime = Field(index=True)
    provider: str = Field(default="", max_length=100)
    # The EHR's appointment id (SIU SCH-2.1 / SCH-1.1); None for appointments from a CSV.
    ehr_appointment_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default=AppointmentStatus.BOOKED, max_length=12, index=True)
