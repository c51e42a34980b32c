"""Slack formatting injection (issue 6, item 3): patient and guardian names are EHR text the
bot echoes. Names like `<!channel>`, `<@U123>`, `<https://evil.example|click>`, `*bold*` or
`&lt;` must show literally everywhere pinbot writes them — card, search lists, dialogs, the
issue summary, name-fix request and decision, /pinbot today and pending, the digest — and
never ping, link or format. Checked on what fake Slack actually received: every mrkdwn string
must hold no live token, and each name must read back as typed once Slack's three entities
are decoded. The same names must print literally in the PDF and in the email, whose HTML part
must not carry a tag from a name."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from bot.families.name_fix import NameFixRecord
from bot.reminders.digest import build_digest
from handlers.blocks import esc
from handlers.digest import render_digest
from handlers.ids import FamilyIds, IssueIds, NameFixIds
from handlers.name_fix_views import RejectMeta, decided_blocks, decision_reply, reject_dialog
from models import Appointment, NameFixStatus, utcnow
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import Call
from tests.support.hardening import (
    button_value,
    issue_values,
    name_fix_values,
    post_card,
    reply_text,
)
from tests.support.slack_requests import CHANNEL_ID, Response
from tests.support.stack import SUPERVISOR_ID, Stack, eventually

# What pinbot itself writes on purpose: mentions of Slack users (ids from Slack), date tokens,
# permalinks. Anything else that Slack would parse — a mention, a link, a tag, the names'
# formatting — is live.
TRUSTED = re.compile(r"<@U0[A-Z0-9]+>|<!date\^[^>]*>|<https://[a-z-]+\.slack\.com/[^>]*>")
LIVE = re.compile(
    r"<[!@#]|<https?:|<script|<img|\*(bold|x|now|note)\*|_(it|why)_|~s~|`code`"
    r"|@(here|channel|everyone)"
)
ZWSP = "\u200b"

C1 = "<!channel>"  # the oldest: the emailed child
C2 = "*bold*"
C3 = "&lt;"
C4 = "<script>alert()</script>"
C5 = "<img src=a onerror=alert()>"
SURNAME = "Zedwick"
MIDDLES = {
    C1: "<!everyone>",
    C2: "<https://evil.example|click> <!subteam^S1>",
    C3: "_it_ ~s~ `code`",
    C4: "&amp;",
    C5: "@here",
}
GUARDIAN_FIRST = "<!here>"
GUARDIAN_LAST = "Zedwick *bold* <https://evil.example|click>"
BABY = "Baby <@U123> <#C123>"  # flagged: the name-fix request's child
PROPOSED = ("Zoe", "<!channel> *x* <@U999>", SURNAME)


def full(first: str) -> str:
    return f"{first} {MIDDLES[first]} {SURNAME}"


def display(mrkdwn: str) -> str:
    """What Slack shows for mrkdwn text: its three entities decoded, zero-width spaces
    invisible."""
    return mrkdwn.replace(ZWSP, "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_of(value: Any, found: list[str]) -> list[str]:
    """Every mrkdwn text object's text inside `value` (blocks, views, payloads)."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            found.append(value["text"])
        for item in value.values():
            mrkdwn_of(item, found)
    elif isinstance(value, list):
        for item in value:
            mrkdwn_of(item, found)
    return found


