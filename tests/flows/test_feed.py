"""The live EHR feed end to end (SPEC §8): HL7 messages sent with python-hl7's MLLPClient on
loopback to the listener started as `pinbot run` starts it, and what staff then see in Slack
(signed requests, fake Slack) and what the database holds."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from handlers.ids import IssueIds
from models import (
    Appointment,
    AppointmentStatus,
    AuditEvent,
    FamilyThread,
    FeedMessage,
    Guardian,
    NameFix,
    NameFixStatus,
    Patient,
    Pin,
    PinStatus,
)
from tests.core.feed.conftest import fixture_bytes
from tests.core.feed.support import SB, msa, read_frames, recording, send
from tests.flows.feed_support import FeedStack, build_feed_stack, with_values
from tests.support.factories import make_family, make_guardian, make_patient, make_pin
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import CHANNEL_ID
from tests.support.smtp_server import SmtpServer
from tests.support.stack import eventually

NEWBORN = "adt_a04_newborn_v251.hl7"


@pytest.fixture
def feed(database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer) -> Iterator[FeedStack]:
    yield from build_feed_stack(database_url, fake_slack, smtp_server)


def count(feed: FeedStack, model: Any, *where: Any) -> int:
    with feed.stack.database.read_session() as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def card_for(feed: FeedStack, query: str) -> dict[str, Any]:
    posts = len(feed.stack.fake_slack.calls_to("chat.postMessage"))
    assert feed.stack.command("/family", query).status == 200
    card = feed.stack.fake_slack.wait_for("chat.postMessage", posts + 1)[-1].response
    # The bot records the card as the family's thread once Slack gave it a ts.
    eventually(lambda: _one_thread(feed, card["ts"]))
    return card


def _one_thread(feed: FeedStack, ts: str) -> None:
    assert count(feed, FamilyThread, FamilyThread.thread_ts == ts) == 1


def thread_replies(feed: FeedStack, thread_ts: str) -> list[dict[str, Any]]:
    return [
        m
        for m in feed.stack.fake_slack.messages(CHANNEL_ID)
        if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
    ]


def test_a_newborn_registered_at_the_desk_is_in_family_with_its_warning(feed: FeedStack) -> None:
    assert feed.send_file(NEWBORN) == ("AA", "EP000101")

    card = card_for(feed, "rivera")
    text = " ".join(b["text"]["text"] for b in blocks_of(card["message"]) if b.get("text"))
    assert "BABY GIRL RIVERA" in text and ":warning: Unofficial name" in text
    assert "(Mother)" in text and "(Father)" in text
    with feed.stack.database.read_session() as session:
        ana = session.exec(select(Guardian).where(Guardian.first_name == "ANA")).one()
        baby = session.exec(select(Patient)).one()
        logged = session.exec(select(FeedMessage)).one()
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.patient")).one()
    assert ana.email == "ana.rivera@example.com" and ana.language == "es"
    assert ana.phone == "(217) 555-0143" and ana.has_portal_account is False
    assert (baby.chart_id, baby.name_type, baby.dob) == ("MRN00123", "NB", date(2025, 3, 14))
    assert (logged.sending_application, logged.sending_facility, logged.control_id) == (
        "EPIC",
        "SUNNYPEDS",
        "EP000101",
    )
    assert (logged.message_type, logged.ack_code, logged.error_field) == ("ADT^A04", "AA", None)
    assert audit.actor == "ehr:EPIC"


def test_an_ehr_rename_closes_the_name_fix_and_offers_pins(feed: FeedStack) -> None:
    assert feed.send_file(NEWBORN)[0] == "AA"
    card_ts = card_for(feed, "rivera")["ts"]
    with feed.stack.database.transaction() as session:
        baby = session.exec(select(Patient)).one()
        session.add(
            NameFix(
                patient_id=baby.id or 0,
                family_id=baby.family_id,
                proposed_first="Sofia",
                proposed_last="Rivera",
                confirmed_by="birth_certificate",
                requested_by="U0FRONT01",
                channel_id=CHANNEL_ID,
                thread_ts=card_ts,
                message_ts="1700000000.000900",
            )
        )

    assert feed.send_file("adt_a08_rename_v23.hl7") == ("AA", "MT4455")
    feed.stack.deliver()

    with feed.stack.database.read_session() as session:
        fix = session.exec(select(NameFix)).one()
        baby = session.exec(select(Patient)).one()
    assert fix.status == NameFixStatus.CLOSED
    assert (baby.first_name, baby.middle_name, baby.name_type) == ("SOFIA", "ISABEL", "L")
    replies = eventually(lambda: _two(thread_replies(feed, card_ts)))
    closed, told = replies
    assert "closed" in closed["text"]
    assert "The EHR now has *SOFIA ISABEL RIVERA* (was BABY GIRL RIVERA)" in told["text"]
    buttons = [e for b in blocks_of(told) for e in b.get("elements") or []]
    assert [b["action_id"] for b in buttons] == [IssueIds.OPEN_DIALOG]
    assert json.loads(buttons[0]["value"]) == {"family_id": baby.family_id}
    # The button opens the Issue PINs dialog, where the renamed child is now eligible.
    views = len(feed.stack.fake_slack.calls_to("views.open"))
    feed.stack.click(
        IssueIds.OPEN_DIALOG, buttons[0]["value"], message_ts=told["ts"], thread_ts=card_ts
    )
    feed.stack.fake_slack.wait_for("views.open", views + 1)
    dialog = json.dumps(feed.stack.opened_view())
    assert "SOFIA" in dialog and "unofficial name" not in dialog.lower()
    # The rename is in /family at once: the close spelling finds the new name.
    assert card_for(feed, "sofai rivera")["message"]["text"]


def _two(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert len(replies) == 2, replies
    return replies


def test_a_resent_message_is_applied_once_on_one_connection(feed: FeedStack) -> None:
    raw = fixture_bytes(NEWBORN)
    with feed.connection() as client:
        answers = [msa(send(client, raw)) for _ in range(3)]
    assert answers == [("AA", "EP000101")] * 3
    assert count(feed, Patient) == 1 and count(feed, Guardian) == 2
    assert count(feed, FeedMessage) == 1
    assert count(feed, AuditEvent, AuditEvent.action == "feed.patient") == 1


def test_two_copies_racing_on_two_connections_are_applied_once(feed: FeedStack) -> None:
    for attempt in range(3):
        raw = with_values(fixture_bytes(NEWBORN), EP000101=f"RACE-{attempt}")
        start, answers = threading.Barrier(2), list[tuple[str, str]]()

        def race(
            raw: bytes = raw,
            start: threading.Barrier = start,
            answers: list[tuple[str, str]] = answers,
        ) -> None:
            with feed.connection() as client:
                start.wait()
                answers.append(msa(send(client, raw)))

        threads = [threading.Thread(target=race) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert answers == [("AA", f"RACE-{attempt}")] * 2
    assert count(feed, Patient) == 1 and count(feed, Guardian) == 2
    assert count(feed, FeedMessage, FeedMessage.ack_code == "AA") == 3
    assert count(feed, AuditEvent, AuditEvent.action == "feed.patient") == 1


def test_appointments_come_and_go_from_pinbot_today(feed: FeedStack) -> None:
    assert feed.send_file(NEWBORN)[0] == "AA"
    feed.stack.services.clock = lambda: datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
    assert feed.send_file("siu_s12_v26.hl7") == ("AA", "EP001200")
    today = feed.stack.command("/pinbot", "today").text
    assert "09:30 *BABY GIRL RIVERA*" in today

    cancel = with_values(fixture_bytes("siu_s12_v26.hl7"), S12="S15", EP001200="EP001500")
    assert feed.send(cancel) == ("AA", "EP001500")
    assert "Nothing needs attention" in feed.stack.command("/pinbot", "today").text
    with feed.stack.database.read_session() as session:
        visit = session.exec(select(Appointment)).one()
    assert (visit.ehr_appointment_id, visit.status) == ("FL2002", AppointmentStatus.CANCELLED)
    assert visit.starts_at == datetime(2025, 3, 20, 9, 30)


def test_an_s12_adopts_the_slot_an_appointments_csv_row_holds(feed: FeedStack) -> None:
    assert feed.send_file(NEWBORN)[0] == "AA"
    with feed.stack.database.transaction() as session:
        baby = session.exec(select(Patient)).one()
        session.add(Appointment(patient_id=baby.id or 0, starts_at=datetime(2025, 3, 20, 9, 30)))
    assert feed.send_file("siu_s12_v26.hl7")[0] == "AA"
    with feed.stack.database.read_session() as session:
        visit = session.exec(select(Appointment)).one()
    assert visit.ehr_appointment_id == "FL2002" and visit.provider


def test_an_appointment_for_an_unknown_chart_is_refused_with_ae(feed: FeedStack) -> None:
    with feed.connection() as client:
        ack = send(client, fixture_bytes("siu_s15_v27.hl7"))
    assert msa(ack) == ("AE", "NG-15-001")
    assert b"ERR|PID^1^3" in ack and b"does not know" in ack
    assert count(feed, Appointment) == 0 and count(feed, Patient) == 0
    with feed.stack.database.read_session() as session:
        logged = session.exec(select(FeedMessage)).one()
    assert (logged.ack_code, logged.error_field, logged.message_type) == ("AE", "PID-3", "SIU^S15")


def test_a_missing_date_of_birth_names_pid_7(feed: FeedStack) -> None:
    with feed.connection() as client:
        ack = send(client, fixture_bytes("adt_a04_missing_dob_v231.hl7"))
    assert msa(ack) == ("AE", "ECW-5511") and b"PID^1^7" in ack
    assert count(feed, Patient) == 0


def test_a_guardian_without_relationship_names_nk1_3(feed: FeedStack) -> None:
    raw = with_values(fixture_bytes(NEWBORN), **{"MTH^Mother^HL70063": "", "FTH": ""})
    with feed.connection() as client:
        ack = send(client, raw)
    assert msa(ack)[0] == "AE" and b"NK1^1^3" in ack and b"guardian_relationship" not in ack
    assert count(feed, Patient) == 0 and count(feed, Guardian) == 0


def test_other_types_and_non_hl7_are_refused_and_the_connection_goes_on(feed: FeedStack) -> None:
    with feed.connection() as client:
        oru = msa(send(client, fixture_bytes("oru_r01_v251.hl7")))
        junk = msa(send(client, b"GET / HTTP/1.1\r\nHost: pinbot\r\n\r\n"))
        newborn = msa(send(client, fixture_bytes(NEWBORN)))
    assert (oru, junk, newborn) == (("AR", "LAB-777"), ("AR", ""), ("AA", "EP000101"))
    assert count(feed, Patient) == 1
    with feed.stack.database.read_session() as session:
        codes = [(m.message_type, m.ack_code) for m in session.exec(select(FeedMessage))]
    assert sorted(codes) == [("ADT^A04", "AA"), ("ORU^R01", "AR"), ("non-HL7", "AR")]


def test_latin_1_and_utf_8_names_arrive_intact(feed: FeedStack) -> None:
    assert feed.send_file("adt_a04_latin1_v24.hl7") == ("AA", "CR-98765")
    assert feed.send_file("adt_a31_escapes_v28.hl7")[0] == "AA"
    with feed.stack.database.read_session() as session:
        names = {(p.first_name, p.middle_name, p.last_name) for p in session.exec(select(Patient))}
        guardians = {(g.first_name, g.last_name) for g in session.exec(select(Guardian))}
    assert ("JOSÉ", "ÁNGEL", "MUÑOZ") in names
    assert any(last == "NGUYỄN" for _, _, last in names)
    assert ("MARÍA", "MUÑOZ") in guardians and ("PAT", "SMITH&JONES") in guardians


def test_a_merge_revokes_the_merged_charts_pin_and_tells_the_thread(feed: FeedStack) -> None:
    with feed.stack.database.transaction() as session:
        family = make_family(session, "KIM-1")
        make_guardian(session, family, "Hana", "Kim", email="hana.kim@example.com")
        gone = make_patient(session, family, "Noah", date(2019, 1, 2), last="Kim", chart="MRN00499")
        make_patient(session, family, "Noah", date(2019, 1, 2), last="Kim", chart="MRN00500")
        make_pin(session, gone)
    card_ts = card_for(feed, "kim")["ts"]

    assert feed.send_file("adt_a40_merge_v25.hl7") == ("AA", "EP000900")
    feed.stack.deliver()

    with feed.stack.database.read_session() as session:
        pin = session.exec(select(Pin)).one()
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.merge")).one()
    assert pin.status == PinStatus.REVOKED
    assert json.loads(audit.details)["reason"] == "merged into MRN00500"
    told = eventually(lambda: _one(thread_replies(feed, card_ts)))
    assert "merged chart MRN00499 into MRN00500" in told["text"] and "1 active PIN" in told["text"]
    assert feed.send_file("adt_a40_merge_v25.hl7", EP000900="EP-2", MRN00499="NOPE") == (
        "AA",
        "EP-2",
    )


def _one(replies: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(replies) == 1, replies
    return replies[0]


def test_an_oversize_frame_gets_no_ack_and_the_listener_keeps_serving(feed: FeedStack) -> None:
    with socket.create_connection(("127.0.0.1", feed.server.port), timeout=10) as raw:
        with contextlib.suppress(OSError):  # the server may close while we are still sending
            raw.sendall(SB + b"MSH|^~\\&|" + b"X" * (1 << 20) + b"\x1c\r")
        assert read_frames(raw) == []
    assert feed.send_file(NEWBORN)[0] == "AA"


def test_a_refused_source_is_closed_unread(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    for feed in build_feed_stack(
        database_url, fake_slack, smtp_server, HL7_ALLOWED_SOURCES="192.0.2.0/24"
    ):
        with socket.create_connection(("127.0.0.1", feed.server.port), timeout=10) as raw:
            with contextlib.suppress(OSError):
                raw.sendall(SB + fixture_bytes(NEWBORN) + b"\x1c\r")
            assert read_frames(raw) == []
        assert count(feed, FeedMessage) == 0 and count(feed, Patient) == 0
        assert feed.server.open_connections == 0


def test_the_log_never_holds_names_dates_of_birth_or_emails(feed: FeedStack) -> None:
    with recording("") as log:
        feed.send_file(NEWBORN)
        feed.send_file("adt_a08_rename_v23.hl7")
        feed.send_file("adt_a04_latin1_v24.hl7")
        feed.send_file("adt_a04_missing_dob_v231.hl7")
    text = log.text().casefold()
    assert "ep000101" in text  # the log is there, with ids
    for secret in ("rivera", "sofia", "ana.rivera", "20250314", "2025-03-14", "muñoz", "park"):
        assert secret not in text, secret
