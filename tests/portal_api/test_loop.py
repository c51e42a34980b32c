"""The loop closed, as a practice lives it: staff issue PINs in Slack, the portal verifies and
redeems them over HTTP, the family's thread hears of it, the card shows it, and the next
issuance for that family (or for the same guardian in another family) sends no welcome email
and prints add-child letters — with nobody importing anything."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import select

from models import Guardian, IssueBatch, Pin, PinStatus
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.issuing_flow import PIN_PATTERN, issue, open_card
from tests.support.portal import PortalClient, thread_texts
from tests.support.stack import Stack, eventually

EMAIL = "wren.quillfeather@example.com"


@pytest.fixture
def family(stack: Stack) -> dict[str, int]:
    with stack.database.transaction() as session:
        family = make_family(session, "QF-2001")
        mother = make_guardian(session, family, "Wren", "Quillfeather", email=EMAIL)
        ava = make_patient(session, family, "Ava", date(2019, 3, 2), last="Quillfeather")
        ben = make_patient(session, family, "Ben", date(2021, 7, 14), last="Quillfeather")
        # Wren again, in a second household with her own account number.
        other = make_family(session, "ZB-7001")
        make_guardian(session, other, "Wren", "Zephyrine", email=EMAIL.upper())
        cleo = make_patient(session, other, "Cleo", date(2020, 1, 5), last="Zephyrine")
    return {"mother": mother.id or 0, "ava": ava.id or 0, "ben": ben.id or 0, "cleo": cleo.id or 0}


def _said(stack: Stack, card_ts: str, words: str, *, count: int) -> list[str]:
    """The thread's messages with `words`, once there are `count` of them."""
    texts = thread_texts(stack.fake_slack.messages(), card_ts, words)
    assert len(texts) == count, texts
    return texts


def test_siblings_redeemed_in_the_portal_then_the_next_issuance_adds_children(
    stack: Stack, portal: PortalClient, family: dict[str, int]
) -> None:
    letters = issue(stack, "quillfeather", [family["ava"], family["ben"]], family["mother"])
    assert len(stack.smtp.received) == 1  # the one welcome email, for Ava
    ava_pin, ben_pin = letters.pin_of("Ava Quillfeather"), letters.pin_of("Ben Quillfeather")

    # The parent creates the account with Ava's PIN, then adds Ben with his.
    ava = portal.verify(ava_pin, "2019-03-02", client_ip="198.51.100.20")
    assert ava.status_code == 200, ava.text
    assert ava.json()["delivery"] == "emailed"
    assert ava.json()["guardian"] == {
        "first_name": "Wren",
        "last_name": "Quillfeather",
        "email": EMAIL,
        "has_portal_account": False,
    }
    first = portal.redeem(ava_pin, "2019-03-02", "acct-QF", client_ip="198.51.100.20")
    assert first.status_code == 200 and first.json()["first_use"] is True
    ben = portal.verify(ben_pin, "2021-07-14", client_ip="198.51.100.20")
    assert ben.status_code == 200 and ben.json()["delivery"] == "printed"
    added = portal.redeem(ben_pin, "2021-07-14", "acct-QF", client_ip="198.51.100.20")
    assert added.status_code == 200 and added.json()["first_use"] is True
    assert added.json()["patient"]["first_name"] == "Ben"

    # The family's thread is told, once per child, and no PIN appears in Slack.
    stack.deliver()
    told = eventually(lambda: _said(stack, letters.card_ts, "was used", count=2))
    assert any("Ava's PIN was used: registered in the portal" in t for t in told)
    assert any("Ben's PIN was used: registered in the portal" in t for t in told)
    assert not PIN_PATTERN.search(json.dumps(stack.posted()))
    with stack.database.read_session() as session:
        pins = session.exec(select(Pin).where(Pin.status == PinStatus.REGISTERED)).all()
        assert {p.portal_account_id for p in pins} == {"acct-QF"} and len(pins) == 2
        assert all(p.status_changed_at is not None for p in pins)

    # The card shows it.
    _, blocks = open_card(stack, "quillfeather")
    card = json.dumps(blocks)
    assert card.count("PIN: registered ") == 2

    # The next issuance takes the add-child path: no welcome email, add-child letters.
    again = issue(stack, "quillfeather", [family["ava"], family["ben"]], family["mother"])
    assert len(stack.smtp.received) == 1
    assert all("Add Child/Dependent" in page for page in again.pages)
    # So does Wren's other household: same email, a guardian who has an account now.
    other = issue(stack, "zephyrine", [family["cleo"]], None)
    assert other.pages
    with stack.database.transaction() as session:
        guardian = session.exec(select(Guardian).where(Guardian.last_name == "Zephyrine")).one()
        assert guardian.has_portal_account is True
    third = issue(stack, "zephyrine", [family["cleo"]], guardian.id)
    assert len(stack.smtp.received) == 1
    assert all("Add Child/Dependent" in page for page in third.pages)
    with stack.database.read_session() as session:
        modes = session.exec(select(IssueBatch.mode).order_by(IssueBatch.id)).all()
    assert modes == ["welcome", "add_child", "print_only", "add_child"]
