"""What an SIU message changes (SPEC §8), inside the message's transaction: the appointment
keyed by the EHR's appointment id, its start stored as the practice's naive local time (as
the appointments CSV stores it), its status booked, cancelled or no-show."""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlmodel import Session, select

from bot import audit
from bot.feed.changes import Changes, find_patient
from bot.feed.errors import ErrorCode, FeedFieldError
from bot.feed.records import Header, SiuAppointment
from bot.text import clean
from models import Appointment, AppointmentStatus

APPOINTMENT_ID_LIMIT = 64  # Appointment.ehr_appointment_id


def apply_appointment(
    session: Session, event: SiuAppointment, *, header: Header, zone: tzinfo
) -> Changes:
    patient = find_patient(session, event.chart_id)  # the survivor's (bot/feed/apply.py)
    if patient is None or patient.id is None:
        raise FeedFieldError(
            "PID-3",
            "PID-3 names a patient pinbot does not know: send the patient's ADT first",
            code=ErrorCode.UNKNOWN_KEY,
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in event.appointment_id):
        raise FeedFieldError("SCH-2", "SCH-2 appointment id has control characters")
    if len(event.appointment_id) > APPOINTMENT_ID_LIMIT:
        raise FeedFieldError(
            "SCH-2", f"SCH-2 appointment id is longer than {APPOINTMENT_ID_LIMIT} characters"
        )
    starts_at = _local(event.starts_at, zone)
    appointment = session.exec(
        select(Appointment).where(Appointment.ehr_appointment_id == event.appointment_id)
    ).first()
    if appointment is None and starts_at is None:
        if event.status == "booked":
            raise FeedFieldError("SCH-11.4", "no appointment start time", missing=True)
        return Changes()  # cancelling an appointment pinbot never had: nothing to do
    if starts_at is not None:
        # The slot may be held by a row from the appointments CSV (no EHR id): that row is this
        # appointment, adopted rather than doubled (unique patient + start).
        slot = session.exec(
            select(Appointment).where(
                Appointment.patient_id == patient.id, Appointment.starts_at == starts_at
            )
        ).first()
        if slot is not None and slot is not appointment:
            if appointment is not None:
                # Rescheduled onto a slot another row holds: that row becomes this one.
                appointment.ehr_appointment_id = None
                appointment.status = AppointmentStatus.CANCELLED
                session.flush()
            appointment = slot
    created = appointment is None
    if appointment is None:
        assert starts_at is not None
        appointment = Appointment(patient_id=patient.id, starts_at=starts_at)
        session.add(appointment)
    appointment.ehr_appointment_id = event.appointment_id
    appointment.patient_id = patient.id
    if starts_at is not None:
        appointment.starts_at = starts_at
    if provider := clean(event.provider, 100):
        appointment.provider = provider
    appointment.status = event.status
    session.flush()
    audit.record(
        session,
        actor=header.actor,
        action=f"feed.appointment.{event.event}",
        family_id=patient.family_id,
        patient_id=patient.id,
        appointment_id=appointment.id,
        control_id=header.control_id,
        status=event.status,
        created=created,
    )
    return Changes()


def _local(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """A time with an offset → the practice's wall clock; one without is already local."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(zone).replace(tzinfo=None)
