"""Name fixes end to end, driven the way Slack drives them (SPEC §5): the card's "Request name
fix" → dialog → a request in the family thread mentioning the supervisors → refusals for
everyone but a supervisor who didn't ask → approval edits the request and replies with "Issue
PINs…", from which the child gets a PIN in the same thread. Also rejection, "this is the real
name", two supervisors at once, a user-group supervisor, and an import closing a request."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from sqlmodel import select

from bot.importing.importer import import_families
from handlers.ids import IssueIds, NameFixIds
from models import NameFix, NameFixStatus, Patient, Pin, PinStatus
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    CHANNEL_ID,
    STAFF_USER_ID,
    checkboxes_value,
    plain_text_value,
    radio_value,
    static_select_value,
)
from tests.support.smtp_server import SmtpServer
from tests.support.stack import SUPERVISOR_ID, Stack, build_stack

SECOND_SUPERVISOR = "U0SUPER02"
GROUP_MEMBER = "U0SUPER03"
BOSSES_GROUP = "S0BOSSES01"
OTHER_STAFF = "U0DESK002"


@pytest.fixture
def two_boss_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    fake_slack.add_user(SECOND_SUPERVISOR, name="second-supervisor")
    yield from build_stack(
        database_url, fake_slack, smtp_server, SUPERVISOR_IDS=f"{SUPERVISOR_ID},{SECOND_SUPERVISOR}"
    )


@pytest.fixture
def group_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    fake_slack.add_user(GROUP_MEMBER, name="group-supervisor")
    fake_slack.add_usergroup(BOSSES_GROUP, [GROUP_MEMBER])
    yield from build_stack(database_url, fake_slack, smtp_server, SUPERVISOR_IDS=BOSSES_GROUP)


def add_family(stack: Stack) -> dict[str, int]:
    """The Quillfeathers: Ava (7) and a newborn still registered as "Baby Girl" (NB)."""
    with stack.database.transaction() as session:
        family = make_family(session, "QF-2001")
        mother = make_guardian(
            session,
            family,
            "Wren",
            "Quillfeather",
            email="wren.quillfeather@example.com",
            phone="555.010.2001",
        )
        ids = {
            "family": family.id,
            "mother": mother.id,
            "ava": make_patient(session, family, "Ava", date(2019, 3, 2), last="Quillfeather").id,
            "baby": make_patient(
                session,
                family,
                "Baby Girl",
                date(2026, 11, 10),
                last="Quillfeather",
                name_type="NB",
            ).id,
        }
    return {k: v or 0 for k, v in ids.items()}


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        e
        for b in blocks_of(message)
        for e in b.get("elements") or [b.get("accessory")]
        if e and e.get("action_id") == action_id
    )


def has_button(message: dict[str, Any], action_id: str) -> bool:
    return any(
        e and e.get("action_id") == action_id
        for b in blocks_of(message)
        for e in b.get("elements") or [b.get("accessory")]
    )


class Thread:
    """One family card and its name-fix request, as the test sees them in Slack."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.slack = stack, stack.fake_slack
        assert stack.command("/family", "quillfeather").status == 200
        card = self.slack.wait_for("chat.postMessage")[-1]
        self.card_ts: str = card.response["ts"]
        self.request_ts = ""

    def card(self) -> dict[str, Any]:
        return self.slack.message(CHANNEL_ID, self.card_ts)

    def open_request_dialog(self, user: str = STAFF_USER_ID) -> dict[str, Any]:
        views = len(self.slack.calls_to("views.open"))
        value = button(self.card(), NameFixIds.REQUEST)["value"]
        self.stack.click(NameFixIds.REQUEST, value, user_id=user, message_ts=self.card_ts)
        self.slack.wait_for("views.open", views + 1)
        return self.stack.opened_view()

    def submit_request(
        self, view: dict[str, Any], *, first: str = "Juniper", user: str = STAFF_USER_ID
    ) -> Any:
        return self.stack.submit(
            view,
            {
                NameFixIds.FIRST: {NameFixIds.FIRST_ACTION: plain_text_value(first)},
                NameFixIds.MIDDLE: {NameFixIds.MIDDLE_ACTION: plain_text_value(None)},
                NameFixIds.LAST: {NameFixIds.LAST_ACTION: plain_text_value("Quillfeather")},
                NameFixIds.CONFIRMED_BY: {
                    NameFixIds.CONFIRMED_BY_ACTION: radio_value("birth_certificate")
                },
                NameFixIds.NOTE: {NameFixIds.NOTE_ACTION: plain_text_value("Mom showed the BC")},
            },
            user_id=user,
        )

    def request(self, *, first: str = "Juniper", user: str = STAFF_USER_ID) -> dict[str, Any]:
        posts = len(self.slack.calls_to("chat.postMessage"))
        response = self.submit_request(self.open_request_dialog(user), first=first, user=user)
        assert response.status == 200 and response.body in (b"", b"{}"), response.body
        call = self.slack.wait_for("chat.postMessage", posts + 1)[-1]
        self.request_ts = call.response["ts"]
        # The bot records the message's ts right after posting it; buttons are checked
        # against it from then on.
        wait_until(lambda: recorded(self.stack, self.request_ts))
        return self.request_message()

    def request_message(self) -> dict[str, Any]:
        return self.slack.message(CHANNEL_ID, self.request_ts)

    def click_decision(self, action_id: str, user: str) -> None:
        value = (
            button(self.request_message(), action_id)["value"]
            if has_button(self.request_message(), action_id)
            else self._original_value(action_id)
        )
        response = self.stack.click(
            action_id, value, user_id=user, message_ts=self.request_ts, thread_ts=self.card_ts
        )
        assert response.status == 200

    def _original_value(self, action_id: str) -> str:
        """A stale client still shows the buttons the request was posted with."""
        call = next(
            c
            for c in self.slack.calls_to("chat.postMessage")
            if c.response.get("ts") == self.request_ts
        )
        return str(button(call.args, action_id)["value"])

    def ephemerals(self, count: int) -> list[str]:
        return [c.args["text"] for c in self.slack.wait_for("chat.postEphemeral", count)]

    def replies(self) -> list[dict[str, Any]]:
        return [
            m
            for m in self.slack.messages(CHANNEL_ID)
            if m.get("thread_ts") == self.card_ts and m["ts"] != self.request_ts
        ]


