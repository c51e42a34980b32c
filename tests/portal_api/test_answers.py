"""verify and redeem answer exactly as the portal is promised, over real HTTP."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from bot.importing.demo import DEMO_DATABASE_URL, load_demo, on_demo_database
from bot.portal.demo import issue_demo_pin
from models import PinStatus, utcnow
from tests.support.portal import PortalClient, child_with_pin
from tests.support.stack import Stack

NO_MATCH = {"error": "no_match"}
CURL_BODY = re.compile(r"-d '(.*?)'")


def test_verify_then_redeem_a_pin(stack: Stack, portal: PortalClient) -> None:
    issued = child_with_pin(stack.services, "PA-1", "Maya", date(2023, 11, 2))
    typed = issued.pin.lower().replace("-", " ")
    answer = portal.verify(typed, "2023-11-02", client_ip="203.0.113.7")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pin_id"] == str(issued.pin_id)
    assert body["patient"]["first_name"] == "Maya" and body["patient"]["dob"] == "2023-11-02"
    assert body["family"] == {"account_number": "PA-1"}
    assert body["guardian"] is None and body["delivery"] == "printed"

    first = portal.redeem(issued.pin, "2023-11-02", "acct-1")
    again = portal.redeem(issued.pin, "2023-11-02", "acct-1")
    other = portal.redeem(issued.pin, "2023-11-02", "acct-2")
    assert first.status_code == 200 and first.json()["first_use"] is True
    assert first.json()["status"] == "registered"
    assert again.status_code == 200 and again.json()["first_use"] is False
    assert other.status_code == 409 and other.json() == {"error": "already_registered"}
    assert portal.verify(issued.pin, "2023-11-02").status_code == 404


def test_every_failure_is_the_same_answer(stack: Stack, portal: PortalClient) -> None:
    dob = date(2022, 5, 6)
    active = child_with_pin(stack.services, "PA-2", "Ada", dob)
    expired = child_with_pin(
        stack.services, "PA-2", "Bo", dob, expires_at=utcnow() - timedelta(days=1)
    )
    revoked = child_with_pin(stack.services, "PA-2", "Cy", dob, status=PinStatus.REVOKED)
    locked = child_with_pin(stack.services, "PA-2", "Di", dob, status=PinStatus.LOCKED)
    before = child_with_pin(stack.services, "PA-2", "Ed", dob, status=PinStatus.REGISTERED)
    answers = [
        portal.verify("ZZZZ-ZZZZ", "2022-05-06"),
        portal.verify(active.pin, "2022-05-07"),
        portal.verify(expired.pin, "2022-05-06"),
        portal.verify(revoked.pin, "2022-05-06"),
        portal.verify(locked.pin, "2022-05-06"),
        portal.redeem(before.pin, "2022-05-06", "acct-9"),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["error"] == "no_match" and answers[0].json()["message"]


def test_pinbot_demo_prints_a_pin_the_api_redeems(stack: Stack, portal: PortalClient) -> None:
    """The curl lines `pinbot demo` prints work as printed (demo data only)."""
    today = stack.services.today()
    load_demo(stack.database, tz=stack.settings.timezone, today=today)
    on_demo = on_demo_database(DEMO_DATABASE_URL)
    lines = issue_demo_pin(stack.database, stack.services.gateway, today=today, on_demo=on_demo)  # type: ignore[arg-type]
    # The key and the bot point at the demo's own database, where the PIN is.
    pinbot_lines = [line for line in lines if ".venv/bin/pinbot" in line]
    assert len(pinbot_lines) == 2 and all(on_demo in line for line in pinbot_lines), lines
    bodies = [json.loads(m.group(1)) for m in map(CURL_BODY.search, lines) if m]
    verify, redeem = bodies
    assert portal.verify(verify["pin"], verify["dob"]).status_code == 200
    answer = portal.redeem(redeem["pin"], redeem["dob"], redeem["portal_account_id"])
    assert answer.status_code == 200 and answer.json()["first_use"] is True
