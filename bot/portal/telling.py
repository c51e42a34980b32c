"""What staff are told when the portal API changes a PIN or a client misbehaves: typed notices
queued in the recording transaction (delivered after commit, like every thread message)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bot.config import Settings
from bot.delivery import keys, outbox
from bot.delivery.notices import PinLocked, PinRegistered, PortalClientSlowed
from bot.families.threads import tell_family
from bot.portal.answers import Client
from bot.portal.pins import WRONG_DOBS_TO_LOCK, FoundPin
from models import Guardian

log = logging.getLogger(__name__)


def tell_family_about(
    session: Session, found: FoundPin, kind: Literal["registered", "locked"], now: datetime
) -> None:
    """The family's thread is told the PIN was used, or locked by wrong dates of birth."""
    notice = (
        PinRegistered(child_first_name=found.first_name)
        if kind == "registered"
        else PinLocked(child_first_name=found.first_name, wrong_dobs=WRONG_DOBS_TO_LOCK)
    )
    tell_family(
        session,
        family_id=found.family_id,
        now=now,
        dedupe_key=keys.portal_notice(kind, found.id),
        notice=notice,
    )


def mark_has_account(session: Session, recipient_id: int | None, now: datetime) -> None:
    """The guardian the batch was sent to has a portal account now, and so does every guardian
    with the same email in any family (one person): their next issuance takes the add-child
    path. (A family whose PINs were all printed is known by its redeemed PIN instead:
    bot/issuing/validation.py.)"""
    if recipient_id is None:
        return
    key = session.exec(select(Guardian.match_key).where(Guardian.id == recipient_id)).first()
    same_person = col(Guardian.id) == recipient_id
    if key and not key.startswith("name:"):
        same_person = or_(same_person, col(Guardian.match_key) == key)
    session.execute(
        update(Guardian)
        .where(same_person, col(Guardian.has_portal_account).is_(False))
        .values(has_portal_account=True, updated_at=now)
    )


def staff_channel(settings: Settings) -> str | None:
    """Where a misbehaving client is reported: the digest's channel, else the staff channel."""
    return settings.reminder_channel_id or next(iter(settings.allowed_channel_ids), None)


def tell_client_slowed(
    session: Session,
    settings: Settings,
    client: Client,
    *,
    failures: int,
    retry_after_seconds: int,
    now: datetime,
) -> None:
    channel = staff_channel(settings)
    if channel is None:
        log.warning("portal client slowed; no staff channel to tell", extra={"client": client.id})
        return
    outbox.post_in_thread(
        session,
        dedupe_key=keys.portal_client_alarm(client.id, now),
        channel_id=channel,
        thread_ts=None,
        notice=PortalClientSlowed(
            client_name=client.name, failures=failures, retry_after_seconds=retry_after_seconds
        ),
    )
