"""What a family issuance must pass before anything is written: the chosen children (eligible,
of this family, unchanged since the dialog opened), the guardian who gets the welcome email,
the emailed child, the letter language, and which mode that makes (welcome email, add-child
for a guardian who already has an account, print only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from sqlmodel import Session, col, select

from bot.clock import local_date
from bot.documents.locale import choice_value, default_choice, letter_choices
from bot.errors import ValidationFailed
from bot.families.record import ChildRecord, FamilyRecord
from bot.issuing.requests import IssueField, IssueMode, IssuePolicy, IssueRequest, active_pin_ids
from bot.text import normalized_email
from models import (
    Delivery,
    Guardian,
    Patient,
    Pin,
    PinStatus,
)


def validated_children(family: FamilyRecord, request: IssueRequest) -> list[ChildRecord]:
    if not request.patient_ids:
        raise ValidationFailed({IssueField.CHILDREN: "Choose at least one child."})
    children = []
    for patient_id in dict.fromkeys(request.patient_ids):
        child = family.child(patient_id)
        if child is None:
            raise ValidationFailed({IssueField.CHILDREN: "A chosen child is not in this family."})
        if not child.eligible:
            raise ValidationFailed(
                {IssueField.CHILDREN: f"{child.first_name}: {child.ineligible_reason}."}
            )
        children.append(child)
    return sorted(children, key=lambda c: (c.dob, c.id))


def check_not_changed_meanwhile(
    session: Session, request: IssueRequest, children: Sequence[ChildRecord]
) -> None:
    if request.seen_active_pin_ids is None:
        return
    current = active_pin_ids(session, [c.id for c in children])
    if set(current) - set(request.seen_active_pin_ids):
        raise ValidationFailed(
            {
                IssueField.CHILDREN: (
                    "Someone issued PINs for this family while this dialog was open. Close it and "
                    "click Issue PINs… again to see the current PINs."
                )
            }
        )


def validated_recipient(
    session: Session, family: FamilyRecord, request: IssueRequest
) -> Guardian | None:
    if request.recipient_guardian_id is None:
        return None
    guardian = session.get(Guardian, request.recipient_guardian_id)
    if guardian is None or guardian.family_id != family.id:
        raise ValidationFailed({IssueField.RECIPIENT: "Choose a guardian of this family."})
    if not guardian.email:
        raise ValidationFailed(
            {
                IssueField.RECIPIENT: "This guardian has no email address on file; "
                "choose “No email — print every PIN”."
            }
        )
    return guardian


def emailed_child(children: Sequence[ChildRecord], request: IssueRequest) -> ChildRecord:
    if request.emailed_patient_id is None:
        return children[0]  # the oldest selected
    chosen = next((c for c in children if c.id == request.emailed_patient_id), None)
    if chosen is None:
        raise ValidationFailed(
            {
                IssueField.EMAILED_CHILD: "The emailed child must be one of the children "
                "you selected."
            }
        )
    return chosen


def validated_language(family: FamilyRecord, request: IssueRequest, policy: IssuePolicy) -> str:
    if request.language is None:
        guardian = family.language_of(request.recipient_guardian_id)
        return default_choice(guardian, policy.default_language)
    if request.language not in {choice_value(c) for c in letter_choices()}:
        raise ValidationFailed({IssueField.LANGUAGE: "Choose one of the languages listed."})
    return request.language


def mode_for(
    session: Session, recipient: Guardian | None, patient_ids: Sequence[int], *, zone: tzinfo
) -> tuple[IssueMode, str | None]:
    """The batch's mode, and the note that says why when it is not a welcome email (with
    the earlier email's date in the practice's zone, `zone`)."""
    if recipient is None:
        return IssueMode.PRINT_ONLY, None
    if recipient.has_portal_account:
        return IssueMode.ADD_CHILD, "The guardian already has a portal account."
    redeemed = portal_redemption(session, recipient.family_id)
    if redeemed is not None:
        return IssueMode.ADD_CHILD, (
            "A PIN of this family was used in the portal on "
            f"{local_date(redeemed, zone):%m/%d/%Y}, so the family has a portal account: "
            "every PIN is printed with the Add Child/Dependent steps instead of opening a "
            "second account."
        )
    earlier = earlier_welcome(session, recipient.email or "", exclude_patient_ids=patient_ids)
    if earlier is not None:
        return IssueMode.ADD_CHILD, (
            f"A welcome email already went to this address on "
            f"{local_date(earlier, zone):%m/%d/%Y} for another "
            "child, so the guardian has (or is creating) a portal account: every PIN is "
            "printed with the Add Child/Dependent steps instead of opening a second account."
        )
    return IssueMode.WELCOME, None


def portal_redemption(session: Session, family_id: int) -> datetime | None:
    """When the portal last redeemed a PIN of this family through the portal API (SPEC §11):
    from then on the family has an account, whichever guardian the PIN was printed for."""
    return session.exec(
        select(Pin.status_changed_at)
        .join(Patient, col(Pin.patient_id) == col(Patient.id))
        .where(
            Patient.family_id == family_id,
            Pin.status == PinStatus.REGISTERED,
            col(Pin.portal_account_id).is_not(None),
        )
        .order_by(col(Pin.status_changed_at).desc())
    ).first()


def earlier_welcome(
    session: Session, email: str, *, exclude_patient_ids: Sequence[int] = ()
) -> datetime | None:
    """When a welcome email last went to this address (any family) for a PIN that may have
    opened an account: registered, or still active and not being replaced now."""
    key = normalized_email(email)
    if not key:
        return None
    query = (
        select(Pin.issued_at)
        .join(Guardian, col(Pin.recipient_guardian_id) == col(Guardian.id))
        .where(
            Guardian.match_key == key,
            Pin.delivery == Delivery.EMAILED,
            col(Pin.status).in_([PinStatus.ACTIVE, PinStatus.REGISTERED]),
        )
        .order_by(col(Pin.issued_at).desc())
    )
    if exclude_patient_ids:
        query = query.where(
            col(Pin.patient_id).not_in(exclude_patient_ids) | (Pin.status == PinStatus.REGISTERED)
        )
    return session.exec(query).first()
