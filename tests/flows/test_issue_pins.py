"""The main job end to end, driven the way Slack drives it: /family → card → Issue PINs… →
dialog submit → PINs, one welcome email over SMTP, one PDF of letters in the card's thread."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

import pytest
from pypdf import PdfReader
from sqlmodel import select

from bot.issuing.gateway import verify_pin
from handlers.ids import IssueIds
from models import Guardian, IssueBatch, Pin, PinStatus
from tests.support.ack_poll import DispatchSleeps, dispatch_sleeps_fixture
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.slack_requests import checkboxes_value, static_select_value
from tests.support.stack import PORTAL_URL, Stack

FIXTURES = (dispatch_sleeps_fixture,)  # imported for its fixture

PIN_PATTERN = re.compile(r"\b([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\b")


@pytest.fixture
def family(stack: Stack) -> dict[str, int]:
    """The Quillfeathers: Ava (7), Ben (5) and a newborn still registered as "Baby Girl"."""
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
            "ben": make_patient(session, family, "Ben", date(2021, 7, 14), last="Quillfeather").id,
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


def _card_blocks(stack: Stack) -> list[dict[str, Any]]:
    card = stack.cards()[-1]
    blocks = card["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _open_card_and_dialog(stack: Stack, family: dict[str, int]) -> dict[str, Any]:
    cards_before = len(stack.cards())
    views_before = len(stack.fake_slack.calls_to("views.open"))
    assert stack.command("/family", "quillfeather").status == 200
    stack.fake_slack.wait_for("chat.postMessage", count=cards_before + 1)
    card_call = stack.fake_slack.calls_to("chat.postMessage")[-1]
    issue_button = next(
        e
        for b in _card_blocks(stack)
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == IssueIds.OPEN_DIALOG
    )
    stack.click(IssueIds.OPEN_DIALOG, issue_button["value"], message_ts=card_call.response["ts"])
    stack.fake_slack.wait_for("views.open", count=views_before + 1)
    return stack.opened_view()


def _submit(stack: Stack, view: dict[str, Any], children: list[int], recipient: str) -> None:
    response = stack.submit(
        view,
        {
            IssueIds.CHILDREN: {
                IssueIds.CHILDREN_ACTION: checkboxes_value([str(c) for c in children])
            },
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(recipient)},
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
        },
    )
    assert response.status == 200 and response.body in (b"", b"{}"), response.body


def _pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_family_with_a_baby_girl_end_to_end(stack: Stack, family: dict[str, int]) -> None:
    view = _open_card_and_dialog(stack, family)
    card_ts = stack.fake_slack.calls_to("chat.postMessage")[0].response["ts"]

    # The card warns on the newborn; the dialog offers only Ava and Ben.
    card_text = json.dumps(_card_blocks(stack))
    assert "Unofficial name" in card_text and "Request name fix" in card_text
    options = [
        o["value"]
        for b in view["blocks"]
        if b.get("block_id") == IssueIds.CHILDREN
        for o in b["element"]["options"]
    ]
    assert sorted(options) == sorted([str(family["ava"]), str(family["ben"])])
    assert "Baby Girl" in json.dumps(view["blocks"])  # listed as not eligible, with the reason

    _submit(stack, view, [family["ava"], family["ben"]], str(family["mother"]))
    stack.deliver()

    # Two PINs, one email to the chosen guardian with the first child's PIN.
    with stack.database.read_session() as session:
        pins = {p.patient_id: p for p in session.exec(select(Pin)).all()}
    assert set(pins) == {family["ava"], family["ben"]}
    assert len(stack.smtp.received) == 1
    mail = stack.smtp.received[0]
    assert mail.rcpt_tos == ["wren.quillfeather@example.com"]
    body = mail.message.get_body(("plain",)).get_content()
    assert PORTAL_URL in body and "Ava" in body
    emailed_pin = PIN_PATTERN.search(body).group(1)  # type: ignore[union-attr]
    assert verify_pin(emailed_pin, pins[family["ava"]].pin_hash)

    # One PDF, two pages, uploaded into the card's thread.
    uploads = stack.fake_slack.uploaded_files()
    assert len(uploads) == 1 and uploads[0].thread_ts == card_ts
    pages = _pdf_pages(uploads[0].data)
    assert len(pages) == 2
    for page, name, dob, patient in (
        (pages[0], "Ava Quillfeather", "03/02/2019", "ava"),
        (pages[1], "Ben Quillfeather", "07/14/2021", "ben"),
    ):
        assert PORTAL_URL in page.splitlines()[:2]  # at the top of the page
        assert name in page and dob in page
        printed_pin = PIN_PATTERN.search(page).group(1)  # type: ignore[union-attr]
        assert verify_pin(printed_pin, pins[family[patient]].pin_hash)
    assert emailed_pin in pages[0]

    # The summary is in the thread and carries no PIN.
    thread_posts = [a for a in stack.posted() if a.get("thread_ts") == card_ts]
    assert thread_posts and all(not PIN_PATTERN.search(json.dumps(a)) for a in stack.posted())


def test_guardian_with_portal_account_gets_letters_only(
    stack: Stack, family: dict[str, int]
) -> None:
    with stack.database.transaction() as session:
        guardian = session.get(Guardian, family["mother"])
        assert guardian is not None
        guardian.has_portal_account = True
    view = _open_card_and_dialog(stack, family)
    _submit(stack, view, [family["ava"], family["ben"]], str(family["mother"]))
    stack.deliver()

    assert stack.smtp.received == []
    pages = _pdf_pages(stack.fake_slack.uploaded_files()[0].data)
    assert len(pages) == 2 and all("Add Child/Dependent" in page for page in pages)


def test_double_submit_makes_one_batch_and_one_email(stack: Stack, family: dict[str, int]) -> None:
    view = _open_card_and_dialog(stack, family)
    _submit(stack, view, [family["ava"], family["ben"]], str(family["mother"]))
    _submit(stack, view, [family["ava"], family["ben"]], str(family["mother"]))  # same view id
    stack.deliver()
    stack.deliver()

    with stack.database.read_session() as session:
        assert len(session.exec(select(IssueBatch)).all()) == 1
        assert len(session.exec(select(Pin)).all()) == 2
    assert len(stack.smtp.received) == 1
    assert len(stack.fake_slack.uploaded_files()) == 1


def test_reissue_from_a_new_dialog_revokes_the_old_pins(
    stack: Stack, family: dict[str, int]
) -> None:
    first = _open_card_and_dialog(stack, family)
    _submit(stack, first, [family["ben"]], "none")
    second = _open_card_and_dialog(stack, family)
    assert "replaces it" in json.dumps(second["blocks"])  # the dialog shows the active PIN
    _submit(stack, second, [family["ben"]], "none")

    with stack.database.read_session() as session:
        statuses = [
            p.status
            for p in session.exec(
                select(Pin).where(Pin.patient_id == family["ben"]).order_by(Pin.id)
            ).all()
        ]  # type: ignore[arg-type]
    assert statuses == [PinStatus.REVOKED, PinStatus.ACTIVE]


def test_validation_errors_come_back_inside_the_dialog(
    stack: Stack, family: dict[str, int], dispatch_sleeps: DispatchSleeps
) -> None:
    with stack.database.transaction() as session:
        from models import Family

        owner = session.get(Family, family["family"])
        assert owner is not None
        no_email = make_guardian(session, owner, "Rook", "Quillfeather", email=None)
    view = _open_card_and_dialog(stack, family)
    empty = stack.submit(
        view,
        {
            IssueIds.CHILDREN: {IssueIds.CHILDREN_ACTION: checkboxes_value([])},
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value("none")},
        },
    )
    assert empty.json()["response_action"] == "errors"
    assert IssueIds.CHILDREN in empty.json()["errors"]
    wrong_guardian = stack.submit(
        view,
        {
            IssueIds.CHILDREN: {IssueIds.CHILDREN_ACTION: checkboxes_value([str(family["ava"])])},
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(str(no_email.id))},
        },
    )
    assert IssueIds.RECIPIENT in wrong_guardian.json()["errors"]
    with stack.database.read_session() as session:
        assert session.exec(select(Pin)).all() == []
    # The dialog's response_action left when ack() was called, not at Bolt's next poll.
    assert dispatch_sleeps.callers == []


def test_a_family_of_twelve_is_split_into_checkbox_groups(stack: Stack) -> None:
    with stack.database.transaction() as session:
        big = make_family(session, "BIG-12")
        make_guardian(session, big, "Bea", "Manykins", email="bea.manykins@example.com")
        kids = [
            make_patient(
                session, big, f"Kid{chr(65 + i)}", date(2010 + i, 1, 2), last="Manykins"
            ).id
            for i in range(12)
        ]
    stack.command("/family", "manykins")
    card = stack.fake_slack.wait_for("chat.postMessage")[0]
    button = next(
        e["value"] for b in _card_blocks(stack) if b["type"] == "actions" for e in b["elements"]
    )
    stack.click(IssueIds.OPEN_DIALOG, button, message_ts=card.response["ts"])
    view = stack.fake_slack.wait_for("views.open")[0].response["view"]
    groups = [b for b in view["blocks"] if b.get("block_id", "").startswith(IssueIds.CHILDREN)]
    assert [len(b["element"]["options"]) for b in groups] == [10, 2]
    values = {
        b["block_id"]: {
            IssueIds.CHILDREN_ACTION: checkboxes_value(
                [o["value"] for o in b["element"]["options"]]
            )
        }
        for b in groups
    }
    values[IssueIds.RECIPIENT] = {IssueIds.RECIPIENT_ACTION: static_select_value("none")}
    assert stack.submit(view, values).status == 200
    stack.deliver()
    pages = _pdf_pages(stack.fake_slack.uploaded_files()[0].data)
    assert len(pages) == 12
    with stack.database.read_session() as session:
        assert {p.patient_id for p in session.exec(select(Pin)).all()} == set(kids)
