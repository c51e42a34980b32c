"""The Issue PINs dialog and its summary: builders (data -> slack_sdk models) and the parser
that turns a submitted view back into plain values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.documents.fonts import REPLACEMENT, undrawable
from bot.documents.locale import DEFAULT_LANGUAGE, letter_languages
from bot.errors import ValidationFailed
from bot.families.record import ChildRecord, FamilyRecord
from bot.issuing.requests import IssueField, IssueMode, IssueResult
from handlers.blocks import esc, plain, us_date
from handlers.ids import NO_EMAIL, IssueIds
from handlers.letter_language import choice_label, language_input
from handlers.payloads import MAX_ID, IssueDialogMeta

CHECKBOX_LIMIT = 10  # Block Kit's maximum options in one checkbox group


def _child_option(child: ChildRecord) -> Option:
    description = None
    if child.pin_status == "active":
        description = plain(
            f"Active PIN since {us_date(child.pin_since)}: issuing again replaces it", 75
        )
    return Option(
        value=str(child.id),
        description=description,
        label=plain(f"{child.full_name} · {us_date(child.dob)}", 75),
    )


def _children_inputs(children: Sequence[ChildRecord], preselected: set[int]) -> list[Block]:
    blocks: list[Block] = []
    for start in range(0, len(children), CHECKBOX_LIMIT):
        part = children[start : start + CHECKBOX_LIMIT]
        options = [_child_option(c) for c in part]
        initial = [o for o, c in zip(options, part, strict=True) if c.id in preselected]
        suffix = "" if start == 0 else f"_{start // CHECKBOX_LIMIT + 1}"
        blocks.append(
            InputBlock(
                block_id=f"{IssueIds.CHILDREN}{suffix}",
                label="Children" if start == 0 else "More children",
                optional=start > 0,
                element=CheckboxesElement(
                    action_id=IssueIds.CHILDREN_ACTION,
                    options=options,
                    initial_options=initial or None,
                ),
            )
        )
    return blocks


def _preferred_recipient(family: FamilyRecord) -> int | None:
    """Who the recipient select preselects: a guardian without an account (that is who a
    welcome email helps), else the first with an email; None when no guardian has one."""
    with_email = [g for g in family.guardians if g.has_email]
    chosen = next((g for g in with_email if not g.has_portal_account), None)
    return (chosen or with_email[0]).id if with_email else None


def _recipient_input(family: FamilyRecord) -> InputBlock:
    with_email = [g for g in family.guardians if g.has_email]
    options = [
        Option(
            value=str(g.id),
            label=plain(
                f"{g.name} ({g.relationship or 'guardian'}) · {g.masked_email}"
                + (" · has a portal account" if g.has_portal_account else ""),
                75,
            ),
        )
        for g in with_email
    ]
    options.append(Option(value=NO_EMAIL, label="No email — print every PIN"))
    preferred_id = _preferred_recipient(family)
    preferred = next((i for i, g in enumerate(with_email) if g.id == preferred_id), 0)
    return InputBlock(
        block_id=IssueIds.RECIPIENT,
        label="Welcome email to",
        hint="One welcome email per family. Everyone else's PIN is printed.",
        element=StaticSelectElement(
            action_id=IssueIds.RECIPIENT_ACTION, options=options, initial_option=options[preferred]
        ),
    )


def _emailed_child_input(children: Sequence[ChildRecord]) -> InputBlock:
    options = [Option(value=str(c.id), label=plain(c.full_name, 75)) for c in children[:100]]
    return InputBlock(
        block_id=IssueIds.EMAILED_CHILD,
        label="Email the PIN of",
        optional=True,
        hint="Leave empty for the oldest selected child; the others are printed.",
        element=StaticSelectElement(
            action_id=IssueIds.EMAILED_CHILD_ACTION,
            options=options,
            placeholder="Oldest selected child",
        ),
    )


def _ineligible_note(children: Sequence[ChildRecord]) -> list[Block]:
    lines = [
        f"• {esc(c.full_name)}: {esc(c.ineligible_reason)}" for c in children if not c.eligible
    ]
    if not lines:
        return []
    return [
        ContextBlock(
            elements=[MarkdownTextObject(text=("*Not eligible here*\n" + "\n".join(lines))[:3000])]
        )
    ]


def _undrawable_note(children: Sequence[ChildRecord]) -> list[Block]:
    """Names the letter's font cannot print exactly: staff should know before a parent holds
    a letter whose name differs from the portal's record."""
    lines = [
        f"• {esc(c.full_name)}: cannot print {esc(' '.join(missing))}"
        for c in children
        if (missing := undrawable(c.full_name))
    ]
    if not lines:
        return []
    intro = (
        f":warning: *Check these names before issuing.* The letter prints {REPLACEMENT} for "
        "characters its font does not have, so the name on paper will differ from the record:"
    )
    return [ContextBlock(elements=[MarkdownTextObject(text="\n".join([intro, *lines])[:3000])])]


