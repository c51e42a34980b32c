"""Issuing PINs for a family in one batch (SPEC §1, §5, §6).

One transaction writes the batch, its PINs and the outgoing work (welcome email, letters
upload); delivery happens after commit (bot/delivery). The idempotency key (the dialog's view
id) makes a re-delivered or double-clicked submit return the first batch instead of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from sqlmodel import Session, col, select

from bot import audit
from bot.clock import last_valid_day, local_date, local_midnight
from bot.delivery import keys, outbox
from bot.delivery.sealing import PinCipher
from bot.documents.letter_case import LetterCase
from bot.families.record import ChildRecord, FamilyRecord, load_family
from bot.issuing.gateway import NewPin, PortalGateway
from bot.issuing.requests import IssuedChild, IssueMode, IssuePolicy, IssueRequest, IssueResult
from bot.issuing.validation import (
    check_not_changed_meanwhile,
    emailed_child,
    mode_for,
    validated_children,
    validated_language,
    validated_recipient,
)
from bot.text import mask_email
from models import (
    Delivery,
    Family,
    Guardian,
    IssueBatch,
    Patient,
    Pin,
    PinStatus,
    WorkKind,
)


def issue_pins(
    session: Session, request: IssueRequest, *, policy: IssuePolicy, gateway: PortalGateway
) -> IssueResult:
    existing = _batch_by_key(session, request.idempotency_key)
    if existing is not None:
        return _result_of(session, existing, created=False)
    # Serialize issuance per family (PostgreSQL row lock; SQLite already holds the write lock).
    # FOR NO KEY UPDATE, not FOR UPDATE: it still excludes a second issuance, but lets the
    # outbox insert rows referencing the family (a foreign-key check takes KEY SHARE), which
    # FOR UPDATE blocked — a deadlock when this issuance then cancelled the email that very
    # outbox transaction was recording as sent (bench/soak.py, saturated, PostgreSQL).
    session.exec(
        select(Family).where(Family.id == request.family_id).with_for_update(key_share=True)
    ).first()
    existing = _batch_by_key(session, request.idempotency_key)
    if existing is not None:
        return _result_of(session, existing, created=False)

    family = load_family(
        session,
        request.family_id,
        today=policy.today,
        zone=policy.timezone,
        minor_age_limit=policy.minor_age_limit,
    )
    children = validated_children(family, request)
    check_not_changed_meanwhile(session, request, children)
    recipient = validated_recipient(session, family, request)
    emailed = emailed_child(children, request)
    mode, note = mode_for(session, recipient, [c.id for c in children], zone=policy.timezone)
    language = validated_language(family, request, policy)

    batch = IssueBatch(
        family_id=family.id,
        idempotency_key=request.idempotency_key,
        issued_by=request.issued_by,
        recipient_guardian_id=recipient.id if recipient else None,
        emailed_patient_id=emailed.id if mode == IssueMode.WELCOME else None,
        mode=mode,
        language=language,
        channel_id=request.channel_id,
        thread_ts=request.thread_ts,
    )
    session.add(batch)
    session.flush()
    issued = [_issue_one(session, batch, child, gateway, policy) for child in children]
    _queue_deliveries(
        session, batch, family, children, issued, recipient, policy.timezone, policy.pin_cipher
    )
    audit.record(
        session,
        actor=request.issued_by,
        action="pins.issued",
        family_id=family.id,
        batch_id=batch.id,
        patient_ids=[c.id for c in children],
        mode=mode,
        replaced=sum(1 for _, was_replaced in issued if was_replaced),
    )
    session.flush()
    replaced = sum(1 for _, was_replaced in issued if was_replaced)
    return _result_of(session, batch, created=True, note=note, replaced=replaced)


def _batch_by_key(session: Session, key: str) -> IssueBatch | None:
    return session.exec(select(IssueBatch).where(IssueBatch.idempotency_key == key)).first()


def _issue_one(
    session: Session,
    batch: IssueBatch,
    child: ChildRecord,
    gateway: PortalGateway,
    policy: IssuePolicy,
) -> tuple[tuple[Pin, str], bool]:
    replaced = bool(
        revoke_active_pins(
            session, child.id, gateway, reason="superseded by a newer PIN", now=policy.now
        )
    )
    expires = (  # at the local midnight after the printed expiry day: it works all that day
        local_midnight(policy.today + timedelta(days=policy.pin_ttl_days + 1), policy.timezone)
        if policy.pin_ttl_days
        else None
    )
    patient = session.get(Patient, child.id)
    assert patient is not None
    new = new_pin(session, gateway, patient, expires)
    emailed = batch.mode == IssueMode.WELCOME and batch.emailed_patient_id == child.id
    pin = Pin(
        patient_id=child.id,
        batch_id=batch.id or 0,
        pin_hash=new.pin_hash,
        lookup=new.lookup,
        recipient_guardian_id=batch.recipient_guardian_id if emailed else None,
        delivery=Delivery.EMAILED if emailed else Delivery.PRINTED,
        issued_by=batch.issued_by,
        issued_at=policy.now,
        expires_at=expires,
    )
    session.add(pin)
    session.flush()
    return (pin, new.plaintext), replaced


# Draws before giving up; one repeat is already ~1 in 10^6 a PIN with a million on record.
NEW_PIN_DRAWS = 5


def new_pin(
    session: Session, gateway: PortalGateway, patient: Patient, expires: datetime | None
) -> NewPin:
    """A PIN whose lookup no PIN on record has (any status): the portal API finds a PIN by its
    lookup alone (bot/portal/pins.py), so a repeat would answer for the wrong child. PINs are
    8 characters of 32 (2^40): with a million on record a repeat comes ~once a million PINs."""
    for _ in range(NEW_PIN_DRAWS):
        new = gateway.issue(patient, expires)
        if new.lookup is None or not _lookup_on_record(session, new.lookup):
            return new
    raise RuntimeError(f"{NEW_PIN_DRAWS} new PINs in a row repeated one on record")


def _lookup_on_record(session: Session, lookup: str) -> bool:
    return session.exec(select(Pin.id).where(Pin.lookup == lookup).limit(1)).first() is not None


def revoke_active_pins(
    session: Session, patient_id: int, gateway: PortalGateway, *, reason: str, now: datetime
) -> list[int]:
    """Revoke the child's active PIN (one at most: the one-active-PIN index), cancelling its
    welcome email if not yet sent; the ids revoked. Issuance, a chart merge and the demo."""
    pins = session.exec(
        select(Pin).where(Pin.patient_id == patient_id, Pin.status == PinStatus.ACTIVE)
    ).all()
    for pin in pins:
        pin.status, pin.status_changed_at = PinStatus.REVOKED, now
        gateway.revoke(pin)
        if pin.delivery == Delivery.EMAILED:
            outbox.cancel(session, dedupe_key=keys.welcome_email(pin.batch_id), reason=reason)
    session.flush()  # free the one-active-PIN slot before a new PIN is inserted
    return [pin.id or 0 for pin in pins]


def _expiry_date(pin: Pin, zone: tzinfo) -> str | None:
    """The printed expiry date (the last local day the PIN works), as ISO text."""
    return last_valid_day(pin.expires_at, zone).isoformat() if pin.expires_at else None


def _letter_case(batch: IssueBatch, child: ChildRecord, first: ChildRecord) -> LetterCase:
    if batch.mode == IssueMode.ADD_CHILD:
        return LetterCase.HAS_ACCOUNT
    first_id = batch.emailed_patient_id or first.id
    return LetterCase.FIRST_CHILD if child.id == first_id else LetterCase.SIBLING


def _queue_deliveries(
    session: Session,
    batch: IssueBatch,
    family: FamilyRecord,
    children: Sequence[ChildRecord],
    issued: Sequence[tuple[tuple[Pin, str], bool]],
    recipient: Guardian | None,
    zone: tzinfo,
    pin_cipher: PinCipher,
) -> None:
    """Queue the letters upload and the welcome email; every date in them is the practice's."""
    pins = {pin.patient_id: (pin, plaintext) for (pin, plaintext), _ in issued}
    first = next((c for c in children if c.id == batch.emailed_patient_id), children[0])
    masked = mask_email(recipient.email) if recipient else None
    letters = [
        {
            "patient_id": c.id,
            "full_name": c.full_name,
            "dob": c.dob.isoformat(),
            "pin": pins[c.id][1],
            "case": _letter_case(batch, c, first),
            "issued_on": local_date(pins[c.id][0].issued_at, zone).isoformat(),
            "expires_on": _expiry_date(pins[c.id][0], zone),
            "emailed_to": masked if c.id == batch.emailed_patient_id else None,
            "first_child_name": first.first_name if c.id != first.id else None,
        }
        for c in children
    ]
    if batch.channel_id:
        outbox.enqueue(
            session,
            kind=WorkKind.LETTERS_UPLOAD,
            dedupe_key=keys.letters_upload(batch.id or 0),
            batch_id=batch.id,
            family_id=family.id,
            payload={
                "channel_id": batch.channel_id,
                "thread_ts": batch.thread_ts,
                "letters": letters,
                "language": batch.language,
                "account_number": family.account_number,
            },
            pin_cipher=pin_cipher,
        )
    if batch.mode == IssueMode.WELCOME and recipient is not None:
        pin, plaintext = pins[first.id]
        outbox.enqueue(
            session,
            kind=WorkKind.WELCOME_EMAIL,
            dedupe_key=keys.welcome_email(batch.id or 0),
            batch_id=batch.id,
            family_id=family.id,
            payload={
                "to_address": recipient.email,
                "guardian_name": recipient.first_name,
                "child_first_name": first.first_name,
                "pin": plaintext,
                "pin_id": pin.id,
                "expires_on": _expiry_date(pin, zone),
                "sibling_first_names": [c.first_name for c in children if c.id != first.id],
                "language": batch.language,
                "channel_id": batch.channel_id,
                "thread_ts": batch.thread_ts,
            },
            pin_cipher=pin_cipher,
        )


