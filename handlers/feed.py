"""The live EHR feed's messages in family threads (SPEC §8), rendered from the typed notices
the core queues (bot/feed/changes.py → bot.delivery.outbox.post_notice): a flagged child the
EHR renamed gets "The EHR now has … (was …)" with **Issue PINs…**; a merged chart says what
was revoked and moved. bot.delivery.performers.PostRenderer."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from bot.feed.changes import EHR_RENAMED, MERGED
from handlers.blocks import esc
from handlers.ids import IssueIds
from handlers.payloads import FamilyRef


def render_post(notice: dict[str, Any]) -> dict[str, Any] | None:
    if notice.get("kind") == EHR_RENAMED:
        return _renamed(notice)
    if notice.get("kind") == MERGED:
        return _merged(notice)
    return None


def _renamed(notice: dict[str, Any]) -> dict[str, Any]:
    text = (
        f":information_source: The EHR now has *{esc(notice['new_name'])}* "
        f"(was {esc(notice['old_name'])}). The name is no longer a placeholder: PINs can be "
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
                    value=FamilyRef(family_id=notice["family_id"]).dump(),
                )
            ],
        ),
    ]
    return {"text": text, "blocks": [block.to_dict() for block in blocks]}


def _merged(notice: dict[str, Any]) -> dict[str, Any]:
    revoked, moved = notice["revoked_pins"], notice["moved_name_fixes"]
    parts = [
        f":twisted_rightwards_arrows: The EHR merged chart {esc(notice['merged_chart_id'])} "
        f"into {esc(notice['survivor_chart_id'])}."
    ]
    if revoked:
        parts.append(
            f"{revoked} active PIN{'s' if revoked != 1 else ''} of the merged chart "
            "revoked: issue PINs again from the surviving chart's family card."
        )
    if moved:
        parts.append(f"{moved} pending name fix{'es' if moved != 1 else ''} moved to it.")
    return {"text": " ".join(parts)}
