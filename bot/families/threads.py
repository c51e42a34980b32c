"""Family threads: which card (channel + ts) belongs to which family, and which of them is
told the news about the family (the feed's and the portal API's notices)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot import audit
from bot.db import table_of
from bot.delivery import outbox
from bot.delivery.notices import ThreadNotice
from bot.errors import NotAllowed
from models import FamilyThread, utcnow

REUSE_THREAD_FOR = timedelta(days=7)
# News about a family goes to its card's thread when pinbot posted the card in the last 30
# days (SPEC §8, §11); an older thread is likely closed in staff's minds.
NEWS_THREAD_FOR = timedelta(days=30)


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
    return _latest_card(
        session, family_id, (now or utcnow()) - REUSE_THREAD_FOR, channel_id=channel_id
    )


def news_thread(session: Session, *, family_id: int, now: datetime) -> FamilyThread | None:
    """Where news about the family is told (the EHR renamed or merged a chart, a PIN was used
    or locked in the portal): its latest card in any channel, if pinbot posted it in the last
    30 days; None when there is none, and then no thread is told."""
    return _latest_card(session, family_id, now - NEWS_THREAD_FOR)


def tell_family(
    session: Session, *, family_id: int, now: datetime, dedupe_key: str, notice: ThreadNotice
) -> None:
    """Queue `notice` in the family's news thread, if it has one (posted after commit)."""
    thread = news_thread(session, family_id=family_id, now=now)
    if thread is None:
        return
    outbox.post_in_thread(
        session,
        dedupe_key=dedupe_key,
        channel_id=thread.channel_id,
        thread_ts=thread.thread_ts,
        family_id=family_id,
        notice=notice,
    )


def _latest_card(
    session: Session, family_id: int, since: datetime, *, channel_id: str | None = None
) -> FamilyThread | None:
    """The family's latest card posted since `since`, in `channel_id` or (None) any channel."""
    query = select(FamilyThread).where(
        FamilyThread.family_id == family_id, FamilyThread.posted_at >= since
    )
    if channel_id is not None:
        query = query.where(FamilyThread.channel_id == channel_id)
    return session.exec(query.order_by(col(FamilyThread.posted_at).desc())).first()


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
