"""Hostile input through the real HTTP surface (issue 6, item 1): arbitrary slash-command text,
tampered Issue PINs and name-fix dialog submissions, tampered buttons and malformed
interactivity payloads. Every case gets HTTP 200, a sentence (ephemeral or a dialog error),
no traceback anywhere, and changes no table (tests/support/hardening.py says why auditevent is
checked differently).

Each test builds one stack (per store) and lets hypothesis drive many requests through it:
every example is a user error by construction (a tamper is always applied), so "nothing
changed" holds for each one."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.ids import FamilyIds, IssueIds, NameFixIds
from models import FamilyThread
from tests.support.hardening import (
    Practice,
    add_practice,
    assert_no_leak,
    assert_unchanged,
    button_value,
    call_count,
    calls_since,
    card_message,
    issue_values,
    last_audit_id,
    name_fix_values,
    reply_text,
    snapshot,
    wait_for_call,
)
from tests.support.slack_requests import STAFF_USER_ID, Response
from tests.support.stack import Stack, eventually

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Control and bidi characters that str.split() does not treat as whitespace.
CONTROLS = [
    c
    for c in [*map(chr, range(0x20)), "\x7f", "\u200b", "\u200e", "\u202e", "\u2066"]
    if not c.isspace()
]
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "Ava\x00Quill",
    "\u202eevil\u202c",
    "مرحبا بك",
    "שלום",
    "李小龙",
    "👶🏽👨‍👩‍👧",
    "<!channel>",
    "<@U0STAFF01>",
    "<mailto:x@y.z|x>",
    "&amp;",
    "%00",
    "\r\n",
    "03/02/2019",
    "99/99/9999",
    "2019-02-30",
    "1/2/19",
    "@",
    "a@",
    ",",
    "smith,",
    ", ava",
    "555-010",
    "+1 (555) 010-2001 ext 9",
    "ZZ" * 150,
    "quill " * 12,
    "\ud7ff",
    "\U0010fffd",
    '{"family_id": 1}',
    "null",
    "Robert'); DROP TABLE patient;--",
    "%s%s%n",
    "${jndi:x}",
]
ANY_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(ODD_STRINGS),
    st.builds(
        lambda s, n: s * n,
        st.sampled_from(["x", "é", "👶", "\u202e", "a b "]),
        st.integers(150, 3000),
    ),
)


def _not_an_id(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return text != "none"
    return False


GARBAGE = ANY_TEXT.filter(_not_an_id)
_SERIAL = itertools.count(1)


@pytest.fixture
def practice(stack: Stack) -> Practice:
    return add_practice(stack)


def _state(stack: Stack) -> tuple[int, dict[str, list[tuple[Any, ...]]], int]:
    """Where Slack's calls, the tables and the audit trail stand before a request."""
    return call_count(stack), snapshot(stack.database), last_audit_id(stack.database)


# --------------------------------------------------------------------------- slash commands


def _threads(stack: Stack) -> int:
    with stack.database.read_session() as session:
        return int(session.exec(select(func.count()).select_from(FamilyThread)).one()[0])


@FUZZ
@given(command=st.sampled_from(["/family", "/pin", "/pinbot"]), text=ANY_TEXT)
def test_any_command_text_gets_a_sentence_and_changes_nothing(
    stack: Stack, practice: Practice, command: str, text: str
) -> None:
    index, before, audit = _state(stack)
    threads = _threads(stack)
    response = stack.command(command, text)
    assert response.status == 200
    seen = reply_text(response)
    if not seen.strip():  # acked first: the answer follows as a card, a dialog or a message
        wait_for_call(
            stack, index, {"chat.postMessage", "views.open", "chat.postEphemeral", "response_url"}
        )
    new = calls_since(stack, index)
    assert all(call.ok or call.method == "response_url" for call in new), new
    assert_no_leak(seen, *(json.dumps(call.args) for call in new))
    assert seen.strip() or new
    cards = [call for call in new if call.method == "chat.postMessage"]
    if cards:  # one family matched: its card is the only change (a new thread)
        assert command == "/family" and len(cards) == 1
        eventually(lambda: _assert_equal(_threads(stack), threads + 1))
        before["familythread"] = snapshot(stack.database)["familythread"]
    assert_unchanged(stack.database, before, audit)


def _assert_equal(left: object, right: object) -> None:
    assert left == right


# --------------------------------------------------------------------------- Issue PINs dialog