def _result_of(
    session: Session,
    batch: IssueBatch,
    *,
    created: bool,
    note: str | None = None,
    replaced: int = 0,
) -> IssueResult:
    rows = session.exec(
        select(Pin, Patient)
        .join(Patient, col(Pin.patient_id) == col(Patient.id))
        .where(Pin.batch_id == batch.id)
        .order_by(col(Patient.dob))
    ).all()
    recipient = (
        session.get(Guardian, batch.recipient_guardian_id) if batch.recipient_guardian_id else None
    )
    children = tuple(
        IssuedChild(
            patient_id=patient.id or 0,
            full_name=" ".join(
                p for p in (patient.first_name, patient.middle_name, patient.last_name) if p
            ),
            delivery=pin.delivery,
        )
        for pin, patient in rows
    )
    return IssueResult(
        batch_id=batch.id or 0,
        family_id=batch.family_id,
        created=created,
        mode=IssueMode(batch.mode),
        children=children,
        recipient_name=f"{recipient.first_name} {recipient.last_name}" if recipient else None,
        masked_email=mask_email(recipient.email) if recipient else None,
        emailed_patient_id=batch.emailed_patient_id,
        account_note=note,
        language=batch.language or "en",
        replaced=replaced,
        channel_id=batch.channel_id,
        thread_ts=batch.thread_ts,
    )
