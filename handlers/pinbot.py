"""/pinbot help | today | pending: the usage text, or one of the work lists."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.services import Services
from handlers.ids import Commands
from handlers.pipeline import RequestDatabase, listener
from handlers.worklists import pending_text, today_text

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


def pinbot_command(
    ack: Ack,
    respond: Respond,
    command: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
) -> None:
    verb = (command.get("text") or "").strip().lower()
    if verb == "today":
        ack(text=today_text(db.reads, services))
    elif verb == "pending":
        ack()  # permalinks are one API call each: answer after the 3-second ack
        respond(text=pending_text(db.reads, services, client), response_type="ephemeral")
    else:
        ack(text=HELP)


def register(app: App) -> None:
    app.command(Commands.PINBOT)(listener(pinbot_command))
