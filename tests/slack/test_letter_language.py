"""The Letter language select and the card's language line (SPEC §9): views built from plain
data and validated by slack_sdk, and DEFAULT_LANGUAGE through the real Bolt app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from bot.families.record import ChildRecord, FamilyRecord, GuardianRecord
from handlers.blocks import family_card
from handlers.dialogs import issue_dialog
from handlers.ids import IssueIds
from handlers.payloads import IssueDialogMeta
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack, build_stack


def _guardian(gid: int, language: str | None, *, email: bool = True) -> GuardianRecord:
    return GuardianRecord(
        id=gid,
        name=f"Guardian {gid}",
        relationship="Mother",
        masked_email="g•••@e•••.com" if email else "—",
        masked_phone="•••-•••-0101",
        has_email=email,
        has_portal_account=False,
        language=language,
    )


CHILD = ChildRecord(
    id=7, chart_id="C7", first_name="Lucía", full_name="Lucía Peña", dob=date(2019, 4, 2),
    age_label="7 y", age_years=7, pin_status="none", pin_since=None, pin_expires=None,
    name_flag=None, pending_name_fix=False, ineligible_reason=None,
)  # fmt: skip


def _family(*guardians: GuardianRecord) -> FamilyRecord:
    return FamilyRecord(
        id=1, account_number="A1", surname="Peña", guardians=guardians, children=(CHILD,)
    )


def _select(family: FamilyRecord, default_language: str = "en") -> dict[str, Any]:
    view = issue_dialog(family, IssueDialogMeta(family_id=1), default_language=default_language)
    blocks = view.to_dict()["blocks"]  # slack_sdk validates lengths and option counts here
    return next(b for b in blocks if b.get("block_id") == IssueIds.LANGUAGE)


@pytest.mark.parametrize(
    ("guardians", "default", "initial"),
    [
        ((_guardian(1, "es"),), "en", "es"),  # the receiving guardian's language
        ((_guardian(1, None),), "en", "en"),
        ((_guardian(1, None),), "es", "es"),  # DEFAULT_LANGUAGE when not known
        ((_guardian(1, "vi"),), "en", "en"),  # known, but pinbot has no words for it
        ((_guardian(1, "vi"),), "es", "es"),
        ((_guardian(1, "en"), _guardian(2, "es")), "en", "en"),  # the recipient, not the other
        ((_guardian(1, "es", email=False),), "en", "es"),  # no email: whoever gets the letters
    ],
)
def test_the_default_is_the_guardians_language_when_pinbot_has_its_words(
    guardians: tuple[GuardianRecord, ...], default: str, initial: str
) -> None:
    block = _select(_family(*guardians), default)
    assert block["label"]["text"] == "Letter language"
    assert block["element"]["initial_option"]["value"] == initial


def test_the_hint_says_why_a_language_was_preselected() -> None:
    assert "the guardian prefers Spanish" in _select(_family(_guardian(1, "es")))["hint"]["text"]
    assert "prefers" not in _select(_family(_guardian(1, None)))["hint"]["text"]


def test_the_card_shows_a_language_other_than_english() -> None:
    card = json.dumps(
        [b.to_dict() for b in family_card(_family(_guardian(1, "es")))], ensure_ascii=False
    )
    assert "portal account: no · Prefers Spanish" in card
    for quiet in ("en", None):
        assert "Prefers" not in json.dumps(
            [b.to_dict() for b in family_card(_family(_guardian(1, quiet)))]
        )


@pytest.fixture
def spanish_default_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server, DEFAULT_LANGUAGE="es")


def test_default_language_setting_preselects_through_the_app(spanish_default_stack: Stack) -> None:
    stack = spanish_default_stack
    with stack.database.transaction() as session:
        family = make_family(session, "DL-1")
        make_guardian(session, family, "Ada", "Lindqvist", email="ada@example.com")
        make_patient(session, family, "Bo", date(2019, 1, 2), last="Lindqvist")
    stack.command("/pin", "bo lindqvist")
    view = stack.fake_slack.wait_for("views.open")[0].response["view"]
    stack.fake_slack.wait_for("chat.postMessage")  # /pin then posts the family card
    block = next(b for b in view["blocks"] if b.get("block_id") == IssueIds.LANGUAGE)
    assert block["element"]["initial_option"]["value"] == "es"
