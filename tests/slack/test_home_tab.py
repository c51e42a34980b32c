"""The Home tab (SPEC §10) through signed app_home_opened events into the real Bolt app and the
fake Slack's views.publish (which checks Block Kit's limits), on SQLite and PostgreSQL: counts
only for staff, one sentence for a guest, figures cached for a minute, buttons that post the
lists into the staff channel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from bot.db import Database
from handlers.home import GUEST_SENTENCE, NO_STAFF_CHANNEL
from handlers.ids import HomeIds
from models import Appointment, FeedMessage, IssueBatch, NameFix, Pin, PinStatus
from tests.core.reports.history import NOW, local, seed_history
from tests.support.factories import make_family, make_patient, make_pin
from tests.support.fake_slack import Call, FakeSlack, view_problems
from tests.support.slack_requests import CHANNEL_ID, app_home_opened_event, block_actions_payload
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack, build_stack, eventually

GUEST_ID = "U0GUEST01"


def extra_workload(database: Database) -> list[str]:
    """On top of the history: a waiting name fix, one of today's visits by a child with no
    PIN (another child with an active PIN also visits), a PIN expiring in 3 days, a feed
    message two hours ago. Returns the PHI it adds."""
    with database.transaction() as session:
        family = make_family(session, "A7002")
        baby = make_patient(session, family, "Baby Girl", date(2026, 11, 20), last="Fernhollow",
                            chart="MRN77001", name_type="NB")  # fmt: skip
        sib = make_patient(session, family, "Linnea", date(2021, 5, 5), last="Fernhollow",
                           chart="MRN77002")  # fmt: skip
        session.add(NameFix(patient_id=baby.id or 0, family_id=family.id or 0,
                            proposed_first="Saffira", proposed_last="Fernhollow",
                            confirmed_by="birth_certificate", requested_by="U0STAFF01",
                            requested_at=NOW - timedelta(hours=3)))  # fmt: skip
        session.add(Appointment(patient_id=baby.id or 0, starts_at=datetime(2026, 12, 2, 15, 30)))
        session.add(Appointment(patient_id=sib.id or 0, starts_at=datetime(2026, 12, 2, 16, 0)))
        batch = IssueBatch(family_id=family.id or 0, idempotency_key="home:1",
                           issued_by="U0STAFF01", mode="print_only")  # fmt: skip
        session.add(batch)
        session.flush()
        session.add(Pin(patient_id=sib.id or 0, batch_id=batch.id or 0, pin_hash="scrypt$h",
                        delivery="printed", issued_by="U0STAFF01", issued_at=local(2026, 11, 20),
                        expires_at=NOW + timedelta(days=3), status=PinStatus.ACTIVE))  # fmt: skip
        session.add(FeedMessage(sending_application="EPIC", control_id="c1", message_type="ADT^A08",
                                ack_code="AA", received_at=NOW - timedelta(hours=2)))  # fmt: skip
    return ["Fernhollow", "Saffira", "Linnea", "MRN77001", "MRN77002", "2026-11-20", "A7002"]


def home_stack(
    database_url: str, fake_slack: FakeSlack, smtp: SmtpServer, **overrides: str
) -> Iterator[Stack]:
    for stack in build_stack(database_url, fake_slack, smtp, PRACTICE_TIMEZONE="America/New_York",
                             **overrides):  # fmt: skip
        stack.services.clock = lambda: NOW
        yield stack


@pytest.fixture
def staff_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    yield from home_stack(
        database_url, fake_slack, smtp_server, ALLOWED_CHANNEL_IDS=CHANNEL_ID, HL7_PORT="2575"
    )


def open_home(stack: Stack, user_id: str) -> Call:
    before = len(stack.fake_slack.calls_to("views.publish"))
    response = stack.sender.event(app_home_opened_event(user_id))
    assert response.status == 200, response.text
    calls = eventually(lambda: _published(stack, before))
    return calls[-1]


def _published(stack: Stack, before: int) -> list[Call]:
    calls = stack.fake_slack.calls_to("views.publish")
    assert len(calls) > before
    return calls


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


def test_staff_see_todays_workload_as_counts(staff_stack: Stack) -> None:
    phi = seed_history(staff_stack.database) + extra_workload(staff_stack.database)

    call = open_home(staff_stack, "U0STAFF01")

    assert call.ok, call.response
    assert call.args["user_id"] == "U0STAFF01"
    view = call.args["view"]
    assert view["type"] == "home" and view_problems(view) == []
    fields = [
        f["text"] for b in view["blocks"] if b["type"] == "section" for f in b.get("fields", [])
    ]
    assert fields == [
        "*1* name fix waiting for a supervisor",
        "*1* appointment today without portal access",  # the sibling has an active PIN
        "*1* PIN issued 7+ days ago, not registered",  # 2 Nov; the one of 20 Nov is expiring
        "*1* PIN expiring within 7 days",
    ]
    body = texts(view)
    assert "*50 %* of 6 PINs issued in the weeks of 7 Sep – 1 Nov 2026" in body
    assert "*EHR feed:* last message Wed 12/02 12:00 PM (2 h ago)." in body
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        HomeIds.POST_TODAY,
        HomeIds.POST_PENDING,
    ]
    for words in phi:
        assert words.lower() not in body.lower(), words


def test_a_guest_sees_one_sentence_and_no_figures(staff_stack: Stack) -> None:
    seed_history(staff_stack.database)
    staff_stack.fake_slack.add_user(GUEST_ID, name="guest", is_restricted=True)

    view = open_home(staff_stack, GUEST_ID).args["view"]

    assert view_problems(view) == []
    assert [b["text"]["text"] for b in view["blocks"]] == [GUEST_SENTENCE]
    assert not any(ch.isdigit() for ch in texts(view["blocks"]))


def test_many_openings_within_a_minute_cost_one_query_set(staff_stack: Stack) -> None:
    seed_history(staff_stack.database)
    first = open_home(staff_stack, "U0STAFF01").args["view"]
    with staff_stack.database.transaction() as session:  # a change the cache hides a minute
        session.add(Pin(patient_id=1, batch_id=1, pin_hash="scrypt$x", delivery="printed",
                        issued_by="U0STAFF01", issued_at=local(2026, 11, 3),
                        status=PinStatus.ACTIVE))  # fmt: skip

    staff_stack.services.clock = lambda: NOW + timedelta(seconds=59)
    again = open_home(staff_stack, "U0SUPER01").args["view"]
    assert again["blocks"] == first["blocks"]

    staff_stack.services.clock = lambda: NOW + timedelta(seconds=61)
    later = open_home(staff_stack, "U0STAFF01").args["view"]
    assert "*2* PINs issued 7+ days ago, not registered" in texts(later)


def test_the_buttons_post_the_lists_into_the_staff_channel(staff_stack: Stack) -> None:
    seed_history(staff_stack.database)
    extra_workload(staff_stack.database)
    view = open_home(staff_stack, "U0STAFF01").response["view"]

    lists = (
        (HomeIds.POST_TODAY, "Today's appointments needing attention (1: 1 without portal access)"),
        (HomeIds.POST_PENDING, "Name fixes waiting for a supervisor (1)"),
    )
    for action, heading in lists:
        payload = block_actions_payload(action, action.split("_")[-1], view=view)
        assert staff_stack.sender.block_action(payload).status == 200
        post = eventually(lambda h=heading: _post_with(staff_stack, h))
        assert post["channel"] == CHANNEL_ID
        assert post["text"].startswith("From <@U0STAFF01>'s Home tab:")


def _post_with(stack: Stack, heading: str) -> dict[str, Any]:
    posts = [p for p in stack.posted() if heading in p.get("text", "")]
    assert posts
    return posts[-1]


def test_without_allowed_channels_the_tab_says_how_to_get_buttons(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    for stack in home_stack(database_url, fake_slack, smtp_server):
        view = open_home(stack, "U0STAFF01").args["view"]
        assert view_problems(view) == []
        assert NO_STAFF_CHANNEL in texts(view)
        assert not [b for b in view["blocks"] if b["type"] == "actions"]
        assert "EHR feed" not in texts(view)  # HL7_PORT unset: no feed line


def test_home_and_pinbot_today_count_the_same_children(staff_stack: Stack) -> None:
    """The Home tab's "appointments today without portal access" is the first figure of
    `/pinbot today`'s heading, which also says how many more it lists and why."""
    with staff_stack.database.transaction() as session:
        family = make_family(session, "A7003")
        names = [("Oriel", ""), ("Baby Boy", "NB"), ("Baby Girl", "NB")]
        kids = [
            make_patient(
                session,
                family,
                first,
                date(2020, 3, 3),
                last="Brindlemoor",
                chart=f"MRN7810{n}",
                name_type=kind,
            )
            for n, (first, kind) in enumerate(names)
        ]
        for kid in kids:
            session.add(Appointment(patient_id=kid.id or 0, starts_at=datetime(2026, 12, 2, 9)))
        # Oriel visits twice today: one child, counted once in both places.
        session.add(Appointment(patient_id=kids[0].id or 0, starts_at=datetime(2026, 12, 2, 15)))
        make_pin(session, kids[2], issued_at=NOW - timedelta(days=1))  # access, unofficial name
    view = open_home(staff_stack, "U0STAFF01").response["view"]
    assert "*2* appointments today without portal access" in texts(view)

    payload = block_actions_payload(HomeIds.POST_TODAY, "today", view=view)
    assert staff_stack.sender.block_action(payload).status == 200
    heading = (
        "Today's appointments needing attention (3: 2 without portal access, "
        "1 with access but an unofficial name)"
    )
    post = eventually(lambda: _post_with(staff_stack, heading))
    assert post["text"].count("Oriel Brindlemoor") == 1