def _open_from_card(stack: Stack, practice: Practice, action_id: str) -> dict[str, Any]:
    value = button_value(card_message(stack, practice.card_a), action_id)
    views = len(stack.fake_slack.calls_to("views.open"))
    stack.click(action_id, value, message_ts=practice.card_a)
    stack.fake_slack.wait_for("views.open", views + 1)
    return stack.opened_view()


@pytest.fixture
def issue_view(stack: Stack, practice: Practice) -> dict[str, Any]:
    return _open_from_card(stack, practice, IssueIds.OPEN_DIALOG)


@pytest.fixture
def fix_view(stack: Stack, practice: Practice) -> dict[str, Any]:
    return _open_from_card(stack, practice, NameFixIds.REQUEST)


Tamper = Callable[[Practice], tuple[dict[str, dict[str, Any]], str]]


def _issue_tampers(garbage: str) -> list[Tamper]:
    """Each returns (state values, private_metadata or "" to keep the dialog's own)."""
    ok = issue_values  # shorthand: (children, recipient, emailed)
    return [
        lambda p: (ok([str(p.ava), str(p.ivy)], str(p.wren), None), ""),  # B's child
        lambda p: (ok([], str(p.wren), None), ""),
        lambda p: (ok(None, str(p.wren), None), ""),  # children block missing
        lambda p: (ok([garbage], str(p.wren), None), ""),
        lambda p: (ok([str(p.ava), garbage], "none", None), ""),
        lambda p: (ok([str(p.baby)], "none", None), ""),  # not eligible
        lambda p: (ok([str(p.ava)], str(p.moss), None), ""),  # B's guardian
        lambda p: (ok([str(p.ava)], str(p.rowan), None), ""),  # no email on file
        lambda p: (ok([str(p.ava)], garbage, None), ""),
        lambda p: (ok([str(p.ava)], None, None), ""),  # recipient block missing
        lambda p: (ok([str(p.ava)], str(p.wren), str(p.ben)), ""),  # emailed not selected
        lambda p: (ok([str(p.ava)], str(p.wren), str(p.ivy)), ""),
        # An empty choice means "the oldest selected child": a valid submission, not a tamper.
        lambda p: (ok([str(p.ava)], str(p.wren), garbage or "x"), ""),
        lambda p: (ok([str(p.ava)], "none", None), garbage or "{"),  # metadata mangled
        lambda p: (ok([str(p.ava)], "none", None), json.dumps({"family_id": p.b})),
        lambda p: (ok([str(p.ava)], "none", None), json.dumps({"family_id": 999_999})),
        lambda p: (ok([str(p.ava)], "none", None), json.dumps({"family_id": "x" * 9000})),
        lambda p: (
            {
                IssueIds.CHILDREN: {
                    IssueIds.CHILDREN_ACTION: {"type": "plain_text_input", "value": str(p.ava)}
                }
            },
            "",
        ),  # wrong element shape
        lambda p: (ok([str(i) for i in range(10_000, 10_400)], "none", None), ""),
    ]


def _dialog_error(response: Response, view: dict[str, Any]) -> str:
    """The sentence a refused submission shows inside the dialog; only input blocks can
    carry an error (Slack rejects the response otherwise)."""
    assert response.status == 200
    body = response.json()
    if body.get("response_action") == "update":
        return json.dumps(body["view"]["blocks"])
    assert body.get("response_action") == "errors", body
    inputs = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert body["errors"] and set(body["errors"]) <= inputs, body
    assert all(isinstance(v, str) and v.strip() for v in body["errors"].values())
    return " ".join(body["errors"].values())


@FUZZ
@given(tamper=st.integers(0, 18), garbage=GARBAGE)
def test_tampered_issue_submissions_are_refused_in_the_dialog(
    stack: Stack, practice: Practice, issue_view: dict[str, Any], tamper: int, garbage: str
) -> None:
    view = issue_view
    values, metadata = _issue_tampers(garbage)[tamper](practice)
    index, before, audit = _state(stack)
    # A fresh view id per example: a tamper that wrongly succeeded fails its own example,
    # not the next one (whose submission would replay the batch).
    response = stack.submit(
        {**view, "id": f"V0FUZZ{next(_SERIAL):06d}"}, values, private_metadata=metadata
    )
    assert_no_leak(_dialog_error(response, view))
    assert_unchanged(stack.database, before, audit)
    assert not [c for c in calls_since(stack, index) if c.method != "auth.test"]


NAME_TAMPERS = [
    "control",
    "empty",
    "huge",
    "no_letters",
    "placeholder",
    "confirmed",
    "no_confirmed",
    "note",
    "metadata",
]


