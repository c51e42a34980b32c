"""Security (issue 6, item 4): signatures, who may act, which family a button may act on, and
where PINs and secrets must never appear.

- Forged, missing and stale signatures, and a captured request replayed after Bolt's 5-minute
  window, get 401 and do nothing (HTTP mode).
- Guests, and anyone outside ALLOWED_CHANNEL_IDS, are refused on every command, button and
  dialog submission, with a sentence and an audit row, and nothing else happens; so are users
  of another workspace and a dialog submission that names no channel.
- A button carrying another family's or child's ids can't act on it from a family's thread.
- After PINs are issued through the real flow and delivered, no PIN (read back from the PDF)
  is in any log record (DEBUG, every logger, slack_sdk included), any call that reached
  Slack, any table (audit rows and delivered outgoing work included); no secret is logged.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader
from slack_sdk.signature import Clock
from sqlmodel import select

from handlers.ids import FamilyIds, IssueIds, NameFixIds
from handlers.middleware import CHANNEL_REFUSAL, GUEST_REFUSAL, TEAM_REFUSAL
from models import AuditEvent, NameFix
from tests.support.fake_slack import UPLOAD, FakeSlack
from tests.support.hardening import (
    Practice,
    add_practice,
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
from tests.support.slack_requests import CHANNEL_ID, STAFF_USER_ID, command_payload, sign
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpServer
from tests.support.stack import SIGNING_SECRET, SUPERVISOR_ID, Stack, build_stack, eventually

PIN = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
GUEST = "U0GUEST01"
ELSEWHERE = "C0ELSEWHERE"
BOT_TOKEN = "xoxb-test-token"


# --------------------------------------------------------------------------- signatures


def _nothing_happened(stack: Stack, index: int, before: dict[str, Any]) -> None:
    time.sleep(0.2)  # give a wrongly accepted request the chance to act
    assert [c.method for c in calls_since(stack, index)] == []
    assert snapshot(stack.database) == before
    with stack.database.read_session() as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_forged_missing_and_stale_signatures_get_401(stack: Stack) -> None:
    body = json.dumps({"type": "block_actions", "user": {"id": STAFF_USER_ID}}).encode()
    command = "&".join(f"{k}={v}" for k, v in command_payload("/pinbot", "help").items())
    index, before = call_count(stack), snapshot(stack.database)
    statuses = [
        stack.sender.raw(command.encode(), {"X-Slack-Signature": "v0=" + "0" * 64}).status,
        stack.sender.raw(command.encode(), signed=False).status,
        stack.sender.raw(command.encode(), sign(command.encode(), "another-secret")).status,
        stack.sender.command("/pinbot", "help", timestamp=int(time.time()) - 6 * 60).status,
        stack.sender.command("/pinbot", "help", timestamp=int(time.time()) + 6 * 60).status,
        stack.sender.raw(b"payload=" + body, {"X-Slack-Request-Timestamp": "soon"}).status,
        stack.sender.raw(b"payload=%7B%22garbage", signed=False).status,  # unparseable too
        stack.sender.raw(b"\xff\xfe", signed=False).status,
    ]
    assert statuses == [401] * len(statuses)
    _nothing_happened(stack, index, before)


def test_a_replay_after_five_minutes_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same body and signature Slack sent, replayed: accepted inside Bolt's window (the
    bot's idempotency keys make that harmless), refused 5 minutes later."""
    payload = command_payload("/pinbot", "help", response_url=stack.fake_slack.response_url())
    body = "&".join(f"{k}={v}" for k, v in payload.items()).encode()
    headers = sign(body, SIGNING_SECRET)
    assert stack.sender.raw(body, headers, signed=False).status == 200
    index, before = call_count(stack), snapshot(stack.database)
    later = time.time() + 5 * 60 + 1
    monkeypatch.setattr(Clock, "now", lambda self: later)  # the verifiers' clock only
    assert stack.sender.raw(body, headers, signed=False).status == 401
    _nothing_happened(stack, index, before)


# --------------------------------------------------------------------------- who may act


@pytest.fixture
def locked_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    fake_slack.add_user(GUEST, name="guest", is_restricted=True)
    yield from build_stack(database_url, fake_slack, smtp_server, ALLOWED_CHANNEL_IDS=CHANNEL_ID)


