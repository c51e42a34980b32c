"""Name fixes (SPEC §1.2, §5): front-desk staff ask for a newborn's placeholder name to be
replaced; a supervisor decides in the family thread. No Slack here: handlers/name_fix.py renders.

A decision claims the request with a conditional UPDATE ... WHERE status = 'pending', so when
two supervisors click at the same moment (on any replica) exactly one decision is recorded and
the other learns who won. A refused click changes nothing; record_refusal audits it in its own
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot import audit
from bot.db import rows_changed
from bot.delivery import keys, outbox
from bot.delivery.notices import NameFixClosedByImport
from bot.errors import AlreadyDecided, NotAllowed, NotFound, PinbotError, ValidationFailed
from bot.families import threads
from bot.families.names import check_name
from bot.families.record import full_name, name_flag
from bot.text import clean, fold, mrkdwn_literal
from models import NameFix, NameFixStatus, Patient, utcnow

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


_STATUS_OF = {
    Decision.APPROVE: NameFixStatus.APPROVED,
    Decision.CONFIRM: NameFixStatus.CONFIRMED,
    Decision.REJECT: NameFixStatus.REJECTED,
}
_DONE_AS: dict[str, str] = {
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


def _view(fix: NameFix, patient: Patient, *, name_on_file: str | None = None) -> NameFixRecord:
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


# --------------------------------------------------------------------------- requesting


def _pending_for(session: Session, patient_id: int) -> NameFix | None:
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
    if _pending_for(session, patient_id) is not None:
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
    return _view(fix, patient)


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


# --------------------------------------------------------------------------- deciding


def _already(status: str, decided_by: str | None) -> AlreadyDecided:
    if status == NameFixStatus.CLOSED:
        return AlreadyDecided(
            "This name fix is already closed: the EHR import brought the "
            "child's real name, or the request could not be posted."
        )
    done_as = _DONE_AS.get(status, status)
    return AlreadyDecided(f"This name fix was already {done_as}.", decided_by=decided_by)


def _checked(
    session: Session,
    *,
    name_fix_id: int,
    user_id: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
) -> tuple[NameFix, Patient]:
    found = session.exec(
        select(NameFix, Patient).join(Patient).where(NameFix.id == name_fix_id)
    ).first()
    if found is None:
        raise NotFound("That name-fix request is no longer in pinbot.")
    fix, patient = found
    if fix.message_ts and (fix.channel_id, fix.message_ts) != (channel_id, message_ts):
        raise NotAllowed("That button doesn't belong to this name-fix request.")
    # A decided request says so to anyone: who decided is more useful than who may.
    if fix.status != NameFixStatus.PENDING:
        raise _already(fix.status, fix.decided_by)
    if user_id == fix.requested_by:
        raise NotAllowed(
            "You asked for this name fix, so someone else decides it: another supervisor."
        )
    if not is_supervisor:
        raise NotAllowed(
            "Only a supervisor can decide a name fix; the supervisors are mentioned in the request."
        )
    return fix, patient


def check_decider(
    session: Session,
    *,
    name_fix_id: int,
    user_id: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
) -> NameFixRecord:
    """Whether this user may decide this pending request now (before a reason dialog)."""
    fix, patient = _checked(
        session,
        name_fix_id=name_fix_id,
        user_id=user_id,
        is_supervisor=is_supervisor,
        channel_id=channel_id,
        message_ts=message_ts,
    )
    return _view(fix, patient)


def _claim(
    session: Session,
    name_fix_id: int,
    *,
    status: str,
    decided_by: str,
    decided_at: datetime,
    note: str,
) -> bool:
    """First decision wins: only a still-pending row changes, whatever another transaction
    read before (a read-then-write would let two supervisors both win)."""
    claimed = rows_changed(
        session.execute(
            update(NameFix)
            .where(col(NameFix.id) == name_fix_id, col(NameFix.status) == NameFixStatus.PENDING)
            .values(status=status, decided_by=decided_by, decided_at=decided_at, decision_note=note)
        )
    )
    return claimed == 1


def _winner(session: Session, name_fix_id: int) -> AlreadyDecided:
    status, decided_by = session.exec(
        select(NameFix.status, NameFix.decided_by).where(NameFix.id == name_fix_id)
    ).one()
    return _already(status, decided_by)


def _reason(raw: str) -> str:
    reason = clean(raw, limit=10 * NOTE_LIMIT)
    if not reason:
        raise ValidationFailed({NameFixField.REASON: "Say why the name fix is rejected."})
    if len(reason) > NOTE_LIMIT:
        raise ValidationFailed({NameFixField.REASON: f"At most {NOTE_LIMIT} characters."})
    return reason


def _rename(patient: Patient, fix: NameFix, now: datetime) -> None:
    patient.first_name, patient.middle_name = fix.proposed_first, fix.proposed_middle
    patient.last_name = fix.proposed_last
    patient.first_key, patient.last_key = fold(fix.proposed_first), fold(fix.proposed_last)
    patient.updated_at = now


def decide(
    session: Session,
    *,
    name_fix_id: int,
    decision: Decision,
    decided_by: str,
    is_supervisor: bool,
    channel_id: str | None,
    message_ts: str | None,
    reason: str = "",
    now: datetime | None = None,
) -> NameFixRecord:
    """Approve (rename + verify), confirm the name on file (verify), or reject (with a
    reason). Raises NotAllowed / AlreadyDecided and changes nothing when refused."""
    fix, patient = _checked(
        session,
        name_fix_id=name_fix_id,
        user_id=decided_by,
        is_supervisor=is_supervisor,
        channel_id=channel_id,
        message_ts=message_ts,
    )
    note = _reason(reason) if decision == Decision.REJECT else ""
    now = now or utcnow()
    if not _claim(
        session,
        name_fix_id,
        status=_STATUS_OF[decision],
        decided_by=decided_by,
        decided_at=now,
        note=note,
    ):
        raise _winner(session, name_fix_id)
    old_name = full_name(patient)
    if decision == Decision.APPROVE:
        _rename(patient, fix, now)
    if decision != Decision.REJECT:
        patient.name_verified = True
    # Names belong in this event: the old and new name are what the audit must show.
    audit.record(
        session,
        actor=decided_by,
        action=f"name_fix.{_STATUS_OF[decision]}",
        family_id=fix.family_id,
        patient_id=fix.patient_id,
        name_fix_id=fix.id,
        old_name=old_name,
        new_name=full_name(patient),
        reason=note or None,
    )
    session.flush()
    session.refresh(fix)
    return _view(fix, patient, name_on_file=old_name)


def record_refusal(session: Session, *, name_fix_id: int, user_id: str, why: str) -> None:
    family_id = session.exec(select(NameFix.family_id).where(NameFix.id == name_fix_id)).first()
    audit.record(
        session,
        actor=user_id,
        action="name_fix.refused",
        family_id=family_id,
        name_fix_id=name_fix_id,
        why=why,
    )


# --------------------------------------------------------------------------- imports


def close_resolved(
    session: Session, renamed_patient_ids: Iterable[int], *, actor: str = IMPORT_ACTOR
) -> list[int]:
    """After a families import: close the pending requests of children the import renamed to
    a name that no longer looks unofficial, with a note in the request's thread (queued, so it
    goes out after commit). Returns the closed request ids."""
    renamed = set(renamed_patient_ids)
    # Pending requests are few; filtering them here avoids an IN list of every renamed chart.
    pending = session.exec(
        select(NameFix, Patient).join(Patient).where(NameFix.status == NameFixStatus.PENDING)
    ).all()
    closed = []
    for fix, patient in pending:
        if patient.id not in renamed or name_flag(patient) is not None:
            continue
        name = full_name(patient)
        if not _claim(
            session,
            fix.id or 0,
            status=NameFixStatus.CLOSED,
            decided_by=IMPORT_ACTOR,
            decided_at=utcnow(),
            note=f"the EHR import brought the name {name}",
        ):
            continue
        outbox.post_in_thread(
            session,
            dedupe_key=keys.name_fix_closed(fix.id or 0),
            channel_id=fix.channel_id,
            thread_ts=fix.thread_ts,
            family_id=fix.family_id,
            notice=NameFixClosedByImport(name=name, requested_by=fix.requested_by),
        )
        audit.record(
            session,
            actor=actor,
            action="name_fix.closed",
            family_id=fix.family_id,
            patient_id=fix.patient_id,
            name_fix_id=fix.id,
            new_name=name,
        )
        closed.append(fix.id or 0)
    return closed
