"""Asking for a name fix: which child may have one, the proposed name checked field by field
(never another placeholder), the request recorded, its Slack message remembered or withdrawn."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot import audit
from bot.errors import NotFound, PinbotError, ValidationFailed
from bot.families import threads
from bot.families.name_fix.records import (
    NAME_LIMIT,
    NOTE_LIMIT,
    ConfirmedBy,
    FixableChild,
    NameFixField,
    NameFixRecord,
    NameFixRequest,
    record_of,
)
from bot.families.names import check_name
from bot.families.record import full_name, name_flag
from bot.text import clean, mrkdwn_literal
from models import NameFix, NameFixStatus, Patient, utcnow

# --------------------------------------------------------------------------- requesting


def pending_for(session: Session, patient_id: int) -> NameFix | None:
    return session.exec(
        select(NameFix).where(
            NameFix.patient_id == patient_id, NameFix.status == NameFixStatus.PENDING
        )
    ).first()


def _needing_fix(
    session: Session,
    *,
    family_id: int,
    patient_id: int,
    channel_id: str | None,
    thread_ts: str | None,
    lock: bool = False,
) -> tuple[Patient, str]:
    """The child and why its name is flagged; refuses a child that needs no (new) request."""
    query = select(Patient).where(Patient.id == patient_id)
    # The row lock serializes two requests for one child (PostgreSQL; SQLite's write
    # transactions already run one at a time).
    patient = session.exec(query.with_for_update() if lock else query).first()
    if patient is None or patient.family_id != family_id:
        raise NotFound(
            "That child is no longer in this family in pinbot. Search again with /family."
        )
    if patient.merged_into_id is not None:
        # A button on a card posted before the EHR merged this chart (A40) into another.
        raise NotFound(
            "The EHR merged this chart into another one. Search again with /family and ask "
            "for the fix on the child shown there."
        )
    if not channel_id:
        raise PinbotError("Request name fixes from the family card in a channel.")
    threads.check_thread_family(
        session, channel_id=channel_id, thread_ts=thread_ts, family_id=family_id
    )
    flag = name_flag(patient)
    if flag is None:
        raise PinbotError(
            f"{mrkdwn_literal(full_name(patient))}'s name no longer looks "
            "unofficial, so no fix "
            "is needed. Open the family again with /family to issue PINs."
        )
    if pending_for(session, patient_id) is not None:
        raise PinbotError(
            f"A name fix for {mrkdwn_literal(full_name(patient))} is already "
            "waiting for a "
            "supervisor (see /pinbot pending)."
        )
    return patient, flag


def fixable_child(
    session: Session,
    *,
    family_id: int,
    patient_id: int,
    channel_id: str | None,
    thread_ts: str | None,
) -> FixableChild:
    """The child behind a "Request name fix" button, checked before the dialog opens."""
    patient, flag = _needing_fix(
        session,
        family_id=family_id,
        patient_id=patient_id,
        channel_id=channel_id,
        thread_ts=thread_ts,
    )
    return FixableChild(
        family_id=family_id,
        patient_id=patient_id,
        full_name=full_name(patient),
        middle_name=patient.middle_name,
        last_name=patient.last_name,
        dob=patient.dob,
        flag_reason=flag,
    )


def _name_part(raw: str, field: NameFixField, errors: dict[str, str], *, required: bool) -> str:
    collapsed = " ".join((raw or "").split())
    value = clean(collapsed, limit=10 * NAME_LIMIT)
    what = {NameFixField.FIRST: "first name", NameFixField.MIDDLE: "middle name"}.get(
        field, "last name"
    )
    if value != collapsed:
        errors[field] = f"The {what} has control characters; type it again."
    elif required and not value:
        errors[field] = f"Enter the child's {what}."
    elif len(value) > NAME_LIMIT:
        errors[field] = f"The {what} is longer than {NAME_LIMIT} characters."
    elif value and not any(ch.isalpha() for ch in value):
        errors[field] = f"The {what} needs letters."
    return value


def _placeholder_field(first: str, middle: str, last: str) -> tuple[NameFixField, str] | None:
    """Which part of a proposed name still looks unofficial, and why."""
    for field, parts in (
        (NameFixField.FIRST, (first, "", "")),
        (NameFixField.MIDDLE, (first, middle, "")),
        (NameFixField.LAST, (first, middle, last)),
    ):
        # name_type None: the EHR's NB/TEMP code describes the old name, not the typed one.
        check = check_name(*parts, None)
        if check.flagged:
            return field, check.reason or "looks unofficial"
    return None


def _validated(request: NameFixRequest, patient: Patient) -> tuple[str, str, str, str]:
    errors: dict[str, str] = {}
    first = _name_part(request.first, NameFixField.FIRST, errors, required=True)
    middle = _name_part(request.middle, NameFixField.MIDDLE, errors, required=False)
    last = _name_part(request.last, NameFixField.LAST, errors, required=True)
    if request.confirmed_by not in set(ConfirmedBy):
        errors[NameFixField.CONFIRMED_BY] = "Choose how the name was confirmed."
    note = clean(request.note, limit=10 * NOTE_LIMIT)
    if len(note) > NOTE_LIMIT:
        errors[NameFixField.NOTE] = f"The note is longer than {NOTE_LIMIT} characters."
    # The same name as on file asks a supervisor to confirm a false flag, so it may look
    # unofficial; any other proposed name must not.
    same = (first, middle, last) == (patient.first_name, patient.middle_name, patient.last_name)
    if not errors and not same and (found := _placeholder_field(first, middle, last)):
        field, reason = found
        errors[field] = (
            f"This still looks unofficial ({reason}). Enter the child's given "
            "name; if the name on file really is it, enter it unchanged and a "
            "supervisor will confirm it."
        )
    if errors:
        raise ValidationFailed(errors)
    return first, middle, last, note


def request_name_fix(session: Session, request: NameFixRequest) -> NameFixRecord:
    """Record a pending request (the handler then posts it and calls record_message)."""
    patient, _ = _needing_fix(
        session,
        family_id=request.family_id,
        patient_id=request.patient_id,
        channel_id=request.channel_id,
        thread_ts=request.thread_ts,
        lock=True,
    )
    first, middle, last, note = _validated(request, patient)
    fix = NameFix(
        patient_id=request.patient_id,
        family_id=request.family_id,
        proposed_first=first,
        proposed_middle=middle,
        proposed_last=last,
        confirmed_by=request.confirmed_by,
        note=note,
        requested_by=request.requested_by,
        channel_id=request.channel_id,
        thread_ts=request.thread_ts,
    )
    session.add(fix)
    session.flush()
    audit.record(
        session,
        actor=request.requested_by,
        action="name_fix.requested",
        family_id=fix.family_id,
        patient_id=fix.patient_id,
        name_fix_id=fix.id,
        confirmed_by=fix.confirmed_by,
    )
    return record_of(fix, patient)


def record_message(session: Session, *, name_fix_id: int, message_ts: str) -> None:
    """The request's message in the thread: its buttons must come from that message."""
    session.execute(
        update(NameFix).where(col(NameFix.id) == name_fix_id).values(message_ts=message_ts)
    )


def withdraw_unposted(session: Session, *, name_fix_id: int) -> None:
    """Slack refused the request's message: nobody can decide it, so it must not block the
    child's next request."""
    session.execute(
        update(NameFix)
        .where(col(NameFix.id) == name_fix_id, col(NameFix.status) == NameFixStatus.PENDING)
        .values(
            status=NameFixStatus.CLOSED,
            decided_at=utcnow(),
            decision_note="the request could not be posted in Slack",
        )
    )