def _pending_fix(stack: Stack, practice: Practice) -> tuple[str, str]:
    """A name-fix request for the newborn, posted in card A's thread: (its ts, its value)."""
    card = card_message(stack, practice.card_a)
    views = len(stack.fake_slack.calls_to("views.open"))
    stack.click(
        NameFixIds.REQUEST, button_value(card, NameFixIds.REQUEST), message_ts=practice.card_a
    )
    stack.fake_slack.wait_for("views.open", views + 1)
    posts = len(stack.fake_slack.calls_to("chat.postMessage"))
    stack.submit(
        stack.opened_view(),
        name_fix_values("Juniper", None, "Quillfeather", "birth_certificate", None),
    )
    request = stack.fake_slack.wait_for("chat.postMessage", posts + 1)[-1]
    ts = request.response["ts"]

    def recorded() -> None:
        with stack.database.read_session() as session:
            assert session.exec(select(NameFix).where(NameFix.message_ts == ts)).first()

    eventually(recorded)
    return ts, button_value(request.args, NameFixIds.APPROVE)


def test_guests_and_other_channels_are_refused_everywhere(locked_stack: Stack) -> None:
    stack = locked_stack
    practice = add_practice(stack)
    request_ts, fix_value = _pending_fix(stack, practice)
    card = card_message(stack, practice.card_a)
    issue_view = _open(
        stack, IssueIds.OPEN_DIALOG, button_value(card, IssueIds.OPEN_DIALOG), practice.card_a
    )
    clicks = [  # genuine buttons: only who clicks, or where, is wrong
        (FamilyIds.OPEN, json.dumps({"family_id": practice.a}), practice.card_a),
        (
            FamilyIds.PICK_CHILD,
            json.dumps({"family_id": practice.a, "patient_id": practice.ava}),
            practice.card_a,
        ),
        (IssueIds.OPEN_DIALOG, button_value(card, IssueIds.OPEN_DIALOG), practice.card_a),
        (NameFixIds.REQUEST, button_value(card, NameFixIds.REQUEST), practice.card_a),
        (NameFixIds.APPROVE, fix_value, request_ts),
        (NameFixIds.REJECT, fix_value, request_ts),
        (NameFixIds.CONFIRM_AS_IS, fix_value, request_ts),
    ]
    submissions = [
        (issue_view, issue_values([str(practice.ava)], "none", None)),
        (
            _reject_view(fix_value, request_ts),
            {
                NameFixIds.REASON: {
                    NameFixIds.REASON_ACTION: {"type": "plain_text_input", "value": "no"}
                }
            },
        ),
    ]
    for user, channel, refusal in (
        (GUEST, CHANNEL_ID, GUEST_REFUSAL),
        (SUPERVISOR_ID, ELSEWHERE, CHANNEL_REFUSAL),
    ):
        for command, text in (
            ("/family", "quillfeather"),
            ("/pin", "ava"),
            ("/pinbot", "today"),
            ("/pinbot", "pending"),
            ("/pinbot", ""),
        ):
            _refused(
                stack,
                refusal,
                lambda c=command, t=text, u=user, ch=channel: stack.command(
                    c, t, user_id=u, channel_id=ch
                ),
            )
        for action_id, value, ts in clicks:
            _refused(
                stack,
                refusal,
                lambda a=action_id, v=value, m=ts, u=user, ch=channel: stack.click(
                    a, v, user_id=u, channel_id=ch, message_ts=m
                ),
                told=user,
            )
        for view, values in submissions:
            if channel != CHANNEL_ID:  # a dialog carries the channel it was opened from
                view = {
                    **view,
                    "private_metadata": json.dumps(
                        {**json.loads(view["private_metadata"]), "channel_id": channel}
                    ),
                }
            _refused(stack, refusal, lambda v=view, s=values, u=user: stack.submit(v, s, user_id=u))


