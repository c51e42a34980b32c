"""/pinbot help | today | pending. The Home tab's buttons post the same lists (handlers/home.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.reminders.worklists import PendingFix, pending_name_fixes, todays_attention
from bot.services import Services
from handlers.blocks import esc
from handlers.errors import answered
from handlers.ids import Commands

HELP = """*pinbot* issues patient-portal PINs for whole families.
• `/family <query>` — find a family by last name (typos are fine), “last, first”, child or \
guardian name, phone, email, account number, chart id or date of birth (MM/DD/YYYY). \
One match posts the family card here; the card is the family's thread.
• On the card, *Issue PINs…* opens the dialog: pick the children and who gets the one \
welcome email. Every other PIN is printed from the PDF that appears in the thread.
• `/pin <child>` — open the Issue PINs dialog for that child's family.
• `/pinbot today` — today's appointments with no portal access or an unofficial name.
• `/pinbot pending` — name fixes waiting for a supervisor.
Newborns still registered as “Baby Girl/Boy” get no PIN: use *Request name fix* on the card."""

MAX_LINES = 40


def today_text(services: Services) -> str:
    with services.database.read_session() as session:
        items = todays_attention(session, services.today())
    if not items:
        return "Nothing needs attention among today's appointments. :tada:"
    lines = [
        f"• {item.starts_at:%H:%M} *{esc(item.child_name)}* (account "
        f"{esc(item.account_number)}): {esc(item.needs)}"
        for item in items[:MAX_LINES]
    ]
    more = f"\n…and {len(items) - MAX_LINES} more." if len(items) > MAX_LINES else ""
    return f"*Today's appointments needing attention ({len(items)})*\n" + "\n".join(lines) + more


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


def pending_text(services: Services, client: WebClient) -> str:
    with services.database.read_session() as session:
        fixes = pending_name_fixes(session)
    if not fixes:
        return "No name fixes are waiting."
    lines = [_pending_line(f, client, services) for f in fixes[:MAX_LINES]]
    return f"*Name fixes waiting for a supervisor ({len(fixes)})*\n" + "\n".join(lines)


def pinbot_command(
    ack: Ack, respond: Respond, command: dict[str, Any], client: WebClient, services: Services
) -> None:
    verb = (command.get("text") or "").strip().lower()
    if verb == "today":
        ack(text=today_text(services))
    elif verb == "pending":
        ack()  # permalinks are one API call each: answer after the 3-second ack
        respond(text=pending_text(services, client), response_type="ephemeral")
    else:
        ack(text=HELP)


def register(app: App) -> None:
    app.command(Commands.PINBOT)(answered(pinbot_command))
