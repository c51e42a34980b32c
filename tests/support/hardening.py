"""Shared by the hardening tests (fuzzing, injection, security): a two-family practice with
posted cards, a snapshot of every table to prove "nothing changed", and scans of what reached
Slack for tracebacks.

"Nothing changed" covers every table except `auditevent`: refusals and searches are recorded
there on purpose (SPEC §7 "every action audited"), so the tests check that new audit rows are
only of the kinds a refused or read-only request writes, never that there are none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.db import Database
from handlers.ids import IssueIds, NameFixIds
from models import AuditEvent
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import Call
from tests.support.slack_requests import CHANNEL_ID, Response
from tests.support.stack import Stack

# Audit rows a request that changes nothing may still write.
READ_ONLY_AUDIT = frozenset({"refused", "family.search", "family.card", "name_fix.refused"})
# Signs that an exception reached the user instead of a sentence.
LEAK_MARKERS = ("Traceback", 'File "', "Something went wrong", "Exception", "Error(")


@dataclass(frozen=True)
class Practice:
    """Quillfeathers (A) and Hollowbrooks (B), each with a card posted in CHANNEL_ID."""

    a: int
    b: int
    ava: int
    ben: int
    baby: int  # "Baby Girl": unofficial name, not eligible
    ivy: int  # family B's child
    wren: int  # A's guardian with an email
    rowan: int  # A's guardian without one
    moss: int  # B's guardian
    card_a: str
    card_b: str


def add_practice(stack: Stack) -> Practice:
    with stack.database.transaction() as session:
        a, b = make_family(session, "QF-2001"), make_family(session, "HB-3001")
        wren = make_guardian(session, a, "Wren", "Quillfeather", email="wren.q@example.com")
        rowan = make_guardian(
            session, a, "Rowan", "Quillfeather", email=None, phone=None, relationship="father"
        )
        moss = make_guardian(session, b, "Moss", "Hollowbrook", email="moss.h@example.org")
        ava = make_patient(session, a, "Ava", date(2019, 3, 2), last="Quillfeather")
        ben = make_patient(session, a, "Ben", date(2021, 7, 14), last="Quillfeather")
        baby = make_patient(
            session, a, "Baby Girl", date(2026, 11, 10), last="Quillfeather", name_type="NB"
        )
        ivy = make_patient(session, b, "Ivy", date(2020, 5, 5), last="Hollowbrook")
    ids = {
        name: row.id or 0
        for name, row in (
            ("a", a),
            ("b", b),
            ("ava", ava),
            ("ben", ben),
            ("baby", baby),
            ("ivy", ivy),
            ("wren", wren),
            ("rowan", rowan),
            ("moss", moss),
        )
    }
    card_a, card_b = post_card(stack, "quillfeather"), post_card(stack, "hollowbrook")
    return Practice(**ids, card_a=card_a, card_b=card_b)


def post_card(stack: Stack, query: str) -> str:
    """/family `query` (one match): the card's ts, once the bot has recorded its thread."""
    posts = len(stack.fake_slack.calls_to("chat.postMessage"))
    assert stack.command("/family", query).status == 200
    ts = str(stack.fake_slack.wait_for("chat.postMessage", posts + 1)[-1].response["ts"])
    wait_for_thread(stack.database, ts)
    return ts


def wait_for_thread(database: Database, ts: str) -> None:
    from models import FamilyThread
    from tests.support.stack import eventually

    def recorded() -> None:
        with database.read_session() as session:
            assert session.exec(select(FamilyThread).where(FamilyThread.thread_ts == ts)).first()

    eventually(recorded)


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but auditevent, in primary-key order."""
    with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
            if table.name != "auditevent"
        }


def last_audit_id(database: Database) -> int:
    with database.read_session() as session:
        return int(session.exec(select(func.coalesce(func.max(AuditEvent.id), 0))).one()[0])


def audit_actions_since(database: Database, audit_id: int) -> set[str]:
    with database.read_session() as session:
        return set(
            session.exec(select(AuditEvent.action).where(AuditEvent.id > audit_id)).scalars()
        )


def assert_unchanged(
    database: Database, before: dict[str, list[tuple[Any, ...]]], audit_id: int
) -> None:
    after = snapshot(database)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"tables changed: {changed}"
    assert audit_actions_since(database, audit_id) <= READ_ONLY_AUDIT


def reply_text(response: Response) -> str:
    """What the user sees of a command's immediate reply (JSON text and blocks, or plain)."""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        return str(body.get("text", "")) + json.dumps(body.get("blocks", []))
    return response.text


def assert_no_leak(*texts: str) -> None:
    for text in texts:
        found = [marker for marker in LEAK_MARKERS if marker in text]
        assert not found, f"{found} in {text[:500]!r}"


def calls_since(stack: Stack, index: int) -> list[Call]:
    with stack.fake_slack._lock:
        return list(stack.fake_slack.calls[index:])


def call_count(stack: Stack) -> int:
    with stack.fake_slack._lock:
        return len(stack.fake_slack.calls)


def wait_for_call(stack: Stack, index: int, methods: set[str], timeout: float = 5) -> Call:
    """The first call to one of `methods` after `index` (waiting for it)."""
    fake = stack.fake_slack
    with fake._changed:
        fake._changed.wait_for(
            lambda: any(c.method in methods for c in fake.calls[index:]), timeout
        )
    found = [c for c in calls_since(stack, index) if c.method in methods]
    assert found, f"no call to {methods}; got {[c.method for c in calls_since(stack, index)]}"
    return found[0]


def issue_values(
    children: list[str] | None, recipient: str | None, emailed: str | None
) -> dict[str, dict[str, Any]]:
    """state.values of the Issue PINs dialog; None leaves a block out entirely."""
    from tests.support.slack_requests import checkboxes_value, static_select_value

    values: dict[str, dict[str, Any]] = {}
    if children is not None:
        values[IssueIds.CHILDREN] = {IssueIds.CHILDREN_ACTION: checkboxes_value(children)}
    if recipient is not None:
        values[IssueIds.RECIPIENT] = {IssueIds.RECIPIENT_ACTION: static_select_value(recipient)}
    values[IssueIds.EMAILED_CHILD] = {IssueIds.EMAILED_CHILD_ACTION: static_select_value(emailed)}
    return values


def name_fix_values(
    first: str | None,
    middle: str | None,
    last: str | None,
    confirmed_by: str | None,
    note: str | None,
) -> dict[str, dict[str, Any]]:
    from tests.support.slack_requests import plain_text_value, radio_value

    return {
        NameFixIds.FIRST: {NameFixIds.FIRST_ACTION: plain_text_value(first)},
        NameFixIds.MIDDLE: {NameFixIds.MIDDLE_ACTION: plain_text_value(middle)},
        NameFixIds.LAST: {NameFixIds.LAST_ACTION: plain_text_value(last)},
        NameFixIds.CONFIRMED_BY: {NameFixIds.CONFIRMED_BY_ACTION: radio_value(confirmed_by)},
        NameFixIds.NOTE: {NameFixIds.NOTE_ACTION: plain_text_value(note)},
    }


def button_value(message: dict[str, Any], action_id: str) -> str:
    blocks = message.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return str(
        next(
            e["value"]
            for b in blocks
            for e in b.get("elements") or [b.get("accessory")]
            if e and e.get("action_id") == action_id
        )
    )


def card_message(stack: Stack, ts: str) -> dict[str, Any]:
    return stack.fake_slack.message(CHANNEL_ID, ts)