def fix_of(stack: Stack) -> NameFix:
    with stack.database.read_session() as session:
        return session.exec(select(NameFix)).one()


def recorded(stack: Stack, message_ts: str) -> bool:
    with stack.database.read_session() as session:
        return (
            session.exec(select(NameFix).where(NameFix.message_ts == message_ts)).first()
            is not None
        )


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def patient(stack: Stack, patient_id: int) -> Patient:
    with stack.database.read_session() as session:
        found = session.get(Patient, patient_id)
        assert found is not None
        return found


def test_request_refusals_approval_and_a_pin_in_the_same_thread(two_boss_stack: Stack) -> None:
    stack = two_boss_stack
    ids = add_family(stack)
    thread = Thread(stack)
    assert "Request name fix" in json.dumps(blocks_of(thread.card()))

    # A supervisor asks: the request lands in the card's thread, mentioning the supervisors.
    message = thread.request(user=SECOND_SUPERVISOR)
    assert message["thread_ts"] == thread.card_ts
    assert f"<@{SUPERVISOR_ID}> <@{SECOND_SUPERVISOR}>" in message["text"]
    assert "Juniper Quillfeather" in message["text"]
    fix = fix_of(stack)
    assert (fix.channel_id, fix.thread_ts, fix.message_ts) == (
        CHANNEL_ID,
        thread.card_ts,
        thread.request_ts,
    )

    # Front desk, then the supervisor who asked: refused ephemerally, nothing changes.
    thread.click_decision(NameFixIds.APPROVE, STAFF_USER_ID)
    thread.click_decision(NameFixIds.APPROVE, SECOND_SUPERVISOR)
    staff_refusal, own_refusal = thread.ephemerals(2)
    assert "Only a supervisor" in staff_refusal and "You asked for this name fix" in own_refusal
    assert fix_of(stack).status == NameFixStatus.PENDING
    assert stack.fake_slack.calls_to("chat.update") == []

    # The other supervisor approves: the request shows who decided, its buttons are gone.
    thread.click_decision(NameFixIds.APPROVE, SUPERVISOR_ID)
    stack.fake_slack.wait_for("chat.update")
    edited = thread.request_message()
    assert not has_button(edited, NameFixIds.APPROVE) and not has_button(edited, NameFixIds.REJECT)
    assert f"Approved by <@{SUPERVISOR_ID}> <!date^" in json.dumps(blocks_of(edited))
    baby = patient(stack, ids["baby"])
    assert (baby.first_name, baby.name_verified) == ("Juniper", True)

    # A stale Approve on the decided request says who won.
    thread.click_decision(NameFixIds.APPROVE, SECOND_SUPERVISOR)
    assert f"already approved by <@{SUPERVISOR_ID}>" in thread.ephemerals(3)[-1]

    # The reply's "Issue PINs…" opens the dialog with the child eligible; its PIN follows.
    stack.fake_slack.wait_for("chat.postMessage", 3)  # card, request, reply
    reply = next(m for m in thread.replies() if has_button(m, IssueIds.OPEN_DIALOG))
    assert f"<@{SECOND_SUPERVISOR}>" in reply["text"]
    stack.click(
        IssueIds.OPEN_DIALOG,
        button(reply, IssueIds.OPEN_DIALOG)["value"],
        message_ts=reply["ts"],
        thread_ts=thread.card_ts,
    )
    view = stack.fake_slack.wait_for("views.open", 2)[-1].response["view"]
    offered = [
        o["value"]
        for b in view["blocks"]
        if b.get("block_id") == IssueIds.CHILDREN
        for o in b["element"]["options"]
    ]
    assert str(ids["baby"]) in offered
    response = stack.submit(
        view,
        {
            IssueIds.CHILDREN: {IssueIds.CHILDREN_ACTION: checkboxes_value([str(ids["baby"])])},
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value("none")},
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
        },
    )
    assert response.status == 200 and response.body in (b"", b"{}"), response.body
    stack.deliver()
    with stack.database.read_session() as session:
        pin = session.exec(select(Pin)).one()
    assert (pin.patient_id, pin.status) == (ids["baby"], PinStatus.ACTIVE)
    uploads = stack.fake_slack.uploaded_files()
    assert len(uploads) == 1 and uploads[0].thread_ts == thread.card_ts


