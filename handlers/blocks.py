"""Block Kit builders: pure functions from plain data to slack_sdk models (validated by
slack_sdk on to_dict()). They never touch the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.families.record import ChildRecord, FamilyRecord, GuardianRecord
from bot.languages import ENGLISH, english_name
from bot.lookup.search import FamilyHit, PatientHit
from bot.text import mrkdwn_literal
from handlers.ids import FamilyIds, IssueIds, NameFixIds
from handlers.payloads import ChildRef, FamilyRef

MAX_MESSAGE_BLOCKS = 50
# User text in mrkdwn goes through the one escaping function (bot/text.py says how).
esc = mrkdwn_literal


def plain(value: object, limit: int) -> str:
    """User text for a plain_text field, cut to Block Kit's limit for it."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def us_date(value: date | None) -> str:
    return value.strftime("%m/%d/%Y") if value else "—"


def _guardian_line(guardian: GuardianRecord) -> str:
    relationship = f" ({esc(guardian.relationship)})" if guardian.relationship else ""
    account = "yes" if guardian.has_portal_account else "no"
    # English is what the letters default to; any other language is worth a glance (SPEC §9).
    language = (
        f" · Prefers {esc(english_name(guardian.language))}"
        if guardian.language and guardian.language != ENGLISH
        else ""
    )
    return (
        f"• {esc(guardian.name)}{relationship} · {esc(guardian.masked_email)} · "
        f"{guardian.masked_phone} · portal account: {account}{language}"
    )


def pin_status_text(child: ChildRecord) -> str:
    if child.pin_status == "active":
        return f"active since {us_date(child.pin_since)}"
    if child.pin_status == "registered":
        return f"registered {us_date(child.pin_changed)}" if child.pin_changed else "registered"
    if child.pin_status == "locked":
        return "locked (5 wrong dates of birth in the portal): issue PINs again"
    if child.pin_status == "expired":
        return f"expired {us_date(child.pin_expires)}" if child.pin_expires else "expired"
    return "none"


def _child_block(family: FamilyRecord, child: ChildRecord) -> SectionBlock:
    text = (
        f"*{esc(child.full_name)}* · DOB {us_date(child.dob)} ({child.age_label}) · "
        f"PIN: {pin_status_text(child)}"
    )
    accessory = None
    if child.name_flag:
        text += f"\n:warning: Unofficial name — {esc(child.name_flag)}. No PIN until it is fixed."
        if child.pending_name_fix:
            text += " A name fix is waiting for a supervisor."
        else:
            accessory = ButtonElement(
                text="Request name fix",
                action_id=NameFixIds.REQUEST,
                value=ChildRef(family_id=family.id, patient_id=child.id).dump(),
            )
    return SectionBlock(
        text=MarkdownTextObject(text=text[:3000]), accessory=accessory, block_id=f"child_{child.id}"
    )


def family_card(family: FamilyRecord) -> list[Block]:
    header = plain(f"Family {family.surname} · account {family.account_number}", 150)
    guardians = "\n".join(_guardian_line(g) for g in family.guardians) or "No guardian on file."
    blocks: list[Block] = [
        HeaderBlock(text=header),
        SectionBlock(text=MarkdownTextObject(text=f"*Guardians*\n{guardians}"[:3000])),
        DividerBlock(),
    ]
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 2
    children = family.children
    blocks += [_child_block(family, c) for c in children[:room]]
    if len(children) > room:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {len(children) - room} more children: "
                        "open the Issue PINs dialog."
                    )
                ]
            )
        )
    if not children:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="No children on file.")))
    blocks.append(
        ActionsBlock(
            block_id="family_actions",
            elements=[
                ButtonElement(
                    text="Issue PINs…",
                    action_id=IssueIds.OPEN_DIALOG,
                    style="primary",
                    value=FamilyRef(family_id=family.id).dump(),
                )
            ],
        )
    )
    return blocks


def card_fallback_text(family: FamilyRecord) -> str:
    # A message's text is mrkdwn too (and what notifications show).
    return f"Family {esc(family.surname)} (account {esc(family.account_number)})"


def family_choices(query: str, hits: Sequence[FamilyHit]) -> list[Block]:
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"{len(hits)} families match “{esc(query)}”, best first:")
        )
    ]
    for hit in hits[: MAX_MESSAGE_BLOCKS - 1]:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=f"{esc(hit.label)}\n_{esc(hit.matched_on)}_"[:3000]),
                accessory=ButtonElement(
                    text="Open",
                    action_id=FamilyIds.OPEN,
                    value=FamilyRef(family_id=hit.family_id).dump(),
                ),
            )
        )
    return blocks


def child_choices(query: str, hits: Sequence[PatientHit]) -> list[Block]:
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"{len(hits)} children match “{esc(query)}”, best first:")
        )
    ]
    for hit in hits[: MAX_MESSAGE_BLOCKS - 1]:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=esc(hit.label)[:3000]),
                accessory=ButtonElement(
                    text="Issue PINs…",
                    action_id=FamilyIds.PICK_CHILD,
                    value=ChildRef(family_id=hit.family_id, patient_id=hit.patient_id).dump(),
                ),
            )
        )
    return blocks


def no_match(query: str) -> str:
    return (
        f"No family matches “{esc(query)}”. Try a last name, “last, first”, a phone "
        "number, an email, a date of birth (MM/DD/YYYY), an account number or a chart id."
    )


def blocks_json(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]
