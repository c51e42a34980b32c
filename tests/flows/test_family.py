"""/family, /pin and /pinbot through signed requests, and who may use them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from handlers import serving
from handlers.ids import FamilyIds
from models import Appointment, AuditEvent, FamilyThread
from tests.support.ack_poll import DispatchSleeps, dispatch_sleeps_fixture
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import CHANNEL_ID, Response
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack, build_stack, eventually

FIXTURES = (dispatch_sleeps_fixture,)  # imported for its fixture


@pytest.fixture
def practice(stack: Stack) -> dict[str, int]:
    """Two Hollowbrook families (a common surname) and one Quillfeather family."""
    with stack.database.transaction() as session:
        quill = make_family(session, "QF-2001")
        make_guardian(
            session,
            quill,
            "Wren",
            "Quillfeather",
            email="wren.q@example.com",
            phone="(555) 010-2001",
        )
        ava = make_patient(
            session, quill, "Ava", date(2019, 3, 2), last="Quillfeather", chart="CH-77001"
        )
        first = make_family(session, "HB-3001")
        make_guardian(
            session, first, "Moss", "Hollowbrook", email="moss.h@example.org", phone="555-010-3001"
        )
        make_patient(session, first, "Ivy", date(2020, 5, 5), last="Hollowbrook")
        second = make_family(session, "HB-3002")
        make_guardian(
            session, second, "Fern", "Hollowbrook", email="fern.h@example.org", phone="555-010-3002"
        )
        make_patient(session, second, "Oak", date(2017, 8, 8), last="Hollowbrook")
        session.add(
            Appointment(
                patient_id=ava.id or 0,
                starts_at=datetime.combine(stack.services.today(), datetime.min.time())
                + timedelta(hours=9),
            )
        )
    return {"quill": quill.id or 0, "hb1": first.id or 0, "hb2": second.id or 0}


def reply_text(response: Response) -> str:
    """What the user sees of a command's immediate reply: Slack shows a plain-text body as an
    ephemeral message, a JSON body by its text."""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return str(response.json().get("text", ""))
    return response.text


def _card_families(stack: Stack) -> list[str]:
    texts = []
    for card in stack.cards():
        blocks = card["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        texts.append(blocks[0]["text"]["text"])
    return texts


@pytest.mark.parametrize(
    "query",
    [
        "quillfeather",
        "Quilfeather",
        "quillfether",
        "quillfeather, ava",
        "Ava Quillfeathr",
        "wren quillfeather",
        "(555) 010-2001",
        "555.010.2001",
        "+1 555 010 2001",
        "5550102001",
        "WREN.Q@example.com",
        "QF-2001",
        "ch-77001",
        "03/02/2019",
        "2019-03-02",
    ],
)
def test_each_query_kind_posts_the_one_card(
    stack: Stack, practice: dict[str, int], query: str
) -> None:
    response = stack.command("/family", query)
    assert response.status == 200
    stack.fake_slack.wait_for("chat.postMessage")
    assert _card_families(stack) == ["Family Quillfeather · account QF-2001"]

    def recorded_thread() -> FamilyThread:
        with stack.database.read_session() as session:
            threads = session.exec(select(FamilyThread)).all()
        assert len(threads) == 1
        return threads[0]

    thread = eventually(recorded_thread)
    assert thread.family_id == practice["quill"] and thread.channel_id == CHANNEL_ID


def test_several_matches_answer_with_a_list_and_open_buttons(
    stack: Stack, practice: dict[str, int]
) -> None:
    response = stack.command("/family", "hollowbrook")
    body = response.json()
    buttons = [b["accessory"] for b in body["blocks"] if b.get("accessory")]
    assert len(buttons) == 2 and all(b["action_id"] == FamilyIds.OPEN for b in buttons)
    assert stack.cards() == []  # nothing posted in the channel yet

    stack.click(FamilyIds.OPEN, buttons[1]["value"], is_ephemeral=True)
    stack.fake_slack.wait_for("chat.postMessage")
    assert len(stack.cards()) == 1 and "Hollowbrook" in _card_families(stack)[0]


def _audit(stack: Stack, action: str) -> list[AuditEvent]:
    with stack.database.read_session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_every_lookup_is_audited_after_the_card_the_list_and_a_failed_post(
    stack: Stack, practice: dict[str, int]
) -> None:
    """The lookup's audit row is written after the answer (issue 13 §4), never instead of it:
    with the card and its thread, with a list, and on its own when the post fails."""
    stack.command("/family", "QF-2001")
    stack.fake_slack.wait_for("chat.postMessage")
    card = eventually(lambda: _single(_audit(stack, "family.search")))
    assert json.loads(card.details)["results"] == 1 and card.family_id == practice["quill"]
    assert eventually(lambda: _single(_audit(stack, "family.card"))).family_id == card.family_id

    stack.command("/family", "hollowbrook")
    searches = eventually(lambda: _exactly(_audit(stack, "family.search"), 2))
    assert json.loads(searches[-1].details)["results"] == 2 and searches[-1].family_id is None

    stack.fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    stack.command("/family", "ch-77001")
    searches = eventually(lambda: _exactly(_audit(stack, "family.search"), 3))
    assert searches[-1].family_id == practice["quill"]
    assert len(_audit(stack, "family.card")) == 1  # no card, no thread: the post failed
    with stack.database.read_session() as session:
        assert len(session.exec(select(FamilyThread)).all()) == 1


def _check(condition: bool) -> None:
    assert condition


def _single(events: list[AuditEvent]) -> AuditEvent:
    assert len(events) == 1
    return events[0]


def _exactly(events: list[AuditEvent], count: int) -> list[AuditEvent]:
    assert len(events) == count
    return sorted(events, key=lambda e: e.id or 0)


def test_no_match_gives_a_hint_and_posts_nothing(stack: Stack, practice: dict[str, int]) -> None:
    assert "No family matches" in reply_text(stack.command("/family", "zzyzx"))
    assert stack.cards() == []


@pytest.mark.parametrize("text", ["", "   ", "!!!", "x" * 500])
def test_unusable_queries_get_a_sentence(stack: Stack, practice: dict[str, int], text: str) -> None:
    response = stack.command("/family", text)
    assert response.status == 200 and reply_text(response)
    assert stack.cards() == []


@pytest.mark.parametrize(
    ("query", "audited"),
    [("hollowbrook", True), ("zzyzx", True), ("!!!", False)],
    ids=["list", "no-match", "unusable"],
)
def test_an_answer_in_the_ack_is_written_before_the_request_s_bookkeeping(
    stack: Stack,
    practice: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    audited: bool,
) -> None:
    """Issue 22: the listener's work after an answer in the ack (the audit row, releasing its
    session) waits until the server has written the answer, so it does not compete with the
    thread sending it. Judged by the order of the two, not by a timing."""
    order: list[str] = []
    close = serving._Written.close

    def written(self: serving._Written) -> None:
        # A slow send: time for a listener that did not wait to write its row first.
        threading.Event().wait(0.05)
        order.append("answer written")
        close(self)

    monkeypatch.setattr(serving._Written, "close", written)

    @event.listens_for(stack.database.engine, "before_cursor_execute")
    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        if text.startswith(("INSERT INTO auditevent", "ROLLBACK", "BEGIN")):
            order.append(text.split()[0])

    order.clear()
    assert reply_text(stack.command("/family", query))
    eventually(lambda: _exactly(_audit(stack, "family.search"), 1 if audited else 0))
    eventually(lambda: _check("answer written" in order))
    event.remove(stack.database.engine, "before_cursor_execute", statement)
    written_at = order.index("answer written")
    assert "INSERT" not in order[:written_at]
    if audited:
        assert "INSERT" in order[written_at:]


@pytest.mark.parametrize(
    ("query", "answer"),
    [("hollowbrook", "2 families match."), ("zzyzx", "No family matches"), ("!!!", "")],
    ids=["list", "no-match", "unusable"],
)
def test_answers_in_the_ack_leave_without_a_poll(
    stack: Stack, practice: dict[str, int], dispatch_sleeps: DispatchSleeps, query: str, answer: str
) -> None:
    """Issue 22: an answer carried by ack() leaves when ack() is called. Bolt's own runner
    would poll for it with time.sleep(0.01) on the answering thread: no sleep there at all."""
    response = stack.command("/family", query)
    assert response.status == 200 and answer in reply_text(response) and reply_text(response)
    assert dispatch_sleeps.callers == []


def test_forged_and_stale_signatures_are_refused(stack: Stack, practice: dict[str, int]) -> None:
    forged = stack.sender.raw(
        b"command=%2Ffamily&text=quillfeather&user_id=U0STAFF01",
        {"X-Slack-Signature": "v0=" + "0" * 64},
    )
    stale = stack.sender.command(
        "/family", "quillfeather", channel_id=CHANNEL_ID, timestamp=int(time.time()) - 6 * 60
    )
    unsigned = stack.sender.raw(b"command=%2Ffamily&text=quillfeather", signed=False)
    assert [forged.status, stale.status, unsigned.status] == [401, 401, 401]
    time.sleep(0.2)  # give a wrongly accepted request the chance to post
    assert stack.fake_slack.calls_to("chat.postMessage") == []
    with stack.database.read_session() as session:
        assert session.exec(select(AuditEvent)).all() == []


@pytest.fixture
def locked_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server, ALLOWED_CHANNEL_IDS="C0STAFFONLY")


def test_commands_outside_allowed_channels_are_refused_and_audited(locked_stack: Stack) -> None:
    refusal_text = reply_text(locked_stack.command("/family", "anything", channel_id=CHANNEL_ID))
    assert "staff channels" in refusal_text
    assert locked_stack.fake_slack.calls_to("chat.postMessage") == []
    with locked_stack.database.read_session() as session:
        refusal = session.exec(select(AuditEvent)).one()
    assert refusal.action == "refused" and "channel" in refusal.details


def test_guests_are_refused(stack: Stack, practice: dict[str, int]) -> None:
    stack.fake_slack.add_user("U0GUEST01", is_restricted=True)
    assert "guest" in reply_text(stack.command("/family", "quillfeather", user_id="U0GUEST01"))
    assert stack.cards() == []


def test_pin_command_opens_the_dialog_with_the_child_preselected(
    stack: Stack, practice: dict[str, int]
) -> None:
    stack.command("/pin", "ava quillfeather")
    stack.fake_slack.wait_for("views.open")
    view = stack.opened_view()
    selected = [
        o["value"]
        for b in view["blocks"]
        if b.get("block_id") == "children"
        for o in b["element"].get("initial_options", [])
    ]
    assert len(selected) == 1
    stack.fake_slack.wait_for("chat.postMessage")  # the card that becomes the thread
    assert len(stack.cards()) == 1


def test_pinbot_help_and_today(stack: Stack, practice: dict[str, int]) -> None:
    help_text = reply_text(stack.command("/pinbot", "help"))
    assert "/family" in help_text and "/pin" in help_text
    today = reply_text(stack.command("/pinbot", "today"))
    assert "Ava Quillfeather" in today and "no portal access" in today


def test_healthz(stack: Stack) -> None:
    from tests.support.slack_requests import http_request

    response = http_request(stack.sender.url.replace("/slack/events", "/healthz"))
    assert response.status == 200 and response.json() == {"ok": True}


def test_pinbot_pending_lists_requests_with_links(stack: Stack, practice: dict[str, int]) -> None:
    from models import NameFix, Patient

    ts = stack.fake_slack.add_message(CHANNEL_ID, text="name fix request")
    with stack.database.transaction() as session:
        child = session.exec(select(Patient).where(Patient.first_name == "Ava")).one()
        session.add(
            NameFix(
                patient_id=child.id or 0,
                family_id=child.family_id,
                proposed_first="Avery",
                proposed_last="Quillfeather",
                confirmed_by="birth_certificate",
                requested_by="U0STAFF01",
                channel_id=CHANNEL_ID,
                thread_ts=ts,
                message_ts=ts,
            )
        )
    assert stack.command("/pinbot", "pending").status == 200
    reply = stack.fake_slack.wait_for("response_url")[0].args
    assert "Ava Quillfeather" in reply["text"] and "Avery Quillfeather" in reply["text"]
    assert stack.fake_slack.last("chat.getPermalink").args["message_ts"] == ts
    assert "open request>" in reply["text"]
