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
from bot.lookup.search import FamilyHit, PatientHit, is_single_match, search_families
from bot.services import Services
from handlers.blocks import card_fallback_text, family_card, family_choices, no_match
from handlers.errors import answered
from handlers.ids import Commands, FamilyIds
from handlers.payloads import FamilyRef
from handlers.replies import click_thread, request_channel

log = logging.getLogger(__name__)

Hit = TypeVar("Hit", FamilyHit, PatientHit)

NOT_IN_CHANNEL = "pinbot isn't in this channel yet. Type /invite @pinbot here, then try again."


def post_family_card(
    client: WebClient, services: Services, *, family_id: int, channel_id: str, user_id: str
) -> str:
    """Post the family's card in the channel; its message becomes the family's thread."""
    with services.database.read_session() as session:
        family = load_family(
            session,
            family_id,
            today=services.today(),
            minor_age_limit=services.settings.minor_age_limit,
        )
    try:
        response = client.chat_postMessage(
            channel=channel_id, text=card_fallback_text(family), blocks=family_card(family)
        )
    except SlackApiError as error:
        if error.response.get("error") in {"not_in_channel", "channel_not_found"}:
            raise PinbotError(NOT_IN_CHANNEL) from error
        raise
    with services.database.transaction() as session:
        threads.record_card(
            session,
            family_id=family_id,
            channel_id=channel_id,
            thread_ts=response["ts"],
            posted_by=user_id,
        )
    return str(response["ts"])


def search_or_answer(
    ack: Ack,
    services: Services,
    command: dict[str, Any],
    search: Callable[[Session, str], Sequence[Hit]],
) -> Sequence[Hit] | None:
    """Run a lookup and audit it. An unusable query or no match is answered here (None);
    otherwise the hits are the caller's to answer."""
    query = (command.get("text") or "").strip()
    try:
        with services.database.read_session() as session:
            hits = search(session, query)
    except PinbotError as error:
        ack(text=error.user_message)
        return None
    with services.database.transaction() as session:
        audit.record(
            session,
            actor=command["user_id"],
            action="family.search",
            command=command.get("command"),
            results=len(hits),
            family_id=hits[0].family_id if len(hits) == 1 else None,
        )
    if not hits:
        ack(text=no_match(query))
        return None
    return hits


def family_command(
    ack: Ack, command: dict[str, Any], client: WebClient, services: Services
) -> None:
    hits = search_or_answer(ack, services, command, search_families)
    if hits is None:
        return
    if is_single_match(hits):
        ack()
        post_family_card(
            client,
            services,
            family_id=hits[0].family_id,
            channel_id=command["channel_id"],
            user_id=command["user_id"],
        )
    else:
        ack(
            text=f"{len(hits)} families match.",
            blocks=family_choices(command["text"].strip(), hits),
        )


def open_family(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, services: Services
) -> None:
    ack()
    ref = FamilyRef.load(action.get("value"))
    channel = request_channel(body) or ""
    # "Open" sits on search results and digests; one inside a family's thread opens only
    # that family.
    with services.database.read_session() as session:
        threads.check_thread_family(
            session, channel_id=channel, thread_ts=click_thread(body), family_id=ref.family_id
        )
    post_family_card(
        client, services, family_id=ref.family_id, channel_id=channel, user_id=body["user"]["id"]
    )


def register(app: App) -> None:
    app.command(Commands.FAMILY)(answered(family_command))
    app.action(FamilyIds.OPEN)(answered(open_family))