def test_rejection_asks_for_a_reason_and_tells_the_requester(stack: Stack) -> None:
    ids = add_family(stack)
    thread = Thread(stack)
    thread.request()

    # Another front-desk user can't even open the reason dialog.
    stack.fake_slack.add_user(OTHER_STAFF, name="frontdesk2")
    thread.click_decision(NameFixIds.REJECT, OTHER_STAFF)
    assert "Only a supervisor" in thread.ephemerals(1)[0]
    assert len(stack.fake_slack.calls_to("views.open")) == 1  # the request dialog only

    thread.click_decision(NameFixIds.REJECT, SUPERVISOR_ID)
    dialog = stack.fake_slack.wait_for("views.open", 2)[-1].response["view"]
    empty = stack.submit(
        dialog,
        {NameFixIds.REASON: {NameFixIds.REASON_ACTION: plain_text_value("  ")}},
        user_id=SUPERVISOR_ID,
    )
    assert empty.json()["response_action"] == "errors"
    assert NameFixIds.REASON in empty.json()["errors"]
    assert fix_of(stack).status == NameFixStatus.PENDING

    done = stack.submit(
        dialog,
        {
            NameFixIds.REASON: {
                NameFixIds.REASON_ACTION: plain_text_value("The birth certificate says Junie")
            }
        },
        user_id=SUPERVISOR_ID,
    )
    assert done.status == 200 and done.body in (b"", b"{}"), done.body
    stack.fake_slack.wait_for("chat.update")
    edited = json.dumps(blocks_of(thread.request_message()))
    assert "Rejected by" in edited and "The birth certificate says Junie" in edited
    assert not has_button(thread.request_message(), NameFixIds.APPROVE)
    stack.fake_slack.wait_for("chat.postMessage", 3)
    told = thread.replies()[-1]["text"]
    assert f"<@{STAFF_USER_ID}>" in told and "The birth certificate says Junie" in told
    fix = fix_of(stack)
    assert (fix.status, fix.decided_by) == (NameFixStatus.REJECTED, SUPERVISOR_ID)
    assert patient(stack, ids["baby"]).first_name == "Baby Girl"
    # Rejected, the child may get a new request.
    assert thread.open_request_dialog()["callback_id"] == NameFixIds.CALLBACK


