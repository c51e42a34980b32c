"""What an ADT message changes, inside the message's transaction (bot/feed/apply.py commits):
A01/A04/A05/A08/A28/A31 upsert the patient and guardians through the families import's own
rules (bot/importing/rows.py); A40 merges one chart into another (SPEC §8)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot import audit
from bot.delivery import keys
from bot.delivery.notices import ChartsMerged, EhrRenamed
from bot.families.record import full_name, name_flag
from bot.families.threads import tell_family
from bot.feed.errors import ErrorCode, FeedFieldError, FeedWarning
from bot.feed.records import AdtMerge, AdtPatient, Body, Header
from bot.importing.families import ACCOUNT_CONFLICT
from bot.importing.rows import RowProblem, RowsRejected, upsert_family_rows
from bot.issuing.gateway import PortalGateway
from bot.issuing.issuance import revoke_active_pins
from bot.text import clean, fold
from models import (
    Appointment,
    AppointmentStatus,
    NameFix,
    NameFixStatus,
    Patient,
    Pin,
    PinStatus,
    utcnow,
)

# The families-CSV column a problem names → the HL7 field it came from (SPEC §8 mapping);
# a guardian's columns are named by the guardian itself (NK1 or GT1: `Guardian.origin`).
_PATIENT_FIELDS = {
    "patient_id": "PID-3",
    "patient_first_name": "PID-5.2",
    "patient_middle_name": "PID-5.3",
    "patient_last_name": "PID-5.1",
    "patient_dob": "PID-7",
    "patient_sex": "PID-8",
    "name_type": "PID-5.7",
}

_SURVIVOR = aliased(Patient)
# The chart a merged-away chart id stands for; no row for a chart never merged (built once:
# every message that names a patient asks it).
_SURVIVOR_CHART = (
    select(_SURVIVOR.chart_id)
    .join_from(Patient, _SURVIVOR, col(_SURVIVOR.id) == col(Patient.merged_into_id))
    .where(col(Patient.chart_id) == bindparam("chart_id"))
)


@dataclass
class Changes:
    """What the caller does after commit: add name keys, and kick the delivery worker when
    the transaction queued thread messages (apply.py reads that from the session's mark,
    bot/delivery/outbox.py, as the Slack pipeline does)."""

    queued_work: bool = False
    name_keys: list[tuple[str, str]] = field(default_factory=list)  # (first_key, last_key)
    # Details left out, the rest applied: the ACK's ERR segments of severity W.
    warnings: list[FeedWarning] = field(default_factory=list)


def apply_patient(
    session: Session,
    patient: AdtPatient,
    *,
    header: Header,
    today: date,
    now: datetime,
    account_field: str,
) -> Changes:
    try:
        applied = upsert_family_rows(
            session, patient.to_family_rows(), today=today, actor=header.actor
        )
    except RowsRejected as rejected:
        raise _field_error(rejected.problems[0], patient, account_field) from None
    # Every row of an ADT message is about its one patient.
    (stored,) = set(applied.patients.values())
    changes = Changes()
    changes.name_keys = [(stored.first_key, stored.last_key)] + [
        (fold(g.first_name), fold(g.last_name)) for g in patient.guardians
    ]
    changes.warnings = [_left_out(problem, patient) for problem in applied.left_out]
    if applied.changed or changes.warnings:
        audit.record(
            session,
            actor=header.actor,
            action="feed.patient",
            family_id=stored.family_id,
            patient_id=stored.id,
            control_id=header.control_id,
            counts=applied.counts,
            closed_name_fixes=applied.closed_name_fix_ids,
            # "EHR still has a temporary name for chart …; kept the approved name"
            warnings=applied.warnings or None,
            left_out=[w.field for w in changes.warnings] or None,  # field names, never values
        )
    before = applied.renamed.get(stored.id)
    if before is not None and name_flag(before) is not None:
        # The importer updated this very object: it is in the session's identity map.
        renamed = session.get(Patient, stored.id)
        assert renamed is not None
        if name_flag(renamed) is None:
            _tell_renamed(session, renamed, full_name(before), header, now)
    return changes


def find_patient(session: Session, chart_id: str) -> Patient | None:
    """The patient with this chart id, read as the families import stores it (control
    characters dropped, whitespace collapsed: PostgreSQL would refuse a NUL to compare)."""
    return session.exec(select(Patient).where(Patient.chart_id == clean(chart_id, 64))).first()


def surviving_chart_id(session: Session, chart_id: str) -> str:
    """The chart id a message about `chart_id` is applied under: the chart it was merged into
    when an A40 merged it away (one hop: `_mark_merged` keeps every merged chart pointing at
    the final survivor), else `chart_id` as sent. The EHR may keep sending the old id."""
    survivor = session.execute(_SURVIVOR_CHART, {"chart_id": clean(chart_id, 64)}).scalar()
    return survivor if survivor is not None else chart_id


def on_surviving_charts(session: Session, body: Body) -> Body:
    """`body` with every chart id that names the patient a message is about (PID-3 of an
    ADT, an SIU or an A40's survivor) read as its survivor's, so a change sent under a
    merged-away chart id lands on the record staff see, never on the hidden one. MRG-1, the
    chart an A40 merges away, is taken as sent."""
    if isinstance(body, AdtMerge):
        return AdtMerge(
            tuple(
                replace(pair, survivor_chart_id=surviving_chart_id(session, pair.survivor_chart_id))
                for pair in body.merges
            )
        )
    current = surviving_chart_id(session, body.chart_id)
    return body if current == body.chart_id else replace(body, chart_id=current)


def _hl7_field(column: str, index: int, patient: AdtPatient, account_field: str) -> tuple[str, int]:
    """The HL7 field (and the sequence of its segment) a families-CSV column came from."""
    if column == "account_number":
        return account_field, 1
    if column.startswith("guardian_") and index < len(patient.guardians):
        guardian = patient.guardians[index]
        return guardian.origin.get(column, "NK1-2"), guardian.sequence
    return _PATIENT_FIELDS.get(column, "PID-3"), 1


def _field_error(problem: RowProblem, patient: AdtPatient, account_field: str) -> FeedFieldError:
    """The import's problem, worded for the EHR's interface team: the HL7 field, a plain
    reason without the column's name (nor any value)."""
    column = problem.column
    hl7_field, sequence = _hl7_field(column, problem.index, patient, account_field)
    if column == "account_number":
        return _account_error(problem, account_field)
    reason = problem.message.removeprefix(column).strip() or "is not valid"
    reason = reason.replace("patient_id", "chart id").replace("account_number", "account number")
    missing = reason == "is empty"
    return FeedFieldError(hl7_field, f"{hl7_field} {reason}", missing=missing, sequence=sequence)


def _account_error(problem: RowProblem, account_field: str) -> FeedFieldError:
    if problem.message == ACCOUNT_CONFLICT:
        return FeedFieldError(
            account_field,
            f"{account_field} differs from the family account pinbot has for this chart; "
            "if it is a per-visit number (FIN, VN), set HL7_ACCOUNT_FIELD or map the family "
            "account into it in the interface engine",
            code=ErrorCode.UNKNOWN_KEY,
        )
    if problem.message.endswith("is empty"):
        return FeedFieldError(
            account_field,
            f"{account_field} is empty: a chart new to pinbot needs its family account",
            missing=True,
        )
    reason = problem.message.removeprefix("account_number").strip()
    return FeedFieldError(account_field, f"{account_field} {reason}")


def _left_out(problem: RowProblem, patient: AdtPatient) -> FeedWarning:
    hl7_field, sequence = _hl7_field(problem.column, problem.index, patient, "")
    what = problem.column.replace("_", " ")  # "guardian phone"
    reason = problem.message.removeprefix(problem.column).strip()
    where = hl7_field if sequence == 1 else f"{hl7_field} (segment {hl7_field[:3]} #{sequence})"
    return FeedWarning(
        hl7_field, f"{where} {what} {reason}; left out, the rest applied", sequence=sequence
    )


def _tell_renamed(
    session: Session, patient: Patient, old_name: str, header: Header, now: datetime
) -> None:
    new_name = full_name(patient)
    _tell_family(
        session,
        patient,
        header,
        now,
        EhrRenamed(
            family_id=patient.family_id,
            patient_id=patient.id or 0,
            new_name=new_name,
            old_name=old_name,
        ),
    )


def _tell_family(
    session: Session,
    patient: Patient,
    header: Header,
    now: datetime,
    notice: EhrRenamed | ChartsMerged,
) -> None:
    """Queue `notice` in the family's news thread, if it has one."""
    tell_family(
        session,
        family_id=patient.family_id,
        now=now,
        dedupe_key=keys.feed_notice(notice.kind, patient.id or 0, header.dedupe_key),
        notice=notice,
    )


def apply_merge(
    session: Session, merge: AdtMerge, *, header: Header, gateway: PortalGateway, now: datetime
) -> Changes:
    """Each pair: the merged-away chart marked merged into the survivor (from then on staff
    no longer see it: not on the card, in the dialog, the digest or /pinbot today, and a
    search by its chart id finds the survivor), its active PINs revoked ("merged into …"),
    its registered PINs and open name fixes moved to the survivor, the family thread told,
    audited; the rest of its history (PINs, name fixes, audit) stays. A pair naming a chart
    pinbot does not know, or one already merged so, changes nothing. The survivor's chart id
    is already its final survivor's (`on_surviving_charts`)."""
    changes = Changes()
    for pair in merge.merges:
        gone, kept = (
            find_patient(session, pair.merged_chart_id),
            find_patient(session, pair.survivor_chart_id),
        )
        if gone is None or kept is None or gone.id == kept.id or gone.merged_into_id == kept.id:
            continue
        _mark_merged(session, gone, kept)
        reason = f"merged into {kept.chart_id}"
        revoked = revoke_active_pins(session, gone.id or 0, gateway, reason=reason, now=now)
        registered = _move_registrations(session, gone, kept)
        moved = _move_name_fixes(session, gone, kept)
        visits = _move_appointments(session, gone, kept)
        audit.record(
            session,
            actor=header.actor,
            action="feed.merge",
            family_id=kept.family_id,
            patient_id=kept.id,
            merged_patient_id=gone.id,
            merged_chart_id=gone.chart_id,
            control_id=header.control_id,
            revoked_pin_ids=revoked,
            moved_registered_pin_ids=registered,
            moved_name_fix_ids=moved,
            moved_appointment_ids=visits,
            reason=reason,
        )
        _tell_family(
            session,
            gone,
            header,
            now,
            ChartsMerged(
                merged_chart_id=gone.chart_id,
                survivor_chart_id=kept.chart_id,
                revoked_pins=len(revoked),
                moved_name_fixes=len(moved),
            ),
        )
    return changes


def _mark_merged(session: Session, gone: Patient, kept: Patient) -> None:
    """`gone` and every chart merged into it before now point at `kept`: one hop to the
    survivor, whatever the chain of merges."""
    assert kept.id is not None and gone.id is not None
    earlier = session.exec(select(Patient).where(Patient.merged_into_id == gone.id)).all()
    for patient in (*earlier, gone):
        patient.merged_into_id = kept.id
        patient.updated_at = utcnow()
    session.flush()


def _move_registrations(session: Session, gone: Patient, kept: Patient) -> list[int]:
    """A PIN the portal registered on the merged-away chart becomes the survivor's: it is the
    same child, registered in the portal. Left behind, the survivor would show "no portal
    access" — listed by the digest and `/pinbot today`, offered a new PIN and a second
    welcome email — and its family would lose the add-child path."""
    pins = session.exec(
        select(Pin).where(Pin.patient_id == gone.id, Pin.status == PinStatus.REGISTERED)
    ).all()
    for pin in pins:
        pin.patient_id = kept.id or 0
    return [pin.id or 0 for pin in pins]


def _move_name_fixes(session: Session, gone: Patient, kept: Patient) -> list[int]:
    fixes = session.exec(
        select(NameFix).where(
            NameFix.patient_id == gone.id, NameFix.status == NameFixStatus.PENDING
        )
    ).all()
    for fix in fixes:
        fix.patient_id, fix.family_id = kept.id or 0, kept.family_id
    return [fix.id or 0 for fix in fixes]


def _move_appointments(session: Session, gone: Patient, kept: Patient) -> list[int]:
    """The merged chart's booked visits become the survivor's (the same child is coming), but
    for a slot the survivor already holds: that is the same visit, booked twice."""
    held = set(session.exec(select(Appointment.starts_at).where(Appointment.patient_id == kept.id)))
    visits = session.exec(
        select(Appointment).where(
            Appointment.patient_id == gone.id, Appointment.status == AppointmentStatus.BOOKED
        )
    ).all()
    moved = [visit for visit in visits if visit.starts_at not in held]
    for visit in moved:
        visit.patient_id = kept.id or 0
    return [visit.id or 0 for visit in moved]