def call_mrkdwn(call: Call) -> list[str]:
    """A message's own text is mrkdwn too (and is what notifications show)."""
    args = dict(call.args)
    for key in ("blocks", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    texts = mrkdwn_of(args, [])
    if call.method in {"chat.postMessage", "chat.postEphemeral", "chat.update", "response_url"}:
        texts.append(str(args.get("text") or ""))
    texts.append(str(args.get("initial_comment") or ""))
    return texts


def reply_mrkdwn(response: Response) -> list[str]:
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return [response.text]
    body = response.json()
    return [str(body.get("text") or ""), *mrkdwn_of(body, [])]


def assert_inert(texts: list[str]) -> None:
    for text in texts:
        found = LIVE.search(TRUSTED.sub("", text))
        assert not found, f"live token {found!r} in {text!r}"


def shows(texts: list[str], *names: str) -> None:
    shown = "\n".join(display(t) for t in texts)
    for name in names:
        assert name in shown, f"{name!r} not shown literally in {shown[:600]!r}"


@pytest.fixture
def hostile(stack: Stack) -> Iterator[dict[str, int]]:
    """Two Zedwick families: the hostile one (five eligible children, a flagged newborn, a
    guardian with a hostile name) and a plain one, so a search lists both."""
    with stack.database.transaction() as session:
        family = make_family(session, "ZD<!here>1")
        guardian = make_guardian(
            session,
            family,
            GUARDIAN_FIRST,
            GUARDIAN_LAST,
            email="zed.parent@example.com",
            relationship="<!channel>",
        )
        ids = {"family": family.id or 0, "guardian": guardian.id or 0}
        for year, first in zip(range(2016, 2021), (C1, C2, C3, C4, C5), strict=True):
            child = make_patient(
                session,
                family,
                first,
                date(year, 1, 15),
                last=SURNAME,
                middle=MIDDLES[first],
                chart=f"ZD-{year}",
            )
            ids[first] = child.id or 0
        baby = make_patient(
            session, family, BABY, date(2026, 11, 1), last=SURNAME, chart="ZD-BABY", name_type="NB"
        )
        ids["baby"] = baby.id or 0
        other = make_family(session, "ZD-2")
        make_patient(session, other, "Quinn", date(2018, 4, 4), last=SURNAME, chart="ZD-Q")
        today = datetime.combine(stack.services.today(), time(9, 30))
        session.add(Appointment(patient_id=ids[C1], starts_at=today))
        session.add(Appointment(patient_id=ids["baby"], starts_at=today + timedelta(hours=1)))
    yield ids


def _all_mrkdwn(stack: Stack, *, skip: str) -> list[str]:
    with stack.fake_slack._lock:
        calls = [c for c in stack.fake_slack.calls if skip not in str(c.args.get("text"))]
    return [text for call in calls for text in call_mrkdwn(call)]


def test_names_stay_literal_in_every_slack_surface(stack: Stack, hostile: dict[str, int]) -> None:
    slack = stack.fake_slack
    children = [full(c) for c in (C1, C2, C3, C4, C5)]
    guardian = f"{GUARDIAN_FIRST} {GUARDIAN_LAST}"

    # /pinbot today, before any PIN: both of today's visits need attention.
    today = stack.command("/pinbot", "today")
    assert_inert(reply_mrkdwn(today))
    shows(reply_mrkdwn(today), full(C1), f"{BABY} {SURNAME}", "ZD<!here>1")

    # Search lists: /family (two Zedwick families) and /pin (several children).
    listed = stack.command("/family", SURNAME.lower())
    assert_inert(reply_mrkdwn(listed))
    shows(reply_mrkdwn(listed), C1, C2)
    picked = stack.command("/pin", SURNAME.lower())
    assert_inert(reply_mrkdwn(picked))
    shows(reply_mrkdwn(picked), *(f"{c} {SURNAME}" for c in (C1, C2, C3, C4, C5)))
    # Hostile search text is echoed literally too.
    for query in (
        "<https://evil.example|click> <!channel>@x",
        "*bold* 13/45/2019",
        "<@U123> 1/2/19",
    ):
        echoed = stack.command("/family", query)
        assert echoed.status == 200 and reply_text(echoed)
        assert_inert(reply_mrkdwn(echoed))

    # The card, opened from the list's Open button.
    open_value = next(
        b["accessory"]["value"]
        for b in listed.json()["blocks"]
        if b.get("accessory") and str(hostile["family"]) in b["accessory"]["value"]
    )
    posts = len(slack.calls_to("chat.postMessage"))
    stack.click(FamilyIds.OPEN, open_value, is_ephemeral=True)
    card_call = slack.wait_for("chat.postMessage", posts + 1)[-1]
    card_ts = card_call.response["ts"]
    shows(call_mrkdwn(card_call), *children, guardian, "<!channel>", BABY)

    # The Issue PINs dialog, its submission and the summary in the thread.
    views = len(slack.calls_to("views.open"))
    stack.click(
        IssueIds.OPEN_DIALOG, button_value(card_call.args, IssueIds.OPEN_DIALOG), message_ts=card_ts
    )
    dialog = slack.wait_for("views.open", views + 1)[-1]
    shows(call_mrkdwn(dialog), "ZD<!here>1", BABY)
    ids = [str(hostile[c]) for c in (C1, C2, C3, C4, C5)]
    submitted = stack.submit(stack.opened_view(), issue_values(ids, str(hostile["guardian"]), None))
    assert submitted.status == 200 and submitted.body in (b"", b"{}"), submitted.body
    stack.deliver()  # the summary is outgoing work of the batch, like the letters
    [summary] = eventually(lambda: _posted_with(stack, "PIN(s)."))
    shows(call_mrkdwn(summary), *children, guardian)

    # The name-fix request for the newborn, /pinbot pending, the approval and its reply.
    views = len(slack.calls_to("views.open"))
    stack.click(
        NameFixIds.REQUEST, button_value(card_call.args, NameFixIds.REQUEST), message_ts=card_ts
    )
    fix_dialog = slack.wait_for("views.open", views + 1)[-1]
    shows(call_mrkdwn(fix_dialog), BABY)
    first, middle, last = PROPOSED
    response = stack.submit(
        stack.opened_view(),
        name_fix_values(first, middle, last, "birth_certificate", "Mom said <!everyone> *now*"),
    )
    assert response.status == 200 and response.body in (b"", b"{}"), response.body
    request = eventually(lambda: _posted_with(stack, "Name fix for"))[-1]
    shows(
        call_mrkdwn(request), f"{BABY} {SURNAME}", " ".join(PROPOSED), "Mom said <!everyone> *now*"
    )
    pending = stack.command("/pinbot", "pending")
    eventually(lambda: _assert(slack.calls_to("response_url")))
    shows(call_mrkdwn(slack.calls_to("response_url")[-1]), f"{BABY} {SURNAME}", " ".join(PROPOSED))
    assert pending.status == 200
    request_ts = request.response["ts"]
    eventually(lambda: _assert(_recorded(stack, request_ts)))
    stack.click(
        NameFixIds.APPROVE,
        button_value(request.args, NameFixIds.APPROVE),
        user_id=SUPERVISOR_ID,
        message_ts=request_ts,
        thread_ts=card_ts,
    )
    update = slack.wait_for("chat.update")[-1]
    reply = eventually(lambda: _posted_with(stack, "verified the name")[-1])
    shows(call_mrkdwn(update) + call_mrkdwn(reply), " ".join(PROPOSED))

    # Nothing any surface sent carries a live token (the delivery notice has its own test).
    assert_inert(_all_mrkdwn(stack, skip=":email:"))


def _assert(value: object) -> None:
    assert value


def _posted_with(stack: Stack, marker: str) -> list[Call]:
    found = [
        c
        for c in stack.fake_slack.calls_to("chat.postMessage")
        if marker in str(c.args.get("text"))
    ]
    assert found, f"no message with {marker!r}"
    return found


def _recorded(stack: Stack, ts: str) -> bool:
    from sqlmodel import select

    from models import NameFix

    with stack.database.read_session() as session:
        return session.exec(select(NameFix).where(NameFix.message_ts == ts)).first() is not None


def test_digest_shows_names_literally(stack: Stack, hostile: dict[str, int]) -> None:
    with stack.database.read_session() as session:
        digest = build_digest(session, now=utcnow(), tz=stack.settings.timezone)
    messages = render_digest(digest)
    texts = [t for m in messages for t in (m["text"], *mrkdwn_of(m["blocks"], []))]
    assert_inert(texts)
    shows(texts, f"{BABY} {SURNAME}", full(C1), "ZD<!here>1")


def _fix(**changes: Any) -> NameFixRecord:
    base = {
        "id": 1,
        "family_id": 1,
        "patient_id": 1,
        "name_on_file": f"{BABY} {SURNAME}",
        "dob": date(2026, 11, 1),
        "proposed_name": " ".join(PROPOSED),
        "confirmed_by": "<!channel>",
        "note": "*note* <@U1>",
        "requested_by": "U0STAFF01",
        "status": NameFixStatus.REJECTED,
        "decided_by": SUPERVISOR_ID,
        "decided_at": utcnow(),
        "decision_note": "<https://evil.example|no> _why_",
        "channel_id": CHANNEL_ID,
        "thread_ts": "1.1",
        "message_ts": "1.2",
    }
    return NameFixRecord(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status", [NameFixStatus.REJECTED, NameFixStatus.APPROVED, NameFixStatus.CLOSED]
)
def test_name_fix_views_the_flow_does_not_reach_stay_literal(status: str) -> None:
    """The reject dialog and the rejected/closed wording, rendered directly."""
    fix = _fix(status=status)
    view = reject_dialog(fix, RejectMeta(name_fix_id=1)).to_dict()
    text, blocks = decision_reply(fix)
    texts = [
        *mrkdwn_of(view, []),
        text,
        *mrkdwn_of([b.to_dict() for b in blocks or []], []),
        *mrkdwn_of([b.to_dict() for b in decided_blocks(fix)], []),
    ]
    assert_inert(texts)
    shows(texts, f"{BABY} {SURNAME}", " ".join(PROPOSED))


def test_escaping_keeps_text_readable() -> None:
    for name in (
        "<!channel>",
        "&lt;",
        "&amp;",
        "*bold*",
        "a_b~c`d",
        "@here",
        "Zoë Peña",
        "O'Brien-Smith",
        "李小龙",
        "\u202eevil",
    ):
        assert display(esc(name)) == name
        assert_inert([esc(name)])


# ------------------------------------------------------------------------ letters and email


def _issue_and_deliver(stack: Stack, hostile: dict[str, int]) -> None:
    card_ts = post_card(stack, "ZD-2016")  # C1's chart id: the hostile family alone
    card = stack.fake_slack.message(CHANNEL_ID, card_ts)
    views = len(stack.fake_slack.calls_to("views.open"))
    stack.click(IssueIds.OPEN_DIALOG, button_value(card, IssueIds.OPEN_DIALOG), message_ts=card_ts)
    stack.fake_slack.wait_for("views.open", views + 1)
    ids = [str(hostile[c]) for c in (C1, C2, C3, C4, C5)]
    response = stack.submit(stack.opened_view(), issue_values(ids, str(hostile["guardian"]), None))
    assert response.body in (b"", b"{}"), response.body
    stack.deliver()


def test_names_print_literally_in_letters_and_email(stack: Stack, hostile: dict[str, int]) -> None:
    _issue_and_deliver(stack, hostile)
    pages = [
        p.extract_text()
        for p in PdfReader(io.BytesIO(stack.fake_slack.uploaded_files()[0].data)).pages
    ]
    for first, page in zip((C1, C2, C3, C4, C5), pages, strict=True):
        assert full(first) in page, page
    # Sibling pages name the first child (whose account they join) in the steps.
    assert all(C1 in page for page in pages[1:])

    [mail] = stack.smtp.messages
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for name in (C1, GUARDIAN_FIRST, C2, C3, C4, C5):
        assert name in plain, name
    # The HTML part has the names as text, never as markup.
    assert "<script" not in html and "<img" not in html and "onerror=alert()>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=a onerror=alert()&gt;" in html
    assert "&amp;lt;" in html and "&lt;!channel&gt;" in html


def test_delivery_notice_shows_the_name_literally(stack: Stack, hostile: dict[str, int]) -> None:
    _issue_and_deliver(stack, hostile)
    stack.deliver()  # the "delivered" notice is queued when the email is recorded as sent
    notice = [
        c
        for c in stack.fake_slack.calls_to("chat.postMessage")
        if ":email:" in str(c.args.get("text"))
    ]
    assert notice
    assert_inert(call_mrkdwn(notice[-1]))
