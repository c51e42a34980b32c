"""An A40 merge as staff then see it (issue 20): a chart registered twice, merged by the EHR
over MLLP (python-hl7's client on loopback), then `/family`, the Issue PINs dialog and
`/pinbot today` through signed requests and the fake Slack. The merged-away record is gone
for staff; its history stays in the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from bot.feed.message import split_messages
from handlers.ids import IssueIds
from models import Appointment, AuditEvent, Patient, Pin, PinStatus
from tests.core.feed.conftest import fixture_bytes
from tests.flows.feed_support import FeedStack, build_feed_stack
from tests.flows.test_feed import blocks_of, card_for
from tests.support.factories import make_pin
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer

_MESSAGES = split_messages(fixture_bytes("adt_a40_duplicate_chart_v251.hl7"))
REGISTERED_TWICE, MERGE = _MESSAGES[:2], _MESSAGES[2]
KEPT, GONE = "SP-3001", "SP-3002"


@pytest.fixture
def feed(database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer) -> Iterator[FeedStack]:
    yield from build_feed_stack(database_url, fake_slack, smtp_server)


def child_ids(card: dict[str, Any]) -> list[int]:
    return [
        int(block["block_id"].removeprefix("child_"))
        for block in blocks_of(card["message"])
        if str(block.get("block_id", "")).startswith("child_")
    ]


def dialog_child_ids(feed: FeedStack, card: dict[str, Any]) -> set[int]:
    [button] = [
        element
        for block in blocks_of(card["message"])
        for element in block.get("elements") or []
        if element.get("action_id") == IssueIds.OPEN_DIALOG
    ]
    views = len(feed.stack.fake_slack.calls_to("views.open"))
    feed.stack.click(IssueIds.OPEN_DIALOG, button["value"], message_ts=card["ts"])
    feed.stack.fake_slack.wait_for("views.open", views + 1)
    view = feed.stack.opened_view()
    offered = set()
    for block in view["blocks"]:
        element = block.get("element") or {}
        if element.get("action_id") in (IssueIds.CHILDREN_ACTION, IssueIds.EMAILED_CHILD_ACTION):
            offered |= {int(option["value"]) for option in element.get("options", [])}
    return offered


def patient_ids(feed: FeedStack) -> dict[str, int]:
    with feed.stack.database.read_session() as session:
        return {p.chart_id: p.id or 0 for p in session.exec(select(Patient))}


def test_after_an_a40_staff_see_only_the_survivor(feed: FeedStack) -> None:
    with feed.connection() as client:
        for raw in REGISTERED_TWICE:
            assert client.send_message(raw)
    ids = patient_ids(feed)
    with feed.stack.database.transaction() as session:
        gone = session.get(Patient, ids[GONE])
        assert gone is not None
        # An expired PIN: history, and no portal access (so /pinbot today lists the chart).
        make_pin(session, gone, status=PinStatus.EXPIRED)
        # The duplicate chart was booked for the visit the survivor is booked for too.
        for chart in (KEPT, GONE):
            session.add(Appointment(patient_id=ids[chart], starts_at=datetime(2025, 12, 3, 9, 0)))
    feed.stack.services.clock = lambda: datetime(2025, 12, 3, 12, 0, tzinfo=UTC)
    before = card_for(feed, "okafor")
    assert sorted(child_ids(before)) == sorted(ids.values())  # two CHIOMA OKAFORs
    assert feed.stack.command("/pinbot", "today").text.count("CHIOMA OKAFOR") == 2

    assert feed.send(MERGE) == ("AA", "SP-3")

    after = card_for(feed, "okafor")
    assert child_ids(after) == [ids[KEPT]]
    assert dialog_child_ids(feed, after) == {ids[KEPT]}
    # The old chart id finds the survivor's family, whose card has the survivor only.
    by_old_id = card_for(feed, GONE)
    assert child_ids(by_old_id) == [ids[KEPT]]
    assert feed.stack.command("/pinbot", "today").text.count("CHIOMA OKAFOR") == 1
    # Its history stays readable: the record, its PIN, the merge in the audit.
    with feed.stack.database.read_session() as session:
        gone = session.get(Patient, ids[GONE])
        pin = session.exec(select(Pin).where(Pin.patient_id == ids[GONE])).one()
        merge = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.merge")).one()
    assert gone is not None and gone.merged_into_id == ids[KEPT]
    assert pin.status == PinStatus.EXPIRED
    assert json.loads(merge.details)["merged_chart_id"] == GONE
    # The same merge under a new control id changes nothing more.
    again = MERGE.replace(b"|SP-3|", b"|SP-4|")
    assert feed.send(again) == ("AA", "SP-4")
    with feed.stack.database.read_session() as session:
        assert (
            len(session.exec(select(AuditEvent).where(AuditEvent.action == "feed.merge")).all())
            == 1
        )


def test_a_registration_on_the_merged_away_chart_follows_the_child(feed: FeedStack) -> None:
    """The parent registered with the duplicate chart's PIN; after the A40 the survivor is the
    registered child: on its card, off `/pinbot today`'s list of children without access."""
    with feed.connection() as client:
        for raw in REGISTERED_TWICE:
            assert client.send_message(raw)
    ids = patient_ids(feed)
    registered_on = datetime(2025, 11, 20, 15, 0, tzinfo=UTC)
    with feed.stack.database.transaction() as session:
        gone = session.get(Patient, ids[GONE])
        assert gone is not None
        pin = make_pin(session, gone, status=PinStatus.REGISTERED)
        pin.status_changed_at, pin.portal_account_id = registered_on, "acct-77"
        session.add(Appointment(patient_id=ids[KEPT], starts_at=datetime(2025, 12, 3, 9, 0)))
        session.flush()
        pin_id = pin.id
    feed.stack.services.clock = lambda: datetime(2025, 12, 3, 12, 0, tzinfo=UTC)
    assert feed.stack.command("/pinbot", "today").text.count("CHIOMA OKAFOR") == 1  # the survivor

    assert feed.send(MERGE) == ("AA", "SP-3")

    [child] = [
        block
        for block in blocks_of(card_for(feed, "okafor")["message"])
        if block.get("block_id") == f"child_{ids[KEPT]}"
    ]
    assert "registered 11/20/2025" in json.dumps(child)
    assert "CHIOMA OKAFOR" not in feed.stack.command("/pinbot", "today").text
    with feed.stack.database.read_session() as session:
        moved = session.get(Pin, pin_id)
        merge = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.merge")).one()
    assert moved is not None and moved.patient_id == ids[KEPT]
    assert (moved.status, moved.portal_account_id) == (PinStatus.REGISTERED, "acct-77")
    assert json.loads(merge.details)["moved_registered_pin_ids"] == [pin_id]