def issue_dialog(
    family: FamilyRecord,
    meta: IssueDialogMeta,
    *,
    preselected: int | None = None,
    default_language: str = "en",
) -> View:
    eligible = family.eligible_children
    header = SectionBlock(
        text=MarkdownTextObject(
            text=f"*{esc(family.surname)}* · account {esc(family.account_number)}"
        )
    )
    if not eligible:
        return View(
            type="modal",
            callback_id=IssueIds.CALLBACK,
            title="Issue PINs",
            close="Close",
            private_metadata=meta.dump(),
            blocks=[
                header,
                SectionBlock(
                    text=MarkdownTextObject(text="No child in this family can get a PIN right now.")
                ),
                *_ineligible_note(family.children),
            ],
        )
    chosen = {preselected} if preselected else {c.id for c in eligible}
    blocks: list[Block] = [header, *_undrawable_note(eligible), *_children_inputs(eligible, chosen)]
    blocks += [_recipient_input(family), _emailed_child_input(eligible)]
    blocks.append(language_input(family, _preferred_recipient(family), default_language))
    blocks += _ineligible_note(family.children)
    return View(
        type="modal",
        callback_id=IssueIds.CALLBACK,
        title="Issue PINs",
        submit="Issue PINs",
        close="Cancel",
        private_metadata=meta.dump(),
        blocks=blocks,
    )


@dataclass(frozen=True)
class IssueForm:
    patient_ids: tuple[int, ...]
    recipient_guardian_id: int | None
    emailed_patient_id: int | None
    language: str | None  # None only when a submission lacks the block: issuance defaults it


def _dicts(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_state(view: dict[str, Any]) -> dict[str, Any]:
    """Flatten view.state.values to {block_id: value(s)}: one place that knows the shapes.
    Values are strings (a list of them for checkboxes) or None; anything else in a
    tampered payload is dropped rather than trusted."""
    flat: dict[str, Any] = {}
    for block_id, actions in _dicts(_dicts(view.get("state")).get("values")).items():
        for action in map(_dicts, _dicts(actions).values()):
            if action.get("type") == "checkboxes":
                options = action.get("selected_options")
                flat[block_id] = [_value(o) for o in options] if isinstance(options, list) else []
            elif "selected_option" in action:
                flat[block_id] = _value(action.get("selected_option"))
            else:
                flat[block_id] = _value(action)
    return flat


def _value(holder: Any) -> str | None:
    value = _dicts(holder).get("value")
    return value if isinstance(value, str) else None


TAMPERED = -1  # an option value no dialog offered: issuance rejects it as "not in this family"


def _as_id(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return TAMPERED
    return value if 1 <= value <= MAX_ID else TAMPERED


def read_issue_form(view: dict[str, Any]) -> IssueForm:
    """The submitted choices; raises ValidationFailed when the required recipient is missing
    (Slack always sends it: only a tampered submission lacks it, and it must not mean
    "no email")."""
    state = parse_state(view)
    children: list[int] = []
    for block_id, values in state.items():
        if block_id.startswith(IssueIds.CHILDREN) and isinstance(values, list):
            # Every ticked option has a value; an empty one was never offered.
            children += [_as_id(v) or TAMPERED for v in values]
    recipient = state.get(IssueIds.RECIPIENT)
    if recipient is None:
        raise ValidationFailed(
            {
                IssueField.RECIPIENT: "Choose who gets the welcome email, "
                "or “No email — print every PIN”."
            }
        )
    return IssueForm(
        patient_ids=tuple(children),
        recipient_guardian_id=None if recipient == NO_EMAIL else _as_id(recipient),
        emailed_patient_id=_as_id(state.get(IssueIds.EMAILED_CHILD)),
        language=state.get(IssueIds.LANGUAGE),
    )


def issue_summary(result: IssueResult, issued_by: str) -> str:
    emailed = next((c for c in result.children if c.patient_id == result.emailed_patient_id), None)
    printed = [c for c in result.children if c is not emailed]
    lines = [f":white_check_mark: <@{issued_by}> issued {len(result.children)} PIN(s)."]
    if result.mode == IssueMode.WELCOME and emailed is not None:
        lines.append(
            f"• Welcome email for *{esc(emailed.full_name)}* to "
            f"{esc(result.recipient_name)} ({esc(result.masked_email)}) — queued."
        )
    elif result.mode == IssueMode.ADD_CHILD:
        lines.append(f"• No welcome email: {esc(result.account_note or '')}")
    else:
        lines.append("• No welcome email: every PIN is printed.")
    if printed:
        names = ", ".join(f"*{esc(c.full_name)}*" for c in printed)
        lines.append(f"• Printed (Do not send PIN): {names}")
    languages = letter_languages(result.language)
    if languages != (DEFAULT_LANGUAGE,):
        pages = " (two pages per child)" if len(languages) > 1 else ""
        lines.append(f"• Letters in {choice_label(languages)}{pages}.")
    if result.replaced:
        lines.append(f"• {result.replaced} earlier PIN(s) revoked and replaced.")
    lines.append("The PIN letters PDF follows in this thread; hand it to the parent.")
    return "\n".join(lines)