def _name_fix_case(
    practice: Practice,
    view: dict[str, Any],
    tamper: str,
    garbage: str,
    control: str,
    where: int,
    noise: str,
) -> tuple[list[str | None], str]:
    fields: list[str | None] = ["Juniper", noise, "Quillfeather", "birth_certificate", noise]
    metadata = ""
    if tamper == "control":
        # Names (first, last) refuse control characters; the free-text note drops them.
        slot = where % 2 * 2
        name = fields[slot] or "Juniper"
        fields[slot] = name[:2] + control + name[2:]
    elif tamper == "empty":
        fields[where * 2 if where < 2 else 0] = " " if where else None
    elif tamper == "huge":
        # Names allow 100 characters, the note (where == 2) 500.
        fields[where * 2] = "Ju" + "n" * (101 if where < 2 else 501) + garbage
    elif tamper == "no_letters":
        fields[0] = ["123", "!!!", "👶👶", "-- --", "\u0301"][where % 5]
    elif tamper == "placeholder":
        fields[0] = ["Baby", "Girl", "Twin A", "Babygirl", "Unknown"][where % 5]
    elif tamper == "confirmed":
        fields[3] = (
            garbage
            if garbage not in {"birth_certificate", "parent_in_person", "hospital_record"}
            else "x"
        )
    elif tamper == "no_confirmed":
        fields[3] = None
    elif tamper == "note":
        fields[4] = "n" * 501 + garbage
    else:
        meta = json.loads(view["private_metadata"])
        metadata = [
            garbage or "[",
            json.dumps({**meta, "patient_id": practice.ivy}),  # another family's child
            json.dumps({**meta, "patient_id": practice.ava}),  # a real name: nothing to fix
            json.dumps({**meta, "family_id": practice.b}),
            json.dumps({**meta, "thread_ts": practice.card_b}),  # B's card, A's child
            json.dumps({**meta, "channel_id": None}),
            json.dumps({**meta, "patient_id": 999_999}),
        ][where % 7]
    return fields, metadata


@FUZZ
@given(
    tamper=st.sampled_from(NAME_TAMPERS),
    garbage=GARBAGE,
    control=st.sampled_from(CONTROLS),
    where=st.integers(0, 2),
    noise=st.one_of(st.none(), ANY_TEXT),
)
def test_tampered_name_fix_submissions_are_refused_in_the_dialog(
    stack: Stack,
    practice: Practice,
    fix_view: dict[str, Any],
    tamper: str,
    garbage: str,
    control: str,
    where: int,
    noise: str | None,
) -> None:
    view = fix_view
    fields, metadata = _name_fix_case(practice, view, tamper, garbage, control, where, noise or "")
    index, before, audit = _state(stack)
    response = stack.submit(view, name_fix_values(*fields), private_metadata=metadata)
    assert_no_leak(_dialog_error(response, view))
    assert_unchanged(stack.database, before, audit)
    assert not [c for c in calls_since(stack, index) if c.method != "auth.test"]


# --------------------------------------------------------------------------- buttons

ACTIONS = [
    FamilyIds.OPEN,
    FamilyIds.PICK_CHILD,
    IssueIds.OPEN_DIALOG,
    NameFixIds.REQUEST,
    NameFixIds.APPROVE,
    NameFixIds.REJECT,
    NameFixIds.CONFIRM_AS_IS,
    IssueIds.RETRY_UPLOAD,
]


def _button_values(practice: Practice, garbage: str) -> list[str | None]:
    """Values no button of this practice's card A may act on."""
    p = practice
    return [
        None,
        garbage,
        "{",
        "[]",
        "null",
        '{"family_id": "1"}x',
        "x" * 20_000,
        json.dumps({"family_id": p.b}),  # B's family, clicked under A's card
        json.dumps({"family_id": p.b, "patient_id": p.ivy}),
        json.dumps({"family_id": p.a, "patient_id": p.ivy}),  # B's child, A's family
        json.dumps({"family_id": p.a, "patient_id": p.ava}),  # a real name: nothing to fix
        json.dumps({"family_id": 999_999, "patient_id": 999_999}),
        json.dumps({"family_id": -1, "patient_id": 0}),
        json.dumps({"family_id": 1.5}),
        json.dumps({"family_id": [p.a]}),
        json.dumps({"family_id": p.a, "extra": "field"}),
        json.dumps({"name_fix_id": 999_999}),
        json.dumps({"name_fix_id": "1; DROP"}),
        json.dumps({"family_id": 2**70}),
        json.dumps({"work_id": 2**70}),
        json.dumps({"work_id": 999_999}),
    ]


