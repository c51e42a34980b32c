"""Nothing the API writes about an attempt — log lines or audit rows — carries a PIN, a name
or a date of birth; every verify and redeem is audited with the key, outcome and source."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
from sqlmodel import col, select

from models import AuditEvent
from tests.support.portal import PortalClient, child_with_pin
from tests.support.stack import Stack


def test_logs_and_audit_rows_carry_no_pin_name_or_dob(
    stack: Stack, portal: PortalClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = child_with_pin(stack.services, "PV-1", "Oriel", date(2021, 12, 24))
    calls = [
        portal.verify(issued.pin, "2021-12-24", client_ip="203.0.113.9"),
        portal.verify(issued.pin, "2021-12-25", client_ip="203.0.113.9"),
        portal.verify("QQQQ-QQQQ", "2021-12-24", client_ip="203.0.113.9"),
        portal.redeem(issued.pin, "2021-12-24", "acct-PV", client_ip="203.0.113.9"),
        portal.redeem(issued.pin, "2021-12-24", "acct-other", client_ip="203.0.113.9"),
    ]
    assert [c.status_code for c in calls] == [200, 404, 404, 200, 409]
    for _ in range(10):
        portal.verify("QQQQ-QQQQ", "2021-12-24", client_ip="203.0.113.10")
    assert portal.verify(issued.pin, "2021-12-24", client_ip="203.0.113.10").status_code == 429

    with stack.database.read_session() as session:
        events = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.action).in_(["portal.verify", "portal.redeem"]))
            .order_by(col(AuditEvent.id))
        ).all()
    assert len(events) == len(calls) + 11
    assert {e.actor for e in events} == {"portal:portal"}
    outcomes = [json.loads(e.details)["outcome"] for e in events[: len(calls)]]
    assert outcomes == ["ok", "no_match", "no_match", "registered", "already_registered"]
    assert all(json.loads(e.details)["source"].startswith("203.0.113.") for e in events)

    written = caplog.text + "\n".join(e.details + e.actor for e in events)
    plain = issued.pin.replace("-", "")
    forbidden = [issued.pin, plain, plain.lower(), "Oriel", "Testwood", "2021-12-24", "12/24/2021"]
    forbidden += ["QQQQ", "2021-12-25"]
    assert [word for word in forbidden if word in written] == []
    assert "portal verify" in caplog.text  # the log does say what happened, by id
