"""Languages end to end (SPEC §9), driven the way Slack drives pinbot: /family → card →
Issue PINs… → dialog with its Letter language → submit → letters PDF in the thread and the
welcome email over SMTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlmodel import select

from bot.documents import locale
from handlers.ids import IssueIds
from models import Guardian, IssueBatch, Pin
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.slack_requests import checkboxes_value, static_select_value
from tests.support.stack import Stack

SPANISH_NOTICE = (
    "ATENCIÓN: si habla español, tiene a su disposición servicios gratuitos de asistencia "
    "lingüística. Llame al 555-010-9999."
)
ENGLISH_NOTICE = "ATTENTION: If you speak English, language assistance services"


def _family(stack: Stack, surname: str, language: str | None) -> dict[str, int]:
    with stack.database.transaction() as session:
        family = make_family(session, f"{surname[:3].upper()}-3001")
        mother = make_guardian(
            session, family, "Rocío", surname, email=f"rocio@{surname.lower()}.example.com"
        )
        mother.language = language
        ids = {
            "family": family.id,
            "mother": mother.id,
            "older": make_patient(session, family, "Begoña", date(2018, 3, 14), last=surname).id,
            "younger": make_patient(session, family, "Íñigo", date(2020, 11, 2), last=surname).id,
        }
    return {k: v or 0 for k, v in ids.items()}


@pytest.fixture
def spanish(stack: Stack) -> dict[str, int]:
    return _family(stack, "Quintanilla", "es")


@pytest.fixture
def english(stack: Stack) -> dict[str, int]:
    return _family(stack, "Fernsby", None)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _open_dialog(stack: Stack, surname: str) -> dict[str, Any]:
    views = len(stack.fake_slack.calls_to("views.open"))
    cards = len(stack.cards())
    assert stack.command("/family", surname).status == 200
    stack.fake_slack.wait_for("chat.postMessage", count=cards + 1)
    card = stack.fake_slack.calls_to("chat.postMessage")[-1]
    button = next(
        e["value"]
        for b in _blocks(stack.cards()[-1])
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == IssueIds.OPEN_DIALOG
    )
    stack.click(IssueIds.OPEN_DIALOG, button, message_ts=card.response["ts"])
    stack.fake_slack.wait_for("views.open", count=views + 1)
    return stack.opened_view()


def _language_block(view: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == IssueIds.LANGUAGE)


def _submit(stack: Stack, view: dict[str, Any], ids: dict[str, int], language: str) -> Any:
    return stack.submit(
        view,
        {
            IssueIds.CHILDREN: {
                IssueIds.CHILDREN_ACTION: checkboxes_value([str(ids["older"]), str(ids["younger"])])
            },
            IssueIds.RECIPIENT: {
                IssueIds.RECIPIENT_ACTION: static_select_value(str(ids["mother"]))
            },
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
            IssueIds.LANGUAGE: {IssueIds.LANGUAGE_ACTION: static_select_value(language)},
        },
    )


def _issue(stack: Stack, view: dict[str, Any], ids: dict[str, int], language: str) -> None:
    response = _submit(stack, view, ids, language)
    assert response.status == 200 and response.body in (b"", b"{}"), response.body
    stack.deliver()


def _pages(stack: Stack) -> list[str]:
    (upload,) = stack.fake_slack.uploaded_files()
    reader = PdfReader(io.BytesIO(upload.data))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def _email(stack: Stack) -> tuple[EmailMessage, str, str]:
    (received,) = stack.smtp.received
    message = received.message
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return message, plain.get_content(), html.get_content()


def _batch_language(stack: Stack) -> list[str | None]:
    with stack.database.read_session() as session:
        return [b.language for b in session.exec(select(IssueBatch)).all()]


def test_spanish_preferring_family_gets_spanish_letters_and_email(
    stack: Stack, spanish: dict[str, int]
) -> None:
    view = _open_dialog(stack, "quintanilla")
    assert "Prefers Spanish" in json.dumps(_blocks(stack.cards()[-1]))
    select_ = _language_block(view)["element"]
    assert [(o["value"], o["text"]["text"]) for o in select_["options"]] == [
        ("en", "English"),
        ("es", "Español (Spanish)"),
        ("es+en", "Español (Spanish) and English"),
    ]
    assert select_["initial_option"]["value"] == "es"  # the receiving guardian's language

    _issue(stack, view, spanish, select_["initial_option"]["value"])

    assert _batch_language(stack) == ["es"]
    older, younger = _pages(stack)
    assert "Regístrese en el portal del paciente en:" in older
    assert "Begoña Quintanilla" in older and "Fecha de nacimiento: 14 de marzo de 2018" in older
    assert "Íñigo Quintanilla" in younger and "2 de noviembre de 2020" in younger
    assert "(Mi cuenta > Agregar hijo/dependiente)" in younger
    assert older.endswith("are available to you. Call 555-010-9999.")
    assert ENGLISH_NOTICE in older and "ATENCIÓN" not in older

    message, plain, html = _email(stack)
    assert message["Subject"] == "Su PIN del portal del paciente de Maple Grove Pediatrics (test)"
    assert message["Content-Language"] == "es"
    assert '<html lang="es">' in html
    assert "Hola, Rocío:" in plain and "PIN de Begoña:" in plain
    assert "También imprimimos una carta con el PIN de Íñigo." in plain
    assert ENGLISH_NOTICE in plain and ENGLISH_NOTICE in html

    summary = next(p["text"] for p in stack.posted() if "issued 2 PIN(s)" in p.get("text", ""))
    assert "Letters in Español (Spanish)." in summary


def test_bilingual_prints_two_pages_per_child_guardians_language_first(
    stack: Stack, spanish: dict[str, int]
) -> None:
    view = _open_dialog(stack, "quintanilla")
    _issue(stack, view, spanish, "es+en")

    assert _batch_language(stack) == ["es+en"]
    pages = _pages(stack)
    assert [("Begoña" in p and "Regístrese" in p, "Sign up for" in p) for p in pages[:2]] == [
        (True, False),
        (False, True),
    ]
    assert "Íñigo Quintanilla" in pages[2] and "Regístrese" in pages[2]
    assert "Íñigo Quintanilla" in pages[3] and "Sign up for" in pages[3]
    assert "Date of birth: 03/14/2018" in pages[1]  # the English page keeps MM/DD/YYYY
    assert pages[1].endswith(SPANISH_NOTICE) and pages[0].endswith("Call 555-010-9999.")
    message, _, _ = _email(stack)
    assert message["Content-Language"] == "es"  # the email speaks the guardian's language
    (upload,) = stack.fake_slack.uploaded_files()
    assert upload.title == "PIN letters (4 pages)"


def test_english_family_gets_english_letters_with_the_spanish_line(
    stack: Stack, english: dict[str, int]
) -> None:
    view = _open_dialog(stack, "fernsby")
    assert "Prefers" not in json.dumps(_blocks(stack.cards()[-1]))
    assert _language_block(view)["element"]["initial_option"]["value"] == "en"
    _issue(stack, view, english, "en")

    older, _ = _pages(stack)
    assert "Sign up for the patient portal at:" in older and "Date of birth: 03/14/2018" in older
    assert older.endswith(SPANISH_NOTICE)
    message, plain, html = _email(stack)
    assert message["Subject"] == "Your Maple Grove Pediatrics (test) patient portal PIN"
    assert message["Content-Language"] == "en" and '<html lang="en">' in html
    assert plain.rstrip().endswith(SPANISH_NOTICE)
    assert not any("Letters in" in p.get("text", "") for p in stack.posted())


def test_a_redelivered_submit_prints_the_language_of_the_first(
    stack: Stack, spanish: dict[str, int]
) -> None:
    view = _open_dialog(stack, "quintanilla")
    _issue(stack, view, spanish, "es")
    _issue(stack, view, spanish, "en")  # same view id: the batch already exists

    assert _batch_language(stack) == ["es"]
    assert len(stack.fake_slack.uploaded_files()) == 1
    assert all("Regístrese" in page for page in _pages(stack))
    assert _email(stack)[0]["Content-Language"] == "es"


def test_a_language_no_dialog_offered_comes_back_inside_the_dialog(
    stack: Stack, spanish: dict[str, int]
) -> None:
    view = _open_dialog(stack, "quintanilla")
    for tampered in ("xx", "../../etc/passwd", "en+es"):
        errors = _submit(stack, view, spanish, tampered).json()
        assert errors["response_action"] == "errors"
        assert errors["errors"] == {IssueIds.LANGUAGE: "Choose one of the languages listed."}
    with stack.database.read_session() as session:
        assert session.exec(select(Pin)).all() == []


def test_a_guardian_language_without_a_locale_file_defaults_to_english(
    stack: Stack, spanish: dict[str, int]
) -> None:
    with stack.database.transaction() as session:
        mother = session.get(Guardian, spanish["mother"])
        assert mother is not None
        mother.language = "vi"
    view = _open_dialog(stack, "quintanilla")
    assert "Prefers Vietnamese" in json.dumps(_blocks(stack.cards()[-1]))
    assert _language_block(view)["element"]["initial_option"]["value"] == "en"


FRENCH = {
    "letter.portal_label": "Inscrivez-vous au portail patient :",
    "letter.date_of_birth": "Date de naissance : {dob}",
    "email.subject": "Votre code PIN du portail patient de {practice_name}",
    "email.greeting": "Bonjour {guardian_name},",
    "notice.language_assistance": (
        "ATTENTION : si vous parlez français, des services d'aide linguistique vous sont "
        "proposés gratuitement. Appelez le {phone}."
    ),
}


@pytest.fixture
def french_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped files plus a third, fr.toml, in a temporary LOCALE_DIR: adding a language
    is one file. Keys it does not translate print in English."""
    for shipped in locale.LOCALE_DIR.glob("*.toml"):
        (tmp_path / shipped.name).write_bytes(shipped.read_bytes())
    lines = ['format.date = "d MMMM y"']
    lines += [f"{key} = {json.dumps(text, ensure_ascii=False)}" for key, text in FRENCH.items()]
    (tmp_path / "fr.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(locale, "LOCALE_DIR", tmp_path)
    return tmp_path


def test_a_third_locale_file_is_offered_and_used_everywhere(
    stack: Stack, spanish: dict[str, int], french_locale: Path
) -> None:
    view = _open_dialog(stack, "quintanilla")
    options = [(o["value"], o["text"]["text"]) for o in _language_block(view)["element"]["options"]]
    assert ("fr", "Français (French)") in options
    assert ("fr+en", "Français (French) and English") in options
    assert len(options) == 5

    _issue(stack, view, spanish, "fr")
    older, _ = _pages(stack)
    assert "Inscrivez-vous au portail patient :" in older
    assert "Date de naissance : 14 mars 2018" in older  # Babel's French month names
    assert "How to use this PIN" in older  # not translated: English, for that key only
    assert SPANISH_NOTICE in older and ENGLISH_NOTICE in older  # every other language's line
    assert "si vous parlez français" not in older

    message, plain, html = _email(stack)
    assert (
        message["Subject"] == "Votre code PIN du portail patient de Maple Grove Pediatrics (test)"
    )
    assert message["Content-Language"] == "fr" and '<html lang="fr">' in html
    assert "Bonjour Rocío," in plain

    # ...and the other languages' documents now carry the French line.
    spanish_letter = locale.assistance_notices("es", phone="555-010-9999")
    assert any("si vous parlez français" in line for line in spanish_letter)