def test_this_is_the_real_name_verifies_the_name_on_file(stack: Stack) -> None:
    ids = add_family(stack)
    thread = Thread(stack)
    thread.request(first="Baby Girl")  # "the name on file is right": a false-flag request

    thread.click_decision(NameFixIds.CONFIRM_AS_IS, SUPERVISOR_ID)

    stack.fake_slack.wait_for("chat.update")
    assert "Confirmed as the child's real name" in json.dumps(blocks_of(thread.request_message()))
    baby = patient(stack, ids["baby"])
    assert (baby.first_name, baby.name_verified) == ("Baby Girl", True)
    stack.fake_slack.wait_for("chat.postMessage", 3)
    assert any(has_button(m, IssueIds.OPEN_DIALOG) for m in thread.replies())


def test_two_supervisors_approving_at_once_make_one_decision(two_boss_stack: Stack) -> None:
    stack = two_boss_stack
    add_family(stack)
    thread = Thread(stack)
    thread.request()
    start = threading.Barrier(2)

    def approve(user: str) -> None:
        start.wait()
        thread.click_decision(NameFixIds.APPROVE, user)

    clickers = [
        threading.Thread(target=approve, args=(u,)) for u in (SUPERVISOR_ID, SECOND_SUPERVISOR)
    ]
    for clicker in clickers:
        clicker.start()
    for clicker in clickers:
        clicker.join(20)

    (loser_text,) = thread.ephemerals(1)
    stack.fake_slack.wait_for("chat.postMessage", 3)  # card, request, the winner's reply
    fix = fix_of(stack)
    assert fix.status == NameFixStatus.APPROVED
    assert f"already approved by <@{fix.decided_by}>" in loser_text
    assert len(stack.fake_slack.calls_to("chat.update")) == 1
    assert len(stack.fake_slack.calls_to("chat.postEphemeral")) == 1


def test_a_reason_typed_while_another_supervisor_approved_changes_nothing(
    two_boss_stack: Stack,
) -> None:
    stack = two_boss_stack
    add_family(stack)
    thread = Thread(stack)
    thread.request()
    thread.click_decision(NameFixIds.REJECT, SUPERVISOR_ID)
    dialog = stack.fake_slack.wait_for("views.open", 2)[-1].response["view"]
    thread.click_decision(NameFixIds.APPROVE, SECOND_SUPERVISOR)
    stack.fake_slack.wait_for("chat.update")

    late = stack.submit(
        dialog,
        {NameFixIds.REASON: {NameFixIds.REASON_ACTION: plain_text_value("Wrong spelling")}},
        user_id=SUPERVISOR_ID,
    )

    assert late.status == 200 and late.body in (b"", b"{}")  # the dialog just closes
    assert f"already approved by <@{SECOND_SUPERVISOR}>" in thread.ephemerals(1)[0]
    fix = fix_of(stack)
    assert (fix.status, fix.decided_by, fix.decision_note) == (
        NameFixStatus.APPROVED,
        SECOND_SUPERVISOR,
        "",
    )
    assert len(stack.fake_slack.calls_to("chat.update")) == 1


def test_a_user_group_member_is_a_supervisor(group_stack: Stack) -> None:
    stack = group_stack
    ids = add_family(stack)
    thread = Thread(stack)
    assert f"<!subteam^{BOSSES_GROUP}>" in thread.request()["text"]

    thread.click_decision(NameFixIds.APPROVE, SUPERVISOR_ID)  # not a supervisor here
    assert "Only a supervisor" in thread.ephemerals(1)[0]
    thread.click_decision(NameFixIds.APPROVE, GROUP_MEMBER)

    stack.fake_slack.wait_for("chat.update")
    assert fix_of(stack).decided_by == GROUP_MEMBER
    assert patient(stack, ids["baby"]).name_verified is True
    lookups = stack.fake_slack.calls_to("usergroups.users.list")
    assert lookups and all(c.args["usergroup"] == BOSSES_GROUP for c in lookups)
    assert len(lookups) == 1  # cached between the two clicks


