"""Name-fix views: the request dialog, the request message in the family thread (and how it
reads once decided), the decision reply and the reject-reason dialog. Pure functions from
plain data to slack_sdk models, plus the typed values those views carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.families.name_fix import NAME_LIMIT, NOTE_LIMIT, ConfirmedBy, FixableChild, NameFixRecord
from handlers.blocks import esc, us_date
from handlers.dialogs import parse_state
from handlers.ids import IssueIds, NameFixIds
from handlers.payloads import FamilyRef, Id, Payload
from models import NameFixStatus


class NameFixRef(Payload):
    """A decision button's value."""

    name_fix_id: Id


class RequestMeta(Payload):
    family_id: Id
    patient_id: Id
    channel_id: str | None = None
    thread_ts: str | None = None


class RejectMeta(Payload):
    """The clicked request message travels with the reason dialog: the decision is checked
    against it exactly as a button click is."""

    name_fix_id: Id
    channel_id: str | None = None
    message_ts: str | None = None


def _text(value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=value[:3000])


def _name_input(
    block_id: str, action_id: str, label: str, *, initial: str = "", optional: bool = False
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=PlainTextInputElement(
            action_id=action_id, max_length=NAME_LIMIT, initial_value=initial[:NAME_LIMIT] or None
        ),
    )


def request_dialog(child: FixableChild, meta: RequestMeta) -> View:
    options = [Option(value=c.value, label=c.label) for c in ConfirmedBy]
    blocks: list[Block] = [
        SectionBlock(
            text=_text(
                f"*{esc(child.full_name)}* · DOB {us_date(child.dob)}\n"
                f":warning: {esc(child.flag_reason)}"
            )
        ),
        _name_input(NameFixIds.FIRST, NameFixIds.FIRST_ACTION, "New first name"),
        _name_input(
            NameFixIds.MIDDLE,
            NameFixIds.MIDDLE_ACTION,
            "New middle name",
            initial=child.middle_name,
            optional=True,
        ),
        _name_input(
            NameFixIds.LAST, NameFixIds.LAST_ACTION, "New last name", initial=child.last_name
        ),
        InputBlock(
            block_id=NameFixIds.CONFIRMED_BY,
            label="How was the name confirmed?",
            element=RadioButtonsElement(action_id=NameFixIds.CONFIRMED_BY_ACTION, options=options),
        ),
        InputBlock(
            block_id=NameFixIds.NOTE,
            label="Note for the supervisor",
            optional=True,
            element=PlainTextInputElement(
                action_id=NameFixIds.NOTE_ACTION, multiline=True, max_length=NOTE_LIMIT
            ),
        ),
        ContextBlock(
            elements=[
                _text(
                    "A supervisor approves the new name in the family "
                    "thread; the child can get a PIN after that."
                )
            ]
        ),
    ]
    return View(
        type="modal",
        callback_id=NameFixIds.CALLBACK,
        title="Request name fix",
        submit="Send to supervisor",
        close="Cancel",
        private_metadata=meta.dump(),
        blocks=blocks,
    )


def read_request_form(view: dict[str, Any]) -> dict[str, str]:
    state = parse_state(view)
    return {
        name: str(state.get(block) or "")
        for name, block in (
            ("first", NameFixIds.FIRST),
            ("middle", NameFixIds.MIDDLE),
            ("last", NameFixIds.LAST),
            ("confirmed_by", NameFixIds.CONFIRMED_BY),
            ("note", NameFixIds.NOTE),
        )
    }


def reject_dialog(fix: NameFixRecord, meta: RejectMeta) -> View:
    return View(
        type="modal",
        callback_id=NameFixIds.REJECT_CALLBACK,
        title="Reject name fix",
        submit="Reject",
        close="Cancel",
        private_metadata=meta.dump(),
        blocks=[
            SectionBlock(
                text=_text(
                    f"*{esc(fix.name_on_file)}* → *{esc(fix.proposed_name)}*"
                    f", asked by <@{fix.requested_by}>"
                )
            ),
            InputBlock(
                block_id=NameFixIds.REASON,
                label="Why is it rejected?",
                hint="The requester sees this in the family thread.",
                element=PlainTextInputElement(
                    action_id=NameFixIds.REASON_ACTION, multiline=True, max_length=NOTE_LIMIT
                ),
            ),
        ],
    )