@FUZZ
@given(
    action=st.sampled_from([*ACTIONS, "not_ours", "digest_anything"]),
    pick=st.integers(0, 20),
    garbage=GARBAGE,
    ephemeral=st.booleans(),
)
def test_tampered_buttons_get_an_ephemeral_sentence_and_change_nothing(
    stack: Stack, practice: Practice, action: str, pick: int, garbage: str, ephemeral: bool
) -> None:
    value = _button_values(practice, garbage)[pick]
    # Genuine buttons: B's family or child outside any card, A's own child anywhere.
    assume(
        not (
            ephemeral
            and (action, pick)
            in {(FamilyIds.OPEN, 7), (IssueIds.OPEN_DIALOG, 7), (FamilyIds.PICK_CHILD, 8)}
        )
    )
    assume((action, pick) != (FamilyIds.PICK_CHILD, 10))
    index, before, audit = _state(stack)
    started = time.monotonic()
    response = stack.click(action, value, message_ts=practice.card_a, is_ephemeral=ephemeral)
    # Well inside Slack's 3 s: a refusal after ack() must not stall the HTTP answer.
    assert response.status == 200 and time.monotonic() - started < 2
    assert_no_leak(response.text)
    told = wait_for_call(stack, index, {"chat.postEphemeral"})
    assert told.args["user"] == STAFF_USER_ID and told.args["text"].strip()
    new = calls_since(stack, index)
    assert not [
        c.method for c in new if c.method in {"views.open", "chat.postMessage", "chat.update"}
    ]
    assert_no_leak(*(json.dumps(call.args) for call in new))
    assert_unchanged(stack.database, before, audit)


# --------------------------------------------------------------------------- raw payloads

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
PAYLOAD_TYPES = [
    "block_actions",
    "view_submission",
    "view_closed",
    "shortcut",
    "message_action",
    "block_suggestion",
    "interactive_message",
    "garbage",
]


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, Any]:
    """Interactivity payloads with Slack's envelope but arbitrary, missing or mistyped
    parts: no user, a user without an id, actions that aren't a list, views without state."""
    payload: dict[str, Any] = {
        "type": draw(st.sampled_from(PAYLOAD_TYPES)),
        "team": {"id": "T0PINBOT1"},
        "api_app_id": "A0PINBOT1",
    }
    payload["user"] = draw(
        st.sampled_from(
            [{"id": STAFF_USER_ID}, {"id": STAFF_USER_ID, "name": "x"}, {}, None, "U0STAFF01"]
        )
    )
    for key in (
        "actions",
        "view",
        "channel",
        "container",
        "message",
        "trigger_id",
        "callback_id",
        "state",
    ):
        if draw(st.booleans()):
            payload[key] = draw(JSONISH)
    if draw(st.booleans()):
        payload["actions"] = [
            {
                "action_id": draw(st.sampled_from(ACTIONS)),
                "value": draw(st.one_of(st.none(), GARBAGE)),
                "type": "button",
                "block_id": "b",
            }
        ]
    if draw(st.booleans()):
        payload["view"] = {
            "id": "V0FUZZ",
            "callback_id": draw(
                st.sampled_from(
                    [IssueIds.CALLBACK, NameFixIds.CALLBACK, NameFixIds.REJECT_CALLBACK, "other"]
                )
            ),
            "private_metadata": draw(GARBAGE),
            "state": draw(JSONISH),
            "blocks": [],
        }
    return {k: v for k, v in payload.items() if v is not None}


@FUZZ
@given(payload=_payloads())
def test_malformed_interactivity_payloads_never_500(
    stack: Stack, practice: Practice, payload: dict[str, Any]
) -> None:
    before, audit = snapshot(stack.database), last_audit_id(stack.database)
    index = call_count(stack)
    response = stack.sender.interaction(payload)
    assert response.status == 200, (response.status, response.text)
    assert_no_leak(response.text)
    assert_no_leak(*(json.dumps(call.args) for call in calls_since(stack, index)))
    assert_unchanged(stack.database, before, audit)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=",
        b"payload=%7B",
        b"payload=%5B1%5D",
        b"payload=null",
        b"payload=%22x%22",
        b"command=",
        b"\xff\xfe\x00",
        b"a=1&a=2&payload=%7B%7D",
    ],
)
def test_unparseable_bodies_never_500(stack: Stack, body: bytes) -> None:
    response = stack.sender.raw(body)
    assert response.status < 500, (response.status, response.text)
    assert_no_leak(response.text)
