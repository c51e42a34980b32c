"""The work lists staff ask for, rendered for Slack: today's appointments needing attention
and the name fixes waiting for a supervisor (`/pinbot today`, `/pinbot pending`)."""

from __future__ import annotations

from slack_sdk import WebClient
from sqlmodel import Session

from bot.reminders.worklists import (
    AttentionItem,
    PendingFix,
    pending_name_fixes,
    todays_attention,
)
from bot.services import Services
from handlers.blocks import esc

MAX_LINES = 40


def today_text(session: Session, services: Services) -> str:
    items = todays_attention(session, services.today())
    if not items:
        return "Nothing needs attention among today's appointments. :tada:"
    lines = [
        f"• {item.starts_at:%H:%M} *{esc(item.child_name)}* (account "
        f"{esc(item.account_number)}): {esc(item.needs)}"
        for item in items[:MAX_LINES]
    ]
    more = f"\n…and {len(items) - MAX_LINES} more." if len(items) > MAX_LINES else ""
    return f"{_today_heading(items)}\n" + "\n".join(lines) + more


def _today_heading(items: list[AttentionItem]) -> str:
    """The count, split the way the Home tab counts: "without portal access" there is the
    first number here."""
    no_access = sum(1 for item in items if item.no_access)
    split = [f"{no_access} without portal access"]
    if len(items) > no_access:
        split.append(f"{len(items) - no_access} with access but an unofficial name")
    return f"*Today's appointments needing attention ({len(items)}: {', '.join(split)})*"


def _link(client: WebClient, channel: str | None, ts: str | None) -> str:
    if not (channel and ts):
        return ""
    try:
        link = client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
        return f" <{link}|open request>"
    except Exception:
        return ""


def _pending_line(fix: PendingFix, client: WebClient, services: Services) -> str:
    asked = fix.requested_at.astimezone(services.settings.timezone)
    link = _link(client, fix.channel_id, fix.message_ts or fix.thread_ts)
    return (
        f"• *{esc(fix.child_name)}* → {esc(fix.proposed_name)}, asked by "
        f"<@{fix.requested_by}> {asked:%m/%d %H:%M}{link}"
    )


def pending_text(session: Session, services: Services, client: WebClient) -> str:
    fixes = pending_name_fixes(session)
    if not fixes:
        return "No name fixes are waiting."
    lines = [_pending_line(f, client, services) for f in fixes[:MAX_LINES]]
    return f"*Name fixes waiting for a supervisor ({len(fixes)})*\n" + "\n".join(lines)
