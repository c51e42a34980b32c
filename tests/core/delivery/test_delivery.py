"""Delivery after commit: SMTP outages are retried with backoff and the email goes out exactly
once when the server is back; a final failure is told in the family thread; plaintext PINs
leave the database once their work is done."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.delivery.performers import Deliveries, Outcome, Performer
from bot.delivery.sealing import open_pins, seal_pins
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueRequest
from models import OutgoingWork, WorkKind, WorkStatus, utcnow
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import Stack, build_stack

THREAD = ("C0FRONTDESK", "1700000000.000100")


@pytest.fixture
def smtp_down_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server, SMTP_PORT=str(free_port()))


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


def _issue_for_two(stack: Stack) -> None:
    with stack.database.transaction() as session:
        family = make_family(session, "DL-1")
        guardian = make_guardian(session, family, "Sage", "Postwick", email="sage@example.com")
        kids = [
            make_patient(session, family, name, dob, last="Postwick")
            for name, dob in (("Rue", date(2018, 1, 1)), ("Tam", date(2021, 2, 2)))
        ]
        issue_pins(
            session,
            IssueRequest(
                family_id=family.id or 0,
                patient_ids=tuple(k.id or 0 for k in kids),
                recipient_guardian_id=guardian.id,
                emailed_patient_id=None,
                issued_by="U0STAFF01",
                idempotency_key="view:VDL1",
                channel_id=THREAD[0],
                thread_ts=THREAD[1],
            ),
            policy=stack.services.issue_policy(),
            gateway=stack.services.gateway,
        )


def _email_work(stack: Stack) -> OutgoingWork:
    with stack.database.read_session() as session:
        return session.exec(
            select(OutgoingWork).where(OutgoingWork.kind == WorkKind.WELCOME_EMAIL)
        ).one()


def test_smtp_down_then_back_delivers_exactly_once(smtp_down_stack: Stack) -> None:
    stack = smtp_down_stack
    _issue_for_two(stack)
    clock = Clock()  # after issuing, so the new work is due
    stack.services.outbox.clock = clock

    stack.deliver()  # SMTP refuses: letters go out, the email waits
    work = _email_work(stack)
    assert work.status == WorkStatus.PENDING and work.attempts == 1
    assert len(stack.fake_slack.uploaded_files()) == 1
    assert stack.deliver() == 0  # not due yet: backoff

    stack.services.outbox.settings = replace(
        stack.settings, smtp=replace(stack.settings.smtp, port=stack.smtp.port)
    )
    clock.now += timedelta(minutes=5)
    stack.deliver()
    stack.deliver()
    assert len(stack.smtp.received) == 1
    work = _email_work(stack)
    assert work.status == WorkStatus.DONE and work.attempts == 2
    assert json.loads(work.payload)["pin"] is None  # plaintext erased once delivered
    notes = [a["text"] for a in stack.posted() if a.get("thread_ts") == THREAD[1]]
    assert any("Welcome email for Rue delivered" in n for n in notes)


def test_final_failure_is_told_in_the_thread(smtp_down_stack: Stack) -> None:
    stack = smtp_down_stack
    _issue_for_two(stack)
    clock = Clock()  # after issuing, so the new work is due
    stack.services.outbox.clock = clock
    for _ in range(24):  # past the whole retry schedule (about 13 h)
        stack.deliver()
        clock.now += timedelta(hours=1)
    work = _email_work(stack)
    assert work.status == WorkStatus.FAILED and work.attempts == work.max_attempts
    assert json.loads(work.payload)["pin"] is None
    notes = [a["text"] for a in stack.posted() if a.get("thread_ts") == THREAD[1]]
    assert sum("could not be delivered" in n for n in notes) == 1
    assert stack.smtp.received == []


def test_upload_retried_after_slack_errors(stack: Stack) -> None:
    stack.fake_slack.fail_next("files.getUploadURLExternal", status=500, times=3)
    _issue_for_two(stack)
    clock = Clock()
    stack.services.outbox.clock = clock
    stack.deliver()
    with stack.database.read_session() as session:
        upload = session.exec(
            select(OutgoingWork).where(OutgoingWork.kind == WorkKind.LETTERS_UPLOAD)
        ).one()
    assert upload.status == WorkStatus.PENDING
    clock.now += timedelta(minutes=5)
    stack.deliver()
    assert len(stack.fake_slack.uploaded_files()) == 1
    assert stack.fake_slack.uploaded_files()[0].thread_ts == THREAD[1]


def test_a_crashed_delivery_keeps_the_ref_of_its_log_line(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery that raises the unexpected is logged by its type and a ref, never its
    message; the row's last_error (what a failure notice and `pinbot remind` show) has the
    same ref, so IT can find the log line staff were pointed to."""
    _issue_for_two(stack)

    def crashing(self: Deliveries, kind: WorkKind) -> Performer:
        def perform(payload: dict[str, Any], work: OutgoingWork) -> Outcome:
            raise RuntimeError("a message that may quote the payload")

        return perform

    monkeypatch.setattr(Deliveries, "performer", crashing)
    with caplog.at_level(logging.ERROR, logger="bot.delivery.worker"):
        stack.deliver()

    crashes = [r for r in caplog.records if r.getMessage() == "delivery crashed"]
    with stack.database.read_session() as session:
        rows = session.exec(select(OutgoingWork).where(OutgoingWork.attempts > 0)).all()
    assert crashes and len(rows) == len(crashes)
    assert sorted(row.last_error for row in rows) == sorted(
        f"RuntimeError, ref {record.ref}" for record in crashes
    )


