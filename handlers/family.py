"""/family: search, then one card in the channel or an ephemeral list of choices."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot import audit
from bot.errors import PinbotError
from bot.families import threads
from bot.families.record import load_family
from bot.lookup.search import (
    FamilyMatch,
    PatientHit,
    find_families,
    is_single_match,
    label_families,
)
from bot.services import Services
from handlers.blocks import card_fallback_text, family_card, family_choices, no_match
from handlers.ids import Commands, FamilyIds
from handlers.payloads import FamilyRef
from handlers.pipeline import RequestDatabase, Staff, listener
from handlers.replies import click_thread

log = logging.getLogger(__name__)

Hit = TypeVar("Hit", FamilyMatch, PatientHit)

NOT_IN_CHANNEL = "pinbot isn't in this channel yet. Type /invite @pinbot here, then try again."


def post_family_card(
    client: WebClient, services: Services, db: RequestDatabase, *, family_id: int, staff: Staff
) -> str:
    """Post the family's card in the channel; its message becomes the family's thread (the
    record is written after the post, in the request's transaction)."""
    family = load_family(
        db.reads,
        family_id,
        today=services.today(),
        zone=services.settings.timezone,
        minor_age_limit=services.settings.minor_age_limit,
    )
    channel_id = staff.channel_id or ""
    try:
        response = client.chat_postMessage(
            channel=channel_id, text=card_fallback_text(family), blocks=family_card(family)
        )
    except SlackApiError as error:
        if error.response.get("error") in {"not_in_channel", "channel_not_found"}:
            raise PinbotError(NOT_IN_CHANNEL) from error
        raise
    threads.record_card(
        db.writes,
        family_id=family_id,
        channel_id=channel_id,
        thread_ts=response["ts"],
        posted_by=staff.user_id,
    )
    return str(response["ts"])


def search_or_answer(
    ack: Ack,
    db: RequestDatabase,
    command: dict[str, Any],
    search: Callable[[Session, str], Sequence[Hit]],
) -> Sequence[Hit] | None:
    """Run a lookup. An unusable query (None) or no match (no hits) is answered here; otherwise
    the hits are the caller's to answer."""
    query = (command.get("text") or "").strip()
    try:
        hits = search(db.reads, query)
    except PinbotError as error:
        ack(text=error.user_message)
        return None
    if not hits:
        ack(text=no_match(query))
    return hits


def audit_lookup(session: Session, command: dict[str, Any], hits: Sequence[Hit]) -> None:
    """Every lookup is on the record: what was asked (the command, never the text) and how many
    answers. Written after the answer, in the request's transaction: it need not delay it."""
    audit.record(
        session,
        actor=command["user_id"],
        action="family.search",
        command=command.get("command"),
        results=len(hits),
        family_id=hits[0].family_id if len(hits) == 1 else None,
    )


def family_command(
    ack: Ack,
    command: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    # Ranked without labels: a single match opens the card, which loads the family itself.
    found = search_or_answer(ack, db, command, find_families)
    if found is None:
        return
    if found and is_single_match(found):
        ack()
        try:
            post_family_card(client, services, db, family_id=found[0].family_id, staff=staff)
        except Exception:
            with db.independent() as session:  # the lookup stays on the record
                audit_lookup(session, command, found)
            raise
    elif found:
        hits = label_families(db.reads, found)
        ack(
            text=f"{len(hits)} families match.",
            blocks=family_choices(command["text"].strip(), hits),
        )
    audit_lookup(db.writes, command, found)


def open_family(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    services: Services,
    db: RequestDatabase,
    staff: Staff,
) -> None:
    ack()
    ref = FamilyRef.load(action.get("value"))
    # "Open" sits on search results and digests; one inside a family's thread opens only
    # that family.
    threads.check_thread_family(
        db.reads,
        channel_id=staff.channel_id or "",
        thread_ts=click_thread(body),
        family_id=ref.family_id,
    )
    post_family_card(client, services, db, family_id=ref.family_id, staff=staff)


def register(app: App) -> None:
    app.command(Commands.FAMILY)(listener(family_command))
    app.action(FamilyIds.OPEN)(listener(open_family))