def test_another_workspace_and_a_dialog_without_its_channel_are_refused(
    locked_stack: Stack,
) -> None:
    stack = locked_stack
    practice = add_practice(stack)
    card = card_message(stack, practice.card_a)
    value = button_value(card, IssueIds.OPEN_DIALOG)
    issue_view = _open(stack, IssueIds.OPEN_DIALOG, value, practice.card_a)
    values = issue_values([str(practice.ava)], "none", None)
    other = "T0ELSEWHERE"  # the bot's own workspace is auth.test's (the fake's TEAM_ID)

    _refused(stack, TEAM_REFUSAL, lambda: stack.command("/family", "quillfeather", team_id=other))
    _refused(
        stack,
        TEAM_REFUSAL,
        lambda: stack.click(IssueIds.OPEN_DIALOG, value, message_ts=practice.card_a, team_id=other),
        told=STAFF_USER_ID,
    )
    _refused(stack, TEAM_REFUSAL, lambda: stack.submit(issue_view, values, team_id=other))

    meta = json.loads(issue_view["private_metadata"])
    del meta["channel_id"]
    unplaced = {**issue_view, "private_metadata": json.dumps(meta)}
    _refused(stack, CHANNEL_REFUSAL, lambda: stack.submit(unplaced, values))
    with stack.database.read_session() as session:
        reasons = [
            json.loads(e.details).get("reason")
            for e in session.exec(select(AuditEvent).where(AuditEvent.action == "refused"))
        ]
    assert reasons == ["workspace", "workspace", "workspace", "channel"]


def _open(stack: Stack, action_id: str, value: str, ts: str) -> dict[str, Any]:
    views = len(stack.fake_slack.calls_to("views.open"))
    stack.click(action_id, value, message_ts=ts)
    stack.fake_slack.wait_for("views.open", views + 1)
    return stack.opened_view()


def _reject_view(value: str, request_ts: str) -> dict[str, Any]:
    """The reject-reason dialog as the supervisor would submit it (opened by the bot)."""
    from handlers.name_fix_views import NameFixRef, RejectMeta

    ref = NameFixRef.load(value)
    return {
        "id": "V0REJECT01",
        "callback_id": NameFixIds.REJECT_CALLBACK,
        "private_metadata": RejectMeta(
            name_fix_id=ref.name_fix_id, channel_id=CHANNEL_ID, message_ts=request_ts
        ).dump(),
        "blocks": [{"type": "input", "block_id": NameFixIds.REASON}],
    }


def _refused(stack: Stack, refusal: str, send: Any, told: str | None = None) -> None:
    index, before = call_count(stack), snapshot(stack.database)
    audit = last_audit_id(stack.database)
    response = send()
    assert response.status == 200
    if told:  # a click: the sentence comes as an ephemeral message to the clicker
        call = wait_for_call(stack, index, {"chat.postEphemeral"})
        assert call.args["user"] == told and call.args["text"] == refusal
    elif b"response_action" in response.body:  # a submission: inside the dialog
        assert refusal in json.dumps(response.json()["errors"])
    else:
        assert reply_text(response).startswith(refusal)
    time.sleep(0.05)
    assert not [
        c.method
        for c in calls_since(stack, index)
        if c.method in {"views.open", "chat.postMessage", "chat.update"}
    ]
    assert_unchanged(stack.database, before, audit)
    with stack.database.read_session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.id > audit)).all()
    assert [e.action for e in events] == ["refused"]


# --------------------------------------------------------------------------- whose button


@pytest.fixture
def practice(stack: Stack) -> Practice:
    return add_practice(stack)


def test_another_familys_ids_do_nothing_under_a_familys_card(
    stack: Stack, practice: Practice
) -> None:
    p = practice
    b_family = json.dumps({"family_id": p.b})
    b_child = json.dumps({"family_id": p.b, "patient_id": p.ivy})
    for action_id, value in (
        (IssueIds.OPEN_DIALOG, b_family),
        (FamilyIds.OPEN, b_family),
        (FamilyIds.PICK_CHILD, b_child),
        (NameFixIds.REQUEST, b_child),
        (NameFixIds.REQUEST, json.dumps({"family_id": p.a, "patient_id": p.ivy})),
        (FamilyIds.PICK_CHILD, json.dumps({"family_id": p.a, "patient_id": p.ivy})),
    ):
        for thread in (
            {"message_ts": p.card_a},  # on the card itself
            {"message_ts": "1799999999.000001", "thread_ts": p.card_a},
        ):  # a reply
            index, before, audit = (
                call_count(stack),
                snapshot(stack.database),
                last_audit_id(stack.database),
            )
            stack.click(action_id, value, **thread)
            told = wait_for_call(stack, index, {"chat.postEphemeral"})
            assert "family" in told.args["text"] or "child" in told.args["text"]
            assert not [
                c.method
                for c in calls_since(stack, index)
                if c.method in {"views.open", "chat.postMessage"}
            ]
            assert_unchanged(stack.database, before, audit)
    # The same ids on their own family's card work.
    views = len(stack.fake_slack.calls_to("views.open"))
    stack.click(IssueIds.OPEN_DIALOG, b_family, message_ts=p.card_b)
    stack.click(FamilyIds.PICK_CHILD, b_child, message_ts=p.card_b)
    stack.fake_slack.wait_for("views.open", views + 2)


