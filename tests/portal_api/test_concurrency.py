"""Concurrent calls, as two portal replicas (or a burst from one) make them: one PIN redeemed
by 20 threads with two accounts registers once; 20 failures at once from one source let
exactly the limit through."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
from sqlmodel import select

from models import AuditEvent, Pin, PinStatus
from tests.support.portal import REDEEM, VERIFY, child_with_pin, new_key
from tests.support.stack import Stack

THREADS = 20


def _post_all(api_url: str, key: str, bodies: list[dict[str, str]], path: str) -> list[int]:
    def post(body: dict[str, str]) -> httpx.Response:
        with httpx.Client(base_url=api_url, timeout=60) as http:
            return http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(post, bodies))
    return [a.status_code if a.status_code != 200 else int(a.json()["first_use"]) for a in answers]


def test_twenty_redeemers_one_first_use(stack: Stack, api_url: str) -> None:
    issued = child_with_pin(stack.services, "CC-1", "Remy", date(2020, 6, 6))
    key = new_key(stack.services)
    bodies = [
        {
            "pin": issued.pin,
            "dob": "2020-06-06",
            "portal_account_id": f"acct-{n % 2}",
            "client_ip": f"192.0.2.{n}",
        }
        for n in range(THREADS)
    ]
    outcomes = _post_all(api_url, key, bodies, REDEEM)
    assert outcomes.count(1) == 1, outcomes  # first_use: true
    assert set(outcomes) <= {1, 0, 409}, outcomes  # the rest: first_use false, or 409
    with stack.database.read_session() as session:
        pin = session.get(Pin, issued.pin_id)
        assert pin is not None and pin.status == PinStatus.REGISTERED
        winner = pin.portal_account_id
        registered = session.exec(
            select(AuditEvent).where(AuditEvent.action == "portal.redeem")
        ).all()
    assert sum('"outcome": "registered"' in event.details for event in registered) == 1
    # Everyone with the winning account was told it is theirs; the other account got 409.
    winners = [o for o, b in zip(outcomes, bodies, strict=True) if b["portal_account_id"] == winner]
    assert set(winners) <= {0, 1} and 409 not in winners


def test_concurrent_failures_let_exactly_the_limit_through(stack: Stack, api_url: str) -> None:
    key = new_key(stack.services)
    bodies = [
        {"pin": f"ZZZZ-ZZ{n:02d}", "dob": "2020-06-06", "client_ip": "192.0.2.200"}
        for n in range(THREADS)
    ]
    outcomes = _post_all(api_url, key, bodies, VERIFY)
    assert outcomes.count(404) == 10 and outcomes.count(429) == THREADS - 10, outcomes
