"""The words (and the one button) of what the core tells a family's thread: the renderer the
delivery performer calls when it posts a bot.delivery.notices notice."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from bot.delivery.notices import (
    ChartsMerged,
    DeliveryFailed,
    EhrRenamed,
    EmailDelivered,
    LettersNotRemoved,
    LettersRemoved,
    NameFixClosedByImport,
    NameFixWaiting,
    PinLocked,
    PinRegistered,
    PortalClientSlowed,
    ThreadNotice,
)
from bot.reminders.digest import clock_label, day_label
from handlers.blocks import esc
from handlers.ids import IssueIds
from handlers.payloads import FamilyRef, Id, Payload
from models import WorkKind

_FAILED_WHAT = {
    WorkKind.WELCOME_EMAIL: "The welcome email could not be delivered",
    WorkKind.LETTERS_UPLOAD: "The PIN letters could not be uploaded",
}


class UploadRef(Payload):
    work_id: Id


def mention(slack_id: str) -> str:
    """A user (U…/W…) or a user group (S…), as Slack notifies them."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def render_notice(notice: ThreadNotice) -> dict[str, Any]:
    if isinstance(notice, EmailDelivered):
        return {
            "text": f":email: Welcome email for {esc(notice.child_first_name)} delivered to "
            f"{notice.masked_address}."
        }
    if isinstance(notice, LettersRemoved):
        return {
            "text": f":wastebasket: PIN letters removed from Slack after {notice.ttl_hours} h; "
            "re-issue to print again."
        }
    if isinstance(notice, LettersNotRemoved):
        return {
            "text": f":warning: The PIN letters in this thread could not be removed from Slack "
            f"for {notice.failing_hours} h ({esc(notice.error)}); pinbot keeps trying. They are "
            "live credentials: delete the PDF by hand (the file's ⋯ menu > Delete file)."
        }
    if isinstance(notice, NameFixWaiting):
        mentions = " ".join(mention(i) for i in notice.supervisor_ids)
        since = notice.requested_at
        text = (
            f"{mentions} :hourglass: This name fix has been waiting since {day_label(since)} "
            f"{clock_label(since)}. A supervisor can approve or reject it above."
        )
        return {"text": text.strip()}
    if isinstance(notice, NameFixClosedByImport):
        return {
            "text": f":information_source: The EHR import now has the name {esc(notice.name)} "
            f"for this child, so {mention(notice.requested_by)}'s name-fix request is closed: "
            "nothing to approve."
        }
    if isinstance(notice, EhrRenamed):
        return _renamed(notice)
    if isinstance(notice, ChartsMerged):
        return _merged(notice)
    if isinstance(notice, PinRegistered | PinLocked | PortalClientSlowed):
        return {"text": _portal_text(notice)}
    return _failure(notice)


def _portal_text(notice: PinRegistered | PinLocked | PortalClientSlowed) -> str:
    if isinstance(notice, PinRegistered):
        return (
            f":white_check_mark: {esc(notice.child_first_name)}'s PIN was used: registered in "
            "the portal"
        )
    if isinstance(notice, PinLocked):
        return (
            f":lock: {notice.wrong_dobs} tries with a wrong date of birth for "
            f"{esc(notice.child_first_name)}'s PIN: it is locked. Issue PINs again for a new one."
        )
    minutes = max(1, round(notice.retry_after_seconds / 60))
    return (
        f":rotating_light: The portal API key *{esc(notice.client_name)}* failed "
        f"{notice.failures} PIN checks in a row, so pinbot is slowing it down (its next "
        f"try in {minutes} min). Either the portal's integration has a bug or someone is "
        "guessing PINs: ask whoever runs the portal to look. If the key is not in use, "
        f"revoke it: `pinbot portal key revoke {esc(notice.client_name)}`."
    )


def _renamed(notice: EhrRenamed) -> dict[str, Any]:
    text = (
        f":information_source: The EHR now has *{esc(notice.new_name)}* "
        f"(was {esc(notice.old_name)}). The name is no longer a placeholder: PINs can be "
        "issued."
    )
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=text)),
        ActionsBlock(
            block_id="ehr_renamed_next",
            elements=[
                ButtonElement(
                    text="Issue PINs…",
                    action_id=IssueIds.OPEN_DIALOG,
                    style="primary",
                    value=FamilyRef(family_id=notice.family_id).dump(),
                )
            ],
        ),
    ]
    return {"text": text, "blocks": [block.to_dict() for block in blocks]}


def _merged(notice: ChartsMerged) -> dict[str, Any]:
    revoked, moved = notice.revoked_pins, notice.moved_name_fixes
    parts = [
        f":twisted_rightwards_arrows: The EHR merged chart {esc(notice.merged_chart_id)} "
        f"into {esc(notice.survivor_chart_id)}."
    ]
    if revoked:
        parts.append(
            f"{revoked} active PIN{'s' if revoked != 1 else ''} of the merged chart "
            "revoked: issue PINs again from the surviving chart's family card."
        )
    if moved:
        parts.append(f"{moved} pending name fix{'es' if moved != 1 else ''} moved to it.")
    return {"text": " ".join(parts)}


def _failure(notice: DeliveryFailed) -> dict[str, Any]:
    """A delivery that finally failed; a letters upload whose letters are still kept gets a
    "Retry upload" button."""
    text = (
        f":warning: {_FAILED_WHAT[notice.work_kind]} after {notice.attempts} attempt(s) "
        f"({notice.error})."
    )
    if notice.retry_until is None:
        text += (
            " The PINs themselves are issued; re-issue from the family card to print new letters."
        )
        return {"text": text}
    text += (
        " The PINs themselves are issued. *Retry upload* posts the same letters "
        f"again (no new PINs) until {notice.retry_until:%b %d, %I:%M %p}; after "
        "that, re-issue from the family card."
    )
    if notice.work_kind != WorkKind.LETTERS_UPLOAD:
        return {"text": text}
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=text)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Retry upload",
                    action_id=IssueIds.RETRY_UPLOAD,
                    value=UploadRef(work_id=notice.work_id).dump(),
                )
            ]
        ),
    ]
    return {"text": text, "blocks": [block.to_dict() for block in blocks]}