# --------------------------------------------------------------------------- PINs and secrets


@pytest.fixture
def auth_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    """SMTP with a username and password, so the password is used (and could leak)."""
    yield from build_stack(
        database_url, fake_slack, smtp_server, SMTP_USERNAME=USERNAME, SMTP_PASSWORD=PASSWORD
    )


def _issue(stack: Stack, practice: Practice, recipient: str) -> None:
    card = card_message(stack, practice.card_a)
    view = _open(
        stack, IssueIds.OPEN_DIALOG, button_value(card, IssueIds.OPEN_DIALOG), practice.card_a
    )
    response = stack.submit(
        view, issue_values([str(practice.ava), str(practice.ben)], recipient, None)
    )
    assert response.body in (b"", b"{}"), response.body
    stack.deliver()


def test_pins_and_secrets_never_leave_the_pdf_and_the_email(
    auth_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = auth_stack
    caplog.set_level(logging.DEBUG)  # every logger, slack_sdk's request bodies included
    practice = add_practice(stack)
    _issue(stack, practice, str(practice.wren))
    # A second batch whose email is refused: the failure is recorded and reported.
    stack.smtp.rcpt_reply = "550 5.1.1 <wren.q@example.com>: no such user"
    _issue(stack, practice, str(practice.wren))
    assert stack.smtp.logins  # the password was used

    pins = {
        match
        for upload in stack.fake_slack.uploaded_files()
        for page in PdfReader(io.BytesIO(upload.data)).pages
        for match in PIN.findall(page.extract_text())
    }
    assert len(pins) == 4
    emailed = {
        m
        for mail in stack.smtp.messages
        for m in PIN.findall(mail.get_body(("plain",)).get_content())
    }
    assert emailed and emailed <= pins
    secrets = {SIGNING_SECRET, BOT_TOKEN, PASSWORD}
    needles = pins | {p.replace("-", "") for p in pins} | secrets

    # The test's own servers log what they receive (aiosmtpd: the whole message); the bot's
    # loggers, Bolt's and slack_sdk's are all scanned.
    logged = "\n".join(
        _record_text(r) for r in caplog.records if not r.name.startswith(("mail.log", "tests."))
    )
    assert caplog.records and not _found(needles, logged)
    with stack.fake_slack._lock:
        calls = [c for c in stack.fake_slack.calls if c.method != UPLOAD]
    assert not _found(needles, json.dumps([c.args for c in calls], default=str))
    assert not _found(needles, json.dumps(snapshot(stack.database), default=str))
    with stack.database.read_session() as session:
        audit = [e.details for e in session.exec(select(AuditEvent)).all()]
    assert audit and not _found(needles, json.dumps(audit))
    assert not _found(secrets, repr(stack.settings))


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print: the message, every extra field, the traceback."""
    exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    return f"{record.getMessage()} {vars(record)!r} {exc}"


def _found(needles: set[str], haystack: str) -> set[str]:
    return {needle for needle in needles if needle in haystack}


def test_a_listener_too_slow_to_ack_is_not_called_an_old_button() -> None:
    from slack_bolt.error import BoltUnhandledRequestError

    from handlers.errors import OUT_OF_DATE, TOO_SLOW, user_sentence

    error = BoltUnhandledRequestError(request=None, current_response=None)  # type: ignore[arg-type]
    ours = {"type": "view_submission", "view": {"callback_id": "issue_pins"}}
    stranger = {"type": "block_actions", "actions": [{"action_id": "from_2019"}]}
    assert user_sentence(error, ours) == TOO_SLOW
    assert user_sentence(error, {"command": "/family"}) == TOO_SLOW
    assert user_sentence(error, stranger) == OUT_OF_DATE