def read_reason(view: dict[str, Any]) -> str:
    return str(parse_state(view).get(NameFixIds.REASON) or "")


def _summary(fix: NameFixRecord) -> str:
    if fix.renames:
        what = (
            f"Name fix for *{esc(fix.name_on_file)}* (DOB {us_date(fix.dob)}) → "
            f"*{esc(fix.proposed_name)}*"
        )
    else:
        what = (
            f"Confirm that *{esc(fix.name_on_file)}* (DOB {us_date(fix.dob)}) is the "
            "child's real name"
        )
    note = f"\nNote: {esc(fix.note)}" if fix.note else ""
    return f"{what}\nConfirmed by: {esc(fix.confirmed_by)}{note}\nAsked by <@{fix.requested_by}>."


def request_text(fix: NameFixRecord, mentions: str) -> str:
    return f"{mentions} {_summary(fix)}".strip()


def request_blocks(fix: NameFixRecord, mentions: str) -> list[Block]:
    value = NameFixRef(name_fix_id=fix.id).dump()
    return [
        SectionBlock(text=_text(f":pencil2: {request_text(fix, mentions)}")),
        ActionsBlock(
            block_id=NameFixIds.DECISION_BUTTONS,
            elements=[
                ButtonElement(
                    text="Approve", action_id=NameFixIds.APPROVE, value=value, style="primary"
                ),
                ButtonElement(
                    text="Reject", action_id=NameFixIds.REJECT, value=value, style="danger"
                ),
                ButtonElement(
                    text="This is the real name", action_id=NameFixIds.CONFIRM_AS_IS, value=value
                ),
            ],
        ),
        ContextBlock(
            elements=[
                _text(
                    "Only a supervisor decides, never the person who asked. "
                    "“This is the real name” keeps the name on file."
                )
            ]
        ),
    ]


def _when(moment: datetime | None) -> str:
    """Shown in each reader's own time zone; the fallback is UTC."""
    if moment is None:
        return ""
    return (
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|"
        f"{moment:%Y-%m-%d %H:%M} UTC>"
    )


def decision_line(fix: NameFixRecord) -> str:
    who = f"<@{fix.decided_by}> {_when(fix.decided_at)}"
    if fix.status == NameFixStatus.APPROVED:
        return f":white_check_mark: Approved by {who}."
    if fix.status == NameFixStatus.CONFIRMED:
        return f":white_check_mark: Confirmed as the child's real name by {who}."
    if fix.status == NameFixStatus.REJECTED:
        return f":x: Rejected by {who}: {esc(fix.decision_note)}"
    return f"Closed {_when(fix.decided_at)}: {esc(fix.decision_note)}"


def decided_blocks(fix: NameFixRecord) -> list[Block]:
    """The request message once decided: the same summary, the decision, no buttons."""
    return [
        SectionBlock(text=_text(f":pencil2: {_summary(fix)}")),
        ContextBlock(elements=[_text(decision_line(fix))]),
    ]


def decided_text(fix: NameFixRecord) -> str:
    return f"{_summary(fix)}\n{decision_line(fix)}"


def decision_reply(fix: NameFixRecord) -> tuple[str, list[Block] | None]:
    """The reply in the family thread: an "Issue PINs…" button once the name is verified, the
    reason (to the requester) when rejected."""
    asker = f"<@{fix.requested_by}>"
    if fix.status == NameFixStatus.REJECTED:
        return (
            f"{asker} <@{fix.decided_by}> rejected the name fix for "
            f"*{esc(fix.name_on_file)}* ({esc(fix.proposed_name)}): "
            f"{esc(fix.decision_note)}",
            None,
        )
    verified = fix.proposed_name if fix.status == NameFixStatus.APPROVED else fix.name_on_file
    text = (
        f"{asker} :white_check_mark: <@{fix.decided_by}> verified the name: "
        f"*{esc(verified)}* can get a PIN now."
    )
    return text, [
        SectionBlock(text=_text(text)),
        ActionsBlock(
            block_id="name_fix_next",
            elements=[
                ButtonElement(
                    text="Issue PINs…",
                    action_id=IssueIds.OPEN_DIALOG,
                    style="primary",
                    value=FamilyRef(family_id=fix.family_id).dump(),
                )
            ],
        ),
    ]