def test_an_import_with_the_real_name_closes_the_pending_request(stack: Stack) -> None:
    ids = add_family(stack)
    thread = Thread(stack)
    thread.request()
    with stack.database.read_session() as session:
        chart = session.get(Patient, ids["baby"]).chart_id  # type: ignore[union-attr]
    csv = (
        "account_number,patient_id,patient_first_name,patient_middle_name,patient_last_name,"
        "patient_dob,patient_sex,name_type,guardian_first_name,guardian_last_name,"
        "guardian_relationship,guardian_email,guardian_phone,guardian_has_portal_account\n"
        f"QF-2001,{chart},Juniper,,Quillfeather,2026-11-10,F,,Wren,Quillfeather,mother,"
        "wren.quillfeather@example.com,555.010.2001,no\n"
    )

    report = import_families(stack.database, io.StringIO(csv))
    stack.deliver()

    assert report.closed_name_fixes == 1 and fix_of(stack).status == NameFixStatus.CLOSED
    note = thread.replies()[-1]["text"]
    assert "Juniper Quillfeather" in note and "closed" in note
    assert stack.fake_slack.calls_to("chat.update") == []  # the import edits nothing else
    thread.click_decision(NameFixIds.APPROVE, SUPERVISOR_ID)
    assert "already closed" in thread.ephemerals(1)[0]
    assert patient(stack, ids["baby"]).name_verified is False


def test_a_request_slack_refuses_to_post_is_withdrawn(stack: Stack) -> None:
    add_family(stack)
    thread = Thread(stack)
    view = thread.open_request_dialog()
    stack.fake_slack.fail_next("chat.postMessage", error="not_in_channel")

    assert thread.submit_request(view).status == 200

    assert "nothing was requested" in thread.ephemerals(1)[0]
    assert fix_of(stack).status == NameFixStatus.CLOSED
    thread.request()  # the child can be asked for again at once
    assert thread.request_message()["thread_ts"] == thread.card_ts


def test_bad_input_gets_a_sentence_and_changes_nothing(stack: Stack) -> None:
    ids = add_family(stack)
    thread = Thread(stack)

    # Validation errors come back inside the dialog.
    view = thread.open_request_dialog()
    for first, message in (
        ("", "Enter the child's first name"),
        ("J" * 101, "longer than 100"),
        ("Ju\u0007niper", "control characters"),
        ("Babygirl", "still looks unofficial"),
    ):
        response = thread.submit_request(view, first=first)
        assert response.json()["response_action"] == "errors"
        assert message in response.json()["errors"][NameFixIds.FIRST]
    with stack.database.read_session() as session:
        assert session.exec(select(NameFix)).all() == []

    # A child of another family on this family's card; a child who needs no fix.
    with stack.database.transaction() as session:
        other = make_family(session, "ZZ-9")
        stranger = make_patient(session, other, "Baby Boy", date(2026, 11, 1), last="Zed")
    refs = [
        json.dumps({"family_id": other.id, "patient_id": stranger.id}),
        json.dumps({"family_id": ids["family"], "patient_id": ids["ava"]}),
        "not json",
    ]
    for value in refs:
        stack.click(NameFixIds.REQUEST, value, message_ts=thread.card_ts)
    texts = thread.ephemerals(3)
    assert any("doesn't belong to this family's card" in t for t in texts)
    assert any("no longer looks unofficial" in t for t in texts)
    assert any("out of date" in t for t in texts)

    # A decision button with a made-up id, and one moved under another message.
    thread.request()
    stack.click(
        NameFixIds.APPROVE,
        json.dumps({"name_fix_id": 987654}),
        user_id=SUPERVISOR_ID,
        message_ts=thread.request_ts,
        thread_ts=thread.card_ts,
    )
    stack.click(
        NameFixIds.APPROVE,
        button(thread.request_message(), NameFixIds.APPROVE)["value"],
        user_id=SUPERVISOR_ID,
        message_ts=thread.card_ts,
    )
    texts = thread.ephemerals(5)[3:]
    assert any("no longer in pinbot" in t for t in texts)
    assert any("doesn't belong to this name-fix request" in t for t in texts)
    assert fix_of(stack).status == NameFixStatus.PENDING
    assert stack.fake_slack.calls_to("chat.update") == []
