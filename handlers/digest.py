"""The daily reminder digest as Block Kit: a pure function from bot.reminders.digest.Digest to Slack
messages (plain dicts the outbox posts). Built with slack_sdk.models, so Block Kit's limits are
checked when the blocks are serialized.

Every message stays within Slack's 50 blocks: a section shows at most SECTION_CAP entries and
counts the rest, and the blocks are split over as many messages as needed (three at most: five
sections of a title, SECTION_CAP entries and a count line).
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.reminders.digest import Digest, DigestEntry, DigestSection, Section
from bot.reminders.feed_watch import FeedSilence
from handlers.blocks import MAX_MESSAGE_BLOCKS, blocks_json, esc, plain
from handlers.ids import FamilyIds
from handlers.payloads import FamilyRef

SECTION_TITLES = {
    Section.UNOFFICIAL_NAMES: ":baby: Unofficial names with a visit in the next two business days",
    Section.PENDING_NAME_FIXES: ":hourglass: Name fixes waiting for a supervisor over 24 h",
    Section.UNREGISTERED_PINS: ":envelope: PINs issued 7+ days ago, not registered yet",
    Section.EXPIRING_PINS: ":alarm_clock: PINs expiring within 7 days",
    Section.NO_PORTAL_TODAY: ":calendar: Today's visits without portal access",
}
SECTION_CAP = 20  # entries shown per section; the rest are counted, never silently dropped
BODY_BLOCKS = MAX_MESSAGE_BLOCKS - 1  # every message opens with a header or "continued" line
MAX_TEXT = 3000  # a section block's text
_TITLE_PREFIX = "digest_title_"
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def render_digest(digest: Digest) -> list[dict[str, Any]]:
    """Messages of at most 50 blocks each: [{"text": fallback, "blocks": [...]}, ...]."""
    body = [block for section in digest.sections for block in _section_blocks(section)]
    if digest.feed_silence is not None:
        body.insert(0, _silence_block(digest.feed_silence))
    chunks = _chunks(body, BODY_BLOCKS)
    parts = len(chunks)
    return [
        {
            "text": _fallback(digest, part, parts),
            "blocks": blocks_json([_opening(digest, part, parts), *chunk]),
        }
        for part, chunk in enumerate(chunks, 1)
    ]


def silence_text(silence: FeedSilence) -> str:
    if silence.hours is None or silence.last_at is None:
        what = "*The EHR feed has not sent a single message yet.*"
    else:
        what = (
            f"*The EHR feed has been silent for {silence.hours} weekday hours* (last message "
            f"{silence.last_at:%a %m/%d %H:%M})."
        )
    return (
        f":warning: {what} New patients and name changes in the EHR are not reaching pinbot: "
        "ask the interface team to check the channel (`pinbot hl7 status` shows what arrived)."
    )


def _silence_block(silence: FeedSilence) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=silence_text(silence)), block_id="feed_silent")


def _section_blocks(section: DigestSection) -> list[Block]:
    entries = section.entries
    title = f"*{SECTION_TITLES[section.section]}* ({len(entries)})"
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=title), block_id=f"{_TITLE_PREFIX}{section.section}"
        )
    ]
    blocks += [_entry_block(entry) for entry in entries[:SECTION_CAP]]
    if len(entries) > SECTION_CAP:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {len(entries) - SECTION_CAP} more in this section."
                    )
                ]
            )
        )
    return blocks


def _entry_block(entry: DigestEntry) -> SectionBlock:
    text = (
        f"*{esc(plain(entry.child, 200))}* · account {esc(entry.account_number)}\n"
        f"{esc(entry.needed)}"
    )
    return SectionBlock(
        text=MarkdownTextObject(text=_clip(text, MAX_TEXT)),
        accessory=ButtonElement(
            text="Open family",
            action_id=FamilyIds.OPEN,
            value=FamilyRef(family_id=entry.family_id).dump(),
        ),
    )


def _clip(text: str, limit: int) -> str:
    """Cut escaped mrkdwn to a limit without leaving half an entity such as "&am"."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def _chunks(blocks: list[Block], size: int) -> list[list[Block]]:
    """Consecutive runs of at most `size` blocks; a section title never ends a run (it moves
    to the next message with its first entry)."""
    chunks: list[list[Block]] = [[]]
    for block in blocks:
        current = chunks[-1]
        if len(current) == size or (len(current) == size - 1 and _is_title(block)):
            chunks.append([])
        chunks[-1].append(block)
    return chunks


def _is_title(block: Block) -> bool:
    return (block.block_id or "").startswith(_TITLE_PREFIX)


def _opening(digest: Digest, part: int, parts: int) -> Block:
    day = f"{digest.local_date:%a %m/%d}"
    if part == 1:
        suffix = f" · part 1 of {parts}" if parts > 1 else ""
        return HeaderBlock(text=plain(f"Front desk reminders · {day}{suffix}", 150))
    return ContextBlock(
        elements=[
            MarkdownTextObject(
                text=f"*Front desk reminders · {day}* (continued, part {part} of {parts})"
            )
        ]
    )


def _fallback(digest: Digest, part: int, parts: int) -> str:
    count = f"{digest.total} item{'s' if digest.total != 1 else ''}"
    suffix = f" (part {part} of {parts})" if parts > 1 else ""
    silent = " · the EHR feed is silent" if digest.feed_silence and part == 1 else ""
    return f"Front desk reminders for {digest.local_date:%a %m/%d}: {count}{suffix}{silent}"
