"""The /family answers' blocks, built as Block Kit JSON (handlers/blocks.py `JsonBlock`), are
what slack_sdk's own models make of them: each block parsed into its model and validated by
its to_dict() comes back unchanged, for cards and lists at their limits (long names, mrkdwn
characters, flagged children, no children, more children or hits than a message holds)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.families.record import ChildRecord, FamilyRecord, GuardianRecord
from bot.lookup.search import FamilyHit
from handlers.blocks import MAX_MESSAGE_BLOCKS, family_card, family_choices
from handlers.ids import FamilyIds, IssueIds, NameFixIds
from handlers.payloads import ChildRef, FamilyRef

LONG = "Ölübrünnen-<@U123>*_~`&" * 20  # mrkdwn characters, and past every length limit


def _as_slack_sdk_sees_it(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parsed = [Block.parse(block) for block in blocks]
    assert all(p is not None and type(p) is not Block for p in parsed)  # a known block type
    return [p.to_dict() for p in parsed if p is not None]  # to_dict() validates


def _guardian(gid: int, name: str = "Jane Smith") -> GuardianRecord:
    return GuardianRecord(
        id=gid, name=name, relationship="Mother", masked_email="j•••@e•••.com",
        masked_phone="•••-•••-0101", has_email=True, has_portal_account=gid % 2 == 0,
        language="es" if gid == 2 else None,
    )  # fmt: skip


def _child(
    cid: int, name: str = "Ava Smith", flag: str | None = None, pending: bool = False
) -> ChildRecord:
    return ChildRecord(
        id=cid, chart_id=f"C{cid}", first_name=name.split()[0], full_name=name,
        dob=date(2019, 3, 2), age_label="7 y", age_years=7,
        pin_status=("none", "active", "registered", "locked", "expired")[cid % 5],
        pin_since=date(2026, 1, 2), pin_expires=date(2026, 2, 2), name_flag=flag,
        pending_name_fix=pending, ineligible_reason=None, pin_changed=date(2026, 1, 9),
    )  # fmt: skip


def _family(
    guardians: tuple[GuardianRecord, ...], children: tuple[ChildRecord, ...]
) -> FamilyRecord:
    return FamilyRecord(
        id=42, account_number="A-42", surname=LONG, guardians=guardians, children=children
    )


FAMILIES = {
    "usual": _family((_guardian(1), _guardian(2)), (_child(1), _child(2))),
    "long names": _family((_guardian(1, LONG),), (_child(3, LONG),)),
    "flagged": _family(
        (_guardian(1),), (_child(4, "Baby Boy", flag="a placeholder"), _child(5, "B G", "x", True))
    ),
    "no one on file": _family((), ()),
    "more children than fit": _family((_guardian(1),), tuple(_child(i) for i in range(1, 60))),
}


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_the_card_is_valid_block_kit(family: FamilyRecord) -> None:
    blocks = family_card(family)
    assert _as_slack_sdk_sees_it(blocks) == blocks
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    actions = blocks[-1]
    assert actions["block_id"] == "family_actions"
    assert actions["elements"][0]["action_id"] == IssueIds.OPEN_DIALOG
    assert FamilyRef.load(actions["elements"][0]["value"]).family_id == 42


def test_a_flagged_child_offers_a_name_fix_unless_one_is_pending() -> None:
    blocks = family_card(FAMILIES["flagged"])
    offered = [b["accessory"] for b in blocks if "accessory" in b]
    assert [b["action_id"] for b in offered] == [NameFixIds.REQUEST]
    assert ChildRef.load(offered[0]["value"]).patient_id == 4


@pytest.mark.parametrize("count", [0, 1, 10, 80])
def test_the_list_of_families_is_valid_block_kit(count: int) -> None:
    hits = [
        FamilyHit(i, f"A-{i}", 80, f"child {LONG}", f"{LONG} — Ava (2019-03-02)")
        for i in range(1, count + 1)
    ]
    blocks = family_choices(LONG, hits)
    assert _as_slack_sdk_sees_it(blocks) == blocks
    assert len(blocks) == min(count + 1, MAX_MESSAGE_BLOCKS)
    buttons = [b["accessory"] for b in blocks[1:]]
    assert all(b["action_id"] == FamilyIds.OPEN for b in buttons)
    assert [FamilyRef.load(b["value"]).family_id for b in buttons] == list(
        range(1, len(buttons) + 1)
    )
