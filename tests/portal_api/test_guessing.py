"""Guessing is bounded: 5 wrong dates of birth lock a PIN (the thread told, the card shows
it); a source gets 429 after 10 failures in 15 minutes, for a minute, then doubling; a success
clears it; a key failing 100 times in a row is slowed and the staff channel told once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.issuing_flow import open_card
from tests.support.portal import (
    PortalClient,
    SettableClock,
    child_with_pin,
    new_key,
    portal_client,
    serve_portal_api,
    thread_texts,
)
from tests.support.slack_requests import CHANNEL_ID
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack, build_stack, eventually

PARENT = "198.51.100.7"


@pytest.fixture
def clock(stack: Stack) -> SettableClock:
    stack.services.clock = SettableClock()
    return stack.services.clock


def test_five_wrong_dates_of_birth_lock_the_pin(stack: Stack, portal: PortalClient) -> None:
    issued = child_with_pin(stack.services, "LK-1", "Juno", date(2021, 4, 9))
    card_ts, _ = open_card(stack, "LK-1")
    for day in range(10, 15):  # five wrong dates, from five addresses (no source throttle)
        wrong = portal.verify(issued.pin, f"2021-04-{day}", client_ip=f"198.51.100.{day}")
        assert wrong.status_code == 404
    right = portal.verify(issued.pin, "2021-04-09", client_ip="198.51.100.99")
    assert right.status_code == 404 and right.json()["error"] == "no_match"
    stack.deliver()
    told = eventually(lambda: _one(thread_texts(stack.fake_slack.messages(), card_ts, "locked")))
    assert (
        "5 tries with a wrong date of birth for Juno's PIN: it is locked. Issue PINs again for "
        "a new one." in told
    )
    _, blocks = open_card(stack, "LK-1")
    assert "PIN: locked" in json.dumps(blocks)


def _one(texts: list[str]) -> str:
    assert len(texts) == 1, texts
    return texts[0]


def test_a_source_is_slowed_doubling_and_a_success_clears_it(
    stack: Stack, portal: PortalClient, clock: SettableClock
) -> None:
    issued = child_with_pin(stack.services, "TH-1", "Ivo", date(2020, 2, 2))
    for _ in range(9):
        assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip=PARENT).status_code == 404
    assert portal.verify(issued.pin, "2020-02-02", client_ip=PARENT).status_code == 200
    for _ in range(10):  # the success cleared the nine: ten more failures get through
        assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip=PARENT).status_code == 404
    blocked = portal.verify(issued.pin, "2020-02-02", client_ip=PARENT)
    assert blocked.status_code == 429 and blocked.json() == {"error": "too_many_attempts"}
    assert blocked.headers["Retry-After"] == "60"
    # Another parent is not held up by this one.
    assert portal.verify(issued.pin, "2020-02-02", client_ip="198.51.100.8").status_code == 200

    clock.advance(61)  # the block is over; one more failure blocks for twice as long
    assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip=PARENT).status_code == 404
    again = portal.verify(issued.pin, "2020-02-02", client_ip=PARENT)
    assert again.status_code == 429 and again.headers["Retry-After"] == "120"

    clock.advance(121)  # over again: a success clears the count and the doubling
    assert portal.verify(issued.pin, "2020-02-02", client_ip=PARENT).status_code == 200
    assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip=PARENT).status_code == 404
    assert portal.verify(issued.pin, "2020-02-02", client_ip=PARENT).status_code == 200


def test_without_client_ip_the_key_is_the_source(stack: Stack, portal: PortalClient) -> None:
    for _ in range(10):
        assert portal.verify("ZZZZ-ZZZ1", "2020-02-02").status_code == 404
    assert portal.verify("ZZZZ-ZZZ1", "2020-02-02").status_code == 429


@pytest.fixture
def stack_with_staff_channel(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server, REMINDER_CHANNEL_ID=CHANNEL_ID)


def test_a_key_failing_100_times_in_a_row_is_slowed_and_staff_told_once(
    stack_with_staff_channel: Stack,
) -> None:
    stack = stack_with_staff_channel
    clock = SettableClock()
    stack.services.clock = clock
    with (
        serve_portal_api(stack.services) as url,
        portal_client(url, new_key(stack.services, "vendor")) as portal,
    ):
        for n in range(100):  # every parent tries once: no source is throttled
            answer = portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip=f"10.0.{n // 200}.{n}")
            assert answer.status_code == 404, n
        slowed = portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip="10.9.9.9")
        assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "60"
        clock.advance(61)
        assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip="10.9.9.8").status_code == 404
        assert portal.verify("ZZZZ-ZZZ1", "2020-02-02", client_ip="10.9.9.7").status_code == 429
    stack.deliver()
    alarms = [
        m["text"]
        for m in stack.fake_slack.messages(CHANNEL_ID)
        if "portal API key" in m.get("text", "")
    ]
    assert len(alarms) == 1, alarms
    assert "*vendor*" in alarms[0] and "100 PIN checks in a row" in alarms[0]