def test_non_ascii_address_fails_at_once_and_is_told(stack: Stack) -> None:
    _issue_for_two(stack)
    with stack.database.transaction() as session:
        work = session.exec(
            select(OutgoingWork).where(OutgoingWork.kind == WorkKind.WELCOME_EMAIL)
        ).one()
        # A sealed PIN is bound to its address: re-seal it as if queued for this one.
        cipher = stack.services.pin_cipher
        payload = open_pins(json.loads(work.payload), cipher, work.dedupe_key)
        payload["to_address"] = "ana.núñez@example.com"
        work.payload = json.dumps(seal_pins(payload, cipher, work.dedupe_key))
    stack.deliver()
    stack.deliver()
    work = _email_work(stack)
    assert work.status == WorkStatus.FAILED and work.attempts == 1
    assert "non-ASCII" in work.last_error
    notes = [a["text"] for a in stack.posted() if a.get("thread_ts") == THREAD[1]]
    assert any("could not be delivered" in n for n in notes)


def test_import_leaves_out_a_non_ascii_email_with_its_line(database) -> None:  # type: ignore[no-untyped-def]
    """SMTP here cannot carry a non-ASCII address, so it is left out of the guardian (the
    patient is still imported) and the summary names the line, as the feed does."""
    import io

    from bot.importing.importer import FAMILY_COLUMNS, import_families

    row = [
        "NA-1",
        "P-NA-1",
        "Lu",
        "",
        "Tester",
        "2020-01-01",
        "F",
        "",
        "Ana",
        "Tester",
        "mother",
        "ana.núñez@example.com",
        "",
        "no",
    ]
    text = ",".join(FAMILY_COLUMNS) + "\n" + ",".join(row) + "\n"
    report = import_families(database, io.StringIO(text))
    assert report.ok and not report.problems
    assert any("line 2" in w and "non-ASCII" in w for w in report.warnings), report.warnings
    with database.session() as session:
        from sqlmodel import select

        from models import Guardian, Patient

        assert session.exec(select(Patient).where(Patient.chart_id == "P-NA-1")).one()
        assert session.exec(select(Guardian)).one().email is None


def test_pending_letters_never_print_a_pin_revoked_since(stack: Stack) -> None:
    _issue_for_two(stack)  # batch 1: Rue and Tam, letters not uploaded yet
    with stack.database.transaction() as session:
        from models import Patient

        tam = session.exec(select(Patient).where(Patient.first_name == "Tam")).one()
        issue_pins(
            session,
            IssueRequest(
                family_id=tam.family_id,
                patient_ids=(tam.id or 0,),
                recipient_guardian_id=None,
                emailed_patient_id=None,
                issued_by="U0STAFF01",
                idempotency_key="view:VDL2",
                channel_id=THREAD[0],
                thread_ts=THREAD[1],
            ),
            policy=stack.services.issue_policy(),
            gateway=stack.services.gateway,
        )
    stack.deliver()

    from tests.flows.test_issue_pins import _pdf_pages

    uploads = sorted(stack.fake_slack.uploaded_files(), key=lambda f: f.filename)
    pages = [_pdf_pages(u.data) for u in uploads]
    assert [len(p) for p in pages] == [1, 1]  # batch 1 lost Tam's revoked page
    assert "Rue Postwick" in pages[0][0] and "Tam Postwick" in pages[1][0]
