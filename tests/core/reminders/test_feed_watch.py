"""The silent-feed warning at the top of the digest (SPEC §8): weekday hours only, in the
practice's zone, posted through the real outbox to the fake Slack even on a day with nothing
else to remind."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.db import Database
from bot.reminders.feed_watch import weekday_hours_between
from bot.reminders.sweep import run_daily
from handlers.digest import render_digest
from models import FeedMessage
from tests.core.reminders.test_reminders import REMIND, deliver_all, make_outbox, make_settings
from tests.support.fake_slack import FakeSlack

TZ = ZoneInfo("America/New_York")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


def test_only_monday_to_friday_hours_count() -> None:
    # The weekend of the DST change (Sunday 03/08): Friday 17-24 h and Monday 0-9 h.
    friday_5pm, monday_9am = local(2026, 3, 6, 17), local(2026, 3, 9, 9)
    assert weekday_hours_between(friday_5pm, monday_9am, TZ) == 7 + 9
    assert weekday_hours_between(local(2026, 3, 9, 9), local(2026, 3, 10, 9), TZ) == 24


@pytest.mark.parametrize(
    ("last", "warned"),
    [
        (local(2026, 3, 5, 9), True),  # Thursday 09:00 → Monday 08:00: 15 + 24 + 8 = 47 h
        (local(2026, 3, 6, 9), False),  # Friday 09:00: 15 + 8 = 23 h < 24
        (None, True),  # configured and never a message
    ],
)
def test_the_digest_says_the_feed_is_silent_at_the_top(
    database: Database,
    database_url: str,
    fake_slack: FakeSlack,
    last: datetime | None,
    warned: bool,
) -> None:
    settings = make_settings(database_url, fake_slack.url, HL7_PORT="2575", HL7_SILENT_HOURS="24")
    if last is not None:
        with database.transaction() as session:
            session.add(
                FeedMessage(
                    control_id="C1", message_type="ADT^A04", ack_code="AA", received_at=last
                )
            )
    result = run_daily(database, settings, now=local(2026, 3, 9, 8), render=render_digest)
    deliver_all(make_outbox(database, settings))

    posts = [c.args for c in fake_slack.calls_to("chat.postMessage")]
    if not warned:
        assert posts == [] and result.entries == 0  # nothing to say: nothing posted
        return
    (post,) = posts
    blocks = json.loads(post["blocks"]) if isinstance(post["blocks"], str) else post["blocks"]
    assert post["channel"] == REMIND and "the EHR feed is silent" in post["text"]
    assert blocks[1]["block_id"] == "feed_silent"
    expected = "silent for 47 weekday hours" if last else "has not sent a single message yet"
    assert expected in blocks[1]["text"]["text"]


def test_no_warning_without_a_feed(
    database: Database, database_url: str, fake_slack: FakeSlack
) -> None:
    settings = make_settings(database_url, fake_slack.url)
    run_daily(database, settings, now=local(2026, 3, 9, 8), render=render_digest)
    deliver_all(make_outbox(database, settings))
    assert fake_slack.calls_to("chat.postMessage") == []
