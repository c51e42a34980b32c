"""Letters are credentials, so they must be exactly right, end to end through the real Bolt
app: names printed as stored (embedded fonts), the practice's local dates on letters, email
and card, the sign-in address on an existing account's letters, and a warning in the dialog
for a name the letter cannot print."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pypdf import PdfReader

from handlers.ids import IssueIds
from models import Guardian
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import checkboxes_value, static_select_value
from tests.support.smtp_server import SmtpServer
from tests.support.stack import PORTAL_URL, Stack, build_stack

SIGNIN_URL = "https://portal.example.org/MyChart/Authentication/Login?mode=addchild"
NEW_YORK = ZoneInfo("America/New_York")
EVENING = datetime(2026, 12, 6, 19, 15, tzinfo=NEW_YORK)  # 2026-12-07 00:15 UTC


@pytest.fixture
def stack(database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer) -> Iterator[Stack]:
    yield from build_stack(
        database_url,
        fake_slack,
        smtp_server,
        PRACTICE_TIMEZONE="America/New_York",
        PORTAL_SIGNIN_URL=SIGNIN_URL,
        PIN_TTL_DAYS="90",
    )


@pytest.fixture
def family(stack: Stack) -> dict[str, int]:
    """The Nguyễns: Łukasz (7) and Zofia (5), and a guardian with an email."""
    with stack.database.transaction() as session:
        family = make_family(session, "NG-3001")
        mother = make_guardian(session, family, "Lan", "Nguyễn", email="lan.nguyen@example.com")
        ids = {
            "family": family.id,
            "mother": mother.id,
            "lukasz": make_patient(session, family, "Łukasz", date(2019, 3, 2), last="Nguyễn").id,
            "zofia": make_patient(session, family, "Zofia", date(2021, 7, 14), last="Nguyễn").id,
        }
    return {k: v or 0 for k, v in ids.items()}


def _last_card_text(stack: Stack) -> str:
    blocks = stack.cards()[-1]["blocks"]
    return json.dumps(json.loads(blocks) if isinstance(blocks, str) else blocks, ensure_ascii=False)


def _open_dialog(stack: Stack, query: str) -> dict[str, Any]:
    cards, views = len(stack.cards()), len(stack.fake_slack.calls_to("views.open"))
    assert stack.command("/family", query).status == 200
    stack.fake_slack.wait_for("chat.postMessage", count=cards + 1)
    card = stack.fake_slack.calls_to("chat.postMessage")[-1]
    blocks = card.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    button = next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == IssueIds.OPEN_DIALOG
    )
    stack.click(IssueIds.OPEN_DIALOG, button["value"], message_ts=card.response["ts"])
    stack.fake_slack.wait_for("views.open", count=views + 1)
    return stack.opened_view()


def _issue(stack: Stack, children: list[int], recipient: int) -> list[str]:
    view = _open_dialog(stack, "nguyen")
    response = stack.submit(
        view,
        {
            IssueIds.CHILDREN: {
                IssueIds.CHILDREN_ACTION: checkboxes_value([str(c) for c in children])
            },
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(str(recipient))},
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
        },
    )
    assert response.status == 200, response.body
    stack.deliver()
    (upload,) = stack.fake_slack.uploaded_files()
    reader = PdfReader(io.BytesIO(upload.data))
    for page in reader.pages:  # every font is embedded TrueType: nothing left to the viewer
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            if font["/Subtype"] == "/Type0":
                font = font["/DescendantFonts"][0].get_object()
            assert "/FontFile2" in font["/FontDescriptor"], font["/BaseFont"]
    # Lines joined; an address wrapped at its slashes reads whole again.
    return [
        re.sub(r"(?<=/) (?=\S)| (?=[?&])", "", " ".join(page.extract_text().split()))
        for page in reader.pages
    ]


def test_an_evening_issue_prints_the_practices_date_and_the_names_as_stored(
    stack: Stack, family: dict[str, int]
) -> None:
    assert EVENING.astimezone(UTC).date() == date(2026, 12, 7)  # UTC is already tomorrow
    with time_machine.travel(EVENING, tick=True):
        first, sibling = _issue(stack, [family["lukasz"], family["zofia"]], family["mother"])
        posts = len(stack.posted())
        assert stack.command("/family", "nguyen").status == 200
        stack.fake_slack.wait_for("chat.postMessage", count=posts + 1)
        card = _last_card_text(stack)

    assert "Łukasz Nguyễn" in first and "Zofia Nguyễn" in sibling
    for page in (first, sibling):
        assert "Issued 12/06/2026 · Expires 03/06/2027" in page
    # The card counts from the same local day as the letters.
    assert card.count("active since 12/06/2026") == 2 and "12/07/2026" not in card

    (mail,) = stack.smtp.received
    plain = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "Hello Lan," in plain and "Łukasz's PIN:" in plain
    assert "This PIN works through March 6, 2027." in plain
    assert "This PIN works through March 6, 2027." in html


def test_an_existing_accounts_letters_sign_in_at_the_sign_in_address(
    stack: Stack, family: dict[str, int]
) -> None:
    with stack.database.transaction() as session:
        guardian = session.get(Guardian, family["mother"])
        assert guardian is not None
        guardian.has_portal_account = True
    pages = _issue(stack, [family["lukasz"], family["zofia"]], family["mother"])
    assert stack.smtp.received == []
    for page in pages:
        assert page.startswith(
            f"Add your child to your patient portal account. Sign in at: {SIGNIN_URL}"
        )
        assert f"Sign in at {SIGNIN_URL} with your existing account" in page
        assert "Sign up" not in page and PORTAL_URL not in page


def test_the_dialog_warns_about_a_name_the_letter_cannot_print(
    stack: Stack, family: dict[str, int]
) -> None:
    with stack.database.transaction() as session:
        from models import Family

        owner = session.get(Family, family["family"])
        assert owner is not None
        make_patient(session, owner, "Hana", date(2022, 1, 5), last="山田")
    view = _open_dialog(stack, "nguyen")
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "Check these names before issuing" in text
    assert "Hana 山田: cannot print 山 田" in text
    assert "Łukasz Nguyễn: cannot" not in text  # a name the font draws is not flagged


def test_no_warning_when_every_name_prints(stack: Stack, family: dict[str, int]) -> None:
    view = _open_dialog(stack, "nguyen")
    assert "Check these names" not in json.dumps(view["blocks"], ensure_ascii=False)
