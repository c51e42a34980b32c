"""Family threads: which card (channel + ts) belongs to which family."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot import audit
from bot.db import table_of
from bot.errors import NotAllowed
from models import FamilyThread, utcnow

REUSE_THREAD_FOR = timedelta(days=7)


_INSERT_THREAD = insert(table_of(FamilyThread))  # built once: every card posted writes one


def record_card(
    session: Session, *, family_id: int, channel_id: str, thread_ts: str, posted_by: str
) -> None:
    """The card's message is the family's thread in that channel (a plain INSERT: it runs
    after every /family card, and the unit of work would add a flush and a RETURNING)."""
    session.execute(
        _INSERT_THREAD,
        {
            "family_id": family_id,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
            "posted_by": posted_by,
            "posted_at": utcnow(),
        },
    )
    audit.record(
        session, actor=posted_by, action="family.card", family_id=family_id, channel=channel_id
    )


def recent_thread(
    session: Session, *, family_id: int, channel_id: str, now: datetime | None = None
) -> FamilyThread | None:
    """The family's latest card in this channel, if recent enough to keep using."""
    since = (now or utcnow()) - REUSE_THREAD_FOR
    return session.exec(
        select(FamilyThread)
        .where(
            FamilyThread.family_id == family_id,
            FamilyThread.channel_id == channel_id,
            FamilyThread.posted_at >= since,
        )
        .order_by(col(FamilyThread.posted_at).desc())
    ).first()


def latest_card_since(session: Session, *, family_id: int, since: datetime) -> FamilyThread | None:
    """The family's latest card in any channel posted since `since`: where news about the
    family (a PIN used in the portal, a PIN locked) is told."""
    return session.exec(
        select(FamilyThread)
        .where(FamilyThread.family_id == family_id, FamilyThread.posted_at >= since)
        .order_by(col(FamilyThread.posted_at).desc())
    ).first()


def family_of_thread(session: Session, *, channel_id: str, thread_ts: str) -> int | None:
    return session.exec(
        select(FamilyThread.family_id).where(
            FamilyThread.channel_id == channel_id, FamilyThread.thread_ts == thread_ts
        )
    ).first()


def check_thread_family(
    session: Session, *, channel_id: str | None, thread_ts: str | None, family_id: int
) -> None:
    """A button's family must be the family of the card it sits under: a tampered or
    misplaced value can't act on another family."""
    if not channel_id or not thread_ts:
        return
    owner = family_of_thread(session, channel_id=channel_id, thread_ts=thread_ts)
    if owner is not None and owner != family_id:
        raise NotAllowed(
            "That button doesn't belong to this family's card. Search again with /family."
        )
