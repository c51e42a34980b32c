"""The welcome email, built and delivered through a real local SMTP server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.config import SmtpSettings
from bot.delivery.smtp import MailError, send_email
from bot.documents import locale
from bot.documents.letters import Practice
from bot.documents.welcome_email import WelcomeEmail, build_welcome_email
from tests.support.smtp_server import (  # noqa: F401  (the fixture is used by name)
    HOST,
    PASSWORD,
    USERNAME,
    SmtpServer,
    free_port,
    smtp_server_fixture,
)

PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", "https://portal.example.com/signup")
MAIL_FROM = "Sunny Pediatrics <frontdesk@sunny.example>"
SENT_AT = datetime(2025, 3, 1, 14, 30, tzinfo=UTC)
EMAIL = WelcomeEmail(
    to_address="jane.doe@example.com",
    guardian_name="Jane Doe",
    child_first_name="Ava",
    pin="abcd2345",
    practice=PRACTICE,
    sibling_first_names=("Ben", "Cara"),
    message_id="<pin-123.batch-45@pinbot.invalid>",
)


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return plain.get_content(), html.get_content()


def settings(server: SmtpServer, **overrides: object) -> SmtpSettings:
    values: dict = {
        "host": server.host,
        "port": server.port,
        "username": None,
        "password": None,
        "starttls": False,
        "mail_from": MAIL_FROM,
    }
    return SmtpSettings(**(values | overrides))


def build(email: WelcomeEmail = EMAIL, **kwargs: object) -> EmailMessage:
    return build_welcome_email(email, mail_from=MAIL_FROM, date=SENT_AT, **kwargs)  # type: ignore[arg-type]


def test_headers() -> None:
    message = build()
    assert message["Subject"] == "Your Sunny Pediatrics patient portal PIN"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "Jane Doe <jane.doe@example.com>"
    assert message["Message-ID"] == "<pin-123.batch-45@pinbot.invalid>"
    assert message["Date"] == "Sat, 01 Mar 2025 14:30:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    assert "ABCD" not in message["Subject"] and "Ava" not in message["Subject"]


def test_plain_and_html_parts_carry_the_same_content() -> None:
    plain, html = parts(build())
    for text in (plain, html):
        assert "ABCD-2345" in text
        assert "Ava" in text
        assert "https://portal.example.com/signup" in text
        assert "Ben and Cara" in text
        assert "Add Child/Dependent" in text
        assert "(555) 010-1234" in text
    assert "Hello Jane Doe," in plain
    assert '<a href="https://portal.example.com/signup">' in html


def test_without_siblings_it_says_how_to_add_children_later() -> None:
    email = WelcomeEmail(**{**EMAIL.__dict__, "sibling_first_names": ()})
    plain, _ = parts(build(email))
    assert "We printed a separate PIN letter" not in plain
    assert "Ask the front desk for their PIN letters" in plain
    three = WelcomeEmail(**{**EMAIL.__dict__, "sibling_first_names": ("Ben", "Cara", "Dan")})
    assert "Ben, Cara and Dan" in parts(build(three))[0]


def test_html_escapes_every_user_controlled_value() -> None:
    evil = "<script>alert(1)</script>"
    email = WelcomeEmail(
        to_address="jane.doe@example.com",
        guardian_name=f"Jane {evil}",
        child_first_name=f"Ava{evil}",
        pin="ABCD2345",
        practice=Practice(f"Sunny & {evil}", "555 <b>1</b>", "https://portal.example.com/?a=1&b=2"),
        sibling_first_names=(f"Ben{evil}",),
        message_id="<pin-1.batch-1@pinbot.invalid>",
    )
    plain, html = parts(build(email))
    assert "<script>" not in html and "<b>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert 'href="https://portal.example.com/?a=1&amp;b=2"' in html
    assert f"Hello Jane {evil}," in plain  # plain text shows names as typed


def test_a_name_cannot_inject_headers() -> None:
    email = WelcomeEmail(**{**EMAIL.__dict__, "guardian_name": "Jane\r\nBcc: x@evil.example"})
    message = build(email)
    assert message["Bcc"] is None
    assert "\n" not in str(message["To"])
    assert b"\nBcc:" not in message.as_bytes()


def test_a_rebuilt_message_is_identical() -> None:
    assert build().as_bytes() == build().as_bytes()
    other = WelcomeEmail(**{**EMAIL.__dict__, "message_id": "<pin-124.batch-45@pinbot.invalid>"})
    assert build(other)["Message-ID"] == "<pin-124.batch-45@pinbot.invalid>"


def test_bad_inputs_are_refused_without_echoing_the_pin() -> None:
    with pytest.raises(ValueError, match="message_id"):
        build(WelcomeEmail(**{**EMAIL.__dict__, "message_id": "pin-1"}))
    with pytest.raises(ValueError) as raised:
        build(WelcomeEmail(**{**EMAIL.__dict__, "pin": "ABCD234"}))
    assert "ABCD234" not in str(raised.value)


def test_language_files_choose_the_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert build(language="de")["Subject"] == "Your Sunny Pediatrics patient portal PIN"
    english = (Path(locale.__file__).parent / "locales" / "en.toml").read_text()
    (tmp_path / "en.toml").write_text(english)
    (tmp_path / "es.toml").write_text(
        english.replace(
            'subject = "Your {practice_name} patient portal PIN"',
            'subject = "Su PIN del portal de pacientes de {practice_name}"',
        )
    )
    monkeypatch.setattr(locale, "LOCALE_DIR", tmp_path)
    assert build(language="es")["Subject"] == "Su PIN del portal de pacientes de Sunny Pediatrics"


# Delivery --------------------------------------------------------------------------------


def test_sends_through_smtp(smtp_server: SmtpServer) -> None:
    send_email(settings(smtp_server), build())
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["jane.doe@example.com"]
    assert received.mail_from == "frontdesk@sunny.example"
    message = received.message
    assert message["Message-ID"] == "<pin-123.batch-45@pinbot.invalid>"
    assert message["Subject"] == "Your Sunny Pediatrics patient portal PIN"
    plain, html = parts(message)
    assert "ABCD-2345" in plain and "ABCD-2345" in html


def test_logs_in_when_a_username_is_set(smtp_server: SmtpServer) -> None:
    send_email(settings(smtp_server, username=USERNAME, password=PASSWORD), build())
    assert smtp_server.logins == [USERNAME]
    assert len(smtp_server.received) == 1


def test_wrong_password_is_permanent(smtp_server: SmtpServer) -> None:
    with pytest.raises(MailError) as raised:
        send_email(settings(smtp_server, username=USERNAME, password="wrong"), build())
    assert raised.value.transient is False and raised.value.code == 535
    assert not smtp_server.received


def test_starttls_is_required_when_configured(smtp_server: SmtpServer) -> None:
    # This test server offers no STARTTLS: sending in clear text instead would be wrong.
    with pytest.raises(MailError, match="STARTTLS") as raised:
        send_email(settings(smtp_server, starttls=True), build())
    assert raised.value.transient is False
    assert not smtp_server.received


def test_smtp_down_is_transient() -> None:
    smtp = SmtpSettings(HOST, free_port(), None, None, starttls=False, mail_from=MAIL_FROM)
    with pytest.raises(MailError) as raised:
        send_email(smtp, build(), timeout=5)
    assert raised.value.transient is True


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says hello."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_smtp_timeout_is_transient(silent_port: int) -> None:
    smtp = SmtpSettings(HOST, silent_port, None, None, starttls=False, mail_from=MAIL_FROM)
    started = time.monotonic()
    with pytest.raises(MailError) as raised:
        send_email(smtp, build(), timeout=0.3)
    assert raised.value.transient is True
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("reply", "transient"),
    [
        ("550 5.1.1 <jane.doe@example.com>: Recipient address rejected", False),
        ("451 4.3.0 <jane.doe@example.com>: Try again later", True),
        ("452 4.2.2 Mailbox full", True),
        ("553 5.1.3 Bad address syntax", False),
    ],
)
def test_recipient_refusals(smtp_server: SmtpServer, reply: str, transient: bool) -> None:
    smtp_server.rcpt_reply = reply
    with pytest.raises(MailError) as raised:
        send_email(settings(smtp_server), build())
    assert raised.value.transient is transient
    assert raised.value.code == int(reply[:3])
    assert "jane.doe" not in str(raised.value)  # never the address, even when the server echoes it
    assert not smtp_server.received


def test_no_smtp_host_is_permanent() -> None:
    smtp = SmtpSettings(None, 587, None, None, starttls=True, mail_from=MAIL_FROM)
    with pytest.raises(MailError) as raised:
        send_email(smtp, build())
    assert raised.value.transient is False
