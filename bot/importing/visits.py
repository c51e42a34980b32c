"""The per-patient import kinds (SPEC §4): appointments (patient_id, starts_at, provider) keyed
by patient and start time, and portal registrations (patient_id, registered_at), which mark the
active PIN registered at the registration's own time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import ClassVar, TypeVar

from sqlmodel import Session, col, select

from bot.importing.base import (
    CREATED,
    ENTITY_OUTCOMES,
    UNCHANGED,
    UPDATED,
    Importer,
    Problems,
    Tally,
    apply_values,
    chart_accounts,
)
from bot.importing.fields import CLOCK_SLACK, Fields
from models import Appointment, Patient, Pin, PinStatus, utcnow

REGISTERED, ALREADY_REGISTERED = "registered", "already registered"
NO_ACTIVE_PIN, BEFORE_PIN = "no active PIN", "registered before the active PIN was issued"
APPOINTMENT_COLUMNS = ("patient_id", "starts_at", "provider")


REGISTRATION_COLUMNS = ("patient_id", "registered_at")


_REGISTRATION_OUTCOMES = (REGISTERED, ALREADY_REGISTERED, NO_ACTIVE_PIN, BEFORE_PIN)


@dataclass(frozen=True)
class _PatientRef:
    chart_id: str


P = TypeVar("P", bound=_PatientRef)


class _ByPatient(Importer[P]):
    """Rows that refer to an existing patient by patient_id."""

    def check(self, session: Session, rows: list[tuple[int, P]]) -> Problems:
        known = chart_accounts(session, (row.chart_id for _, row in rows))
        return [
            (line, "patient_id is not in the database (import the families file first)")
            for line, row in rows
            if row.chart_id not in known
        ]


@dataclass(frozen=True)
class _AppointmentRow(_PatientRef):
    starts_at: datetime
    provider: str


class AppointmentsImporter(_ByPatient[_AppointmentRow]):
    kind, columns = "appointments", APPOINTMENT_COLUMNS
    outcomes: ClassVar[dict[str, tuple[str, ...]]] = {"appointments": ENTITY_OUTCOMES}

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone

    def parse(self, fields: Fields) -> _AppointmentRow:
        return _AppointmentRow(
            fields.text("patient_id", 64),
            fields.moment("starts_at", zone=self._zone),
            fields.text("provider", required=False),
        )

    def write(self, session: Session, rows: list[_AppointmentRow], tally: Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        query = select(Appointment).where(
            col(Appointment.patient_id).in_(set(patient_ids.values())),
            col(Appointment.starts_at).between(
                min(r.starts_at for r in rows), max(r.starts_at for r in rows)
            ),
        )
        existing = {(a.patient_id, a.starts_at): a for a in session.exec(query)}
        for row in rows:
            key = (patient_ids[row.chart_id], row.starts_at)
            if (appointment := existing.get(key)) is None:
                existing[key] = Appointment(
                    patient_id=key[0], starts_at=row.starts_at, provider=row.provider
                )
                session.add(existing[key])
                tally.mark("appointments", key, CREATED)
            else:
                changed = apply_values(appointment, {"provider": row.provider})
                tally.mark("appointments", key, UPDATED if changed else UNCHANGED)


@dataclass(frozen=True)
class _RegistrationRow(_PatientRef):
    registered_at: datetime


class RegistrationsImporter(_ByPatient[_RegistrationRow]):
    kind, columns = "registrations", REGISTRATION_COLUMNS
    outcomes: ClassVar[dict[str, tuple[str, ...]]] = {"registrations": _REGISTRATION_OUTCOMES}

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone

    def parse(self, fields: Fields) -> _RegistrationRow:
        return _RegistrationRow(
            fields.text("patient_id", 64),
            fields.moment("registered_at", past_only=True, date_ok=True, zone=self._zone),
        )

    def write(self, session: Session, rows: list[_RegistrationRow], tally: Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        pins: dict[int, dict[str, Pin]] = defaultdict(dict)
        query = select(Pin).where(
            col(Pin.patient_id).in_(set(patient_ids.values())),
            col(Pin.status).in_([PinStatus.ACTIVE, PinStatus.REGISTERED]),
        )
        for pin in session.exec(query):
            pins[pin.patient_id][pin.status] = pin
        for row in rows:
            tally.mark(
                "registrations",
                row.chart_id,
                _register(pins[patient_ids[row.chart_id]], row.registered_at, self._zone),
            )


def _register(pins: dict[str, Pin], registered_at: datetime, zone: tzinfo | None) -> str:
    active = pins.get(PinStatus.ACTIVE)
    if active is None:
        return ALREADY_REGISTERED if PinStatus.REGISTERED in pins else NO_ACTIVE_PIN
    # A cumulative portal export lists old registrations too; one made before this PIN existed
    # used an earlier PIN and must not mark a freshly issued one (a day of time-zone slack).
    if registered_at.date() < active.issued_at.date() - CLOCK_SLACK:
        return BEFORE_PIN
    # The family's registration time (the file's local time), not the import's: the
    # adoption report counts PINs registered within 30 days of issue (SPEC §10).
    when = min(registered_at.replace(tzinfo=zone or UTC), utcnow())
    active.status, active.status_changed_at = PinStatus.REGISTERED, when
    pins[PinStatus.REGISTERED] = pins.pop(PinStatus.ACTIVE)
    return REGISTERED


def _patient_ids(session: Session, chart_ids: Iterable[str]) -> dict[str, int]:
    query = select(Patient.chart_id, Patient.id).where(col(Patient.chart_id).in_(set(chart_ids)))
    return dict(session.exec(query).all())  # type: ignore[arg-type]
