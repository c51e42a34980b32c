"""The welcome email in the batch's language (SPEC §9): Subject, both parts, the
Content-Language header and the HTML's lang, and the other languages' assistance lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from bot.documents.letters import Practice
from bot.documents.welcome_email import WelcomeEmail, build_welcome_email

PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", "https://portal.example.com/signup")
EMAIL = WelcomeEmail(
    to_address="rocio.aguero@example.com",
    guardian_name="Rocío",
    child_first_name="Begoña",
    pin="abcd2345",
    practice=PRACTICE,
    sibling_first_names=("Íñigo", "Sofía"),
    message_id="<pin-7.batch-3@pinbot.invalid>",
)
SENT_AT = datetime(2025, 3, 1, 14, 30, tzinfo=UTC)


def build(language: str) -> EmailMessage:
    return build_welcome_email(EMAIL, mail_from="f@sunny.example", language=language, date=SENT_AT)


def parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return plain.get_content(), html.get_content()


def test_spanish_email_end_to_end_on_the_wire() -> None:
    wire = build("es").as_bytes()
    message = message_from_bytes(wire, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Su PIN del portal del paciente de Sunny Pediatrics"
    assert message["Content-Language"] == "es"
    plain, html = parts(message)
    for body in (plain, html):
        assert "Hola, Rocío:" in body
        assert "PIN de Begoña: ABCD-2345" in body
        assert "También imprimimos una carta con el PIN de Íñigo y Sofía." in body
        assert "(Mi cuenta &gt; Agregar hijo/dependiente)" in body or (
            "(Mi cuenta > Agregar hijo/dependiente)" in body
        )
        assert "¿Tiene preguntas? Llame a Sunny Pediatrics al (555) 010-1234." in body
        assert "ATTENTION: If you speak English, language assistance services" in body
        assert "ATENCIÓN" not in body
    assert '<html lang="es">' in html
    assert plain.rstrip().endswith("free of charge, are available to you. Call (555) 010-1234.")


def test_english_email_keeps_its_words_and_gains_the_spanish_line() -> None:
    message = build("en")
    assert message["Subject"] == "Your Sunny Pediatrics patient portal PIN"
    assert message["Content-Language"] == "en"
    plain, html = parts(message)
    assert '<html lang="en">' in html
    notice = (
        "ATENCIÓN: si habla español, tiene a su disposición servicios gratuitos de asistencia "
        "lingüística. Llame al (555) 010-1234."
    )
    assert plain.rstrip().endswith(notice) and notice in html
    assert "Hello Rocío," in plain


def test_bilingual_batches_email_in_the_guardians_language_and_rebuild_identically() -> None:
    assert build("es+en")["Content-Language"] == "es"
    assert build("es+en").as_bytes() == build("es").as_bytes()
    assert build("es").as_bytes() == build("es").as_bytes()  # a retry sends the same message


def test_a_language_without_a_file_is_english_and_says_so() -> None:
    message = build("de")
    assert message["Content-Language"] == "en"
    assert '<html lang="en">' in parts(message)[1]


def test_the_email_states_the_pins_last_day_in_words_in_its_language() -> None:
    dated = replace(EMAIL, expires_on=date(2027, 3, 6))
    for language, sentence in (
        ("en", "This PIN works through March 6, 2027. Please create your account by then."),
        ("es", "Este PIN es válido hasta el 6 de marzo de 2027, inclusive."),
    ):
        message = build_welcome_email(dated, mail_from="f@s.example", language=language)
        plain, html = parts(message)
        assert sentence in plain and sentence in html, language
        # Right after the PIN, before the steps.
        assert plain.index("ABCD-2345") < plain.index(sentence) < plain.index("1. ")
    plain, html = parts(build("en"))  # a PIN that never expires: no date to state
    assert "works through" not in plain and "works through" not in html
