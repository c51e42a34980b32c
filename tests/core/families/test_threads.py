"""Which card thread is which family's (bot/families/threads.py), on SQLite and PostgreSQL:
the thread the Issue PINs dialog keeps using (this channel, 7 days) and the one news about
the family is told in (any channel, 30 days: the feed's and the portal API's notices)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.db import Database
from bot.delivery.notices import PinRegistered
from bot.families.threads import news_thread, recent_thread, tell_family
from models import FamilyThread, OutgoingWork
from tests.support.factories import make_family

NOW = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
FRONT, BILLING = "C0FRONTDESK", "C0BILLING"


def _cards(database: Database, *cards: tuple[str, str, timedelta]) -> int:
    """A family and its cards: (channel, ts, age at NOW)."""
    with database.transaction() as session:
        family = make_family(session, "TH-1001")
        assert family.id is not None
        for channel, ts, age in cards:
            session.add(
                FamilyThread(
                    family_id=family.id,
                    channel_id=channel,
                    thread_ts=ts,
                    posted_by="U0STAFF01",
                    posted_at=NOW - age,
                )
            )
        return family.id


def _told(database: Database, family_id: int) -> list[OutgoingWork]:
    """Tell the family its PIN was used; what that queued."""
    with database.transaction() as session:
        tell_family(
            session,
            family_id=family_id,
            now=NOW,
            dedupe_key="test:registered",
            notice=PinRegistered(child_first_name="Ava"),
        )
    with database.read_session() as session:
        return list(session.exec(select(OutgoingWork)).all())


def test_news_goes_to_the_latest_card_in_any_channel_within_30_days(database: Database) -> None:
    family = _cards(
        database,
        (FRONT, "1.000100", timedelta(days=20)),
        (BILLING, "2.000100", timedelta(days=29, hours=23)),
        (BILLING, "3.000100", timedelta(days=12)),
    )
    with database.read_session() as session:
        news = news_thread(session, family_id=family, now=NOW)
        kept_using = recent_thread(session, family_id=family, channel_id=FRONT, now=NOW)
    assert news is not None and (news.channel_id, news.thread_ts) == (BILLING, "3.000100")
    assert kept_using is None  # the front desk's card is 20 days old: the dialog starts anew


def test_a_card_older_than_30_days_is_told_nothing(database: Database) -> None:
    family = _cards(database, (FRONT, "1.000100", timedelta(days=30, minutes=1)))
    with database.read_session() as session:
        assert news_thread(session, family_id=family, now=NOW) is None
    assert _told(database, family) == []


def test_the_dialog_keeps_its_own_channels_card_for_7_days(database: Database) -> None:
    family = _cards(
        database,
        (FRONT, "1.000100", timedelta(days=6, hours=23)),
        (BILLING, "2.000100", timedelta(hours=1)),
    )
    with database.read_session() as session:
        front = recent_thread(session, family_id=family, channel_id=FRONT, now=NOW)
        later = recent_thread(
            session, family_id=family, channel_id=FRONT, now=NOW + timedelta(hours=2)
        )
    assert front is not None and front.thread_ts == "1.000100"
    assert later is None


def test_telling_the_family_queues_the_notice_in_its_news_thread(database: Database) -> None:
    family = _cards(database, (FRONT, "1.000100", timedelta(days=3)))
    (work,) = _told(database, family)
    payload = json.loads(work.payload)
    assert (payload["channel_id"], payload["thread_ts"]) == (FRONT, "1.000100")
    assert payload["notice"]["kind"] == "pin_registered"
    assert (work.family_id, work.dedupe_key) == (family, "test:registered")