def _message(*segments: str) -> bytes:
    return "\r".join(segments).encode() + b"\r"


# Sent after the merge, under the chart id it merged away: a new middle name, a visit.
RENAMED_UNDER_OLD_ID = _message(
    "MSH|^~\\&|SPRUCEEHR|SPRUCE|PINBOT|SPRUCE|20251202090000||ADT^A08^ADT_A01|SP-5|P|2.5.1",
    "EVN|A08",
    f"PID|1||{GONE}^^^SPRUCE^MR||OKAFOR^CHIOMA^ADAEZE||20210707|F||||||||||SP-ACCT-30",
)
BOOKED_UNDER_OLD_ID = _message(
    "MSH|^~\\&|SPRUCEEHR|SPRUCE|PINBOT|SPRUCE|20251202091000||SIU^S12^SIU_S12|SP-6|P|2.5.1",
    "SCH||SP-VISIT-1|||||WELL^Well child||15|MIN|^^15^202512100930",
    f"PID|1||{GONE}^^^SPRUCE^MR||OKAFOR^CHIOMA||20210707|F",
)


def test_messages_under_the_merged_away_chart_id_update_the_survivor(feed: FeedStack) -> None:
    for raw in (*REGISTERED_TWICE, MERGE):
        assert feed.send(raw)[0] == "AA"
    ids = patient_ids(feed)
    with feed.stack.database.read_session() as session:
        hidden_before = session.get(Patient, ids[GONE])
        assert hidden_before is not None
        hidden_before_updated = hidden_before.updated_at

    assert feed.send(RENAMED_UNDER_OLD_ID) == ("AA", "SP-5")
    assert feed.send(BOOKED_UNDER_OLD_ID) == ("AA", "SP-6")

    with feed.stack.database.read_session() as session:
        kept, gone = session.get(Patient, ids[KEPT]), session.get(Patient, ids[GONE])
        visit = session.exec(select(Appointment)).one()
        renamed = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.patient")).all()
    assert kept is not None and gone is not None
    assert (kept.first_name, kept.middle_name, kept.last_name) == ("CHIOMA", "ADAEZE", "OKAFOR")
    # The hidden record is as the merge left it: no new name, not touched since.
    assert (gone.middle_name, gone.merged_into_id) == ("", ids[KEPT])
    assert gone.updated_at == hidden_before_updated
    assert visit.patient_id == ids[KEPT]
    assert {event.patient_id for event in renamed} == {ids[KEPT], ids[GONE]}  # the two A04s
    assert renamed[-1].patient_id == ids[KEPT]  # and the A08
    assert len(patient_ids(feed)) == 2  # no chart created for the old id
