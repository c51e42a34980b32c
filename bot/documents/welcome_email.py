"""The welcome email (one per family, SPEC §1 and §6), built from plain data so a retry
rebuilds the same message: same words, same Message-ID. Delivery is bot.delivery.smtp's.
In the batch's language (SPEC §9): Subject, both parts, Content-Language and the HTML's lang,
ending with the language-assistance line of every other shipped language."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from html import escape

from bot.documents.letters import Practice, format_pin
from bot.documents.locale import Texts, assistance_notices, letter_languages, texts
from bot.text import clean


@dataclass(frozen=True)
class WelcomeEmail:
    to_address: str
    guardian_name: str
    child_first_name: str
    pin: str
    practice: Practice
    sibling_first_names: tuple[str, ...]
    message_id: str  # stable per PIN, e.g. "<pin-123.batch-45@pinbot.invalid>"; caller builds it
    expires_on: date | None = None  # the PIN's last valid day (the practice's date); None: never


@dataclass(frozen=True)
class _Body:
    """The email's content once, rendered below as plain text and as HTML."""

    greeting: str
    intro: str
    pin_line: str
    expiry: str | None  # "This PIN works through March 6, 2027", None when it never expires
    steps_heading: str
    steps: tuple[str, ...]
    closing: tuple[str, ...]
    notices: tuple[str, ...]  # language assistance, one line per other shipped language


def build_welcome_email(
    email: WelcomeEmail, *, mail_from: str, language: str = "en", date: datetime | None = None
) -> EmailMessage:
    """The welcome email for one child; `date` defaults to now (the Message-ID never changes).
    `language` is the batch's letter language; a bilingual "es+en" writes the email in its
    first language, the guardian's."""
    if not (
        email.message_id.startswith("<")
        and email.message_id.endswith(">")
        and "@" in email.message_id
    ):
        raise ValueError("message_id must look like <id@domain>")
    words = texts(letter_languages(language)[0])
    practice_name = clean(email.practice.name)
    message = EmailMessage()
    message["Subject"] = words.text("email.subject", practice_name=practice_name)
    message["From"] = mail_from
    # clean() drops line breaks so a name cannot smuggle in a header.
    message["To"] = formataddr((clean(email.guardian_name), email.to_address.strip()))
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders should not reply
    body = _body(email, words)
    message.set_content(_plain(body))
    message.add_alternative(_html(body, email.practice.portal_url, words.language), subtype="html")
    # A boundary derived from the Message-ID (not random) makes a rebuilt message identical.
    digest = hashlib.sha256(email.message_id.encode()).hexdigest()[:32]
    message.set_boundary(f"=_pinbot_{digest}")
    # After the body: set_content() drops every Content-* header it finds.
    message["Content-Language"] = words.language  # RFC 3282
    return message


def _body(email: WelcomeEmail, words: Texts) -> _Body:
    # clean() drops control and bidi-override characters from the user-controlled names.
    values = {
        "practice_name": email.practice.name,
        "phone": email.practice.phone,
        "portal_url": email.practice.portal_url,
        "child": clean(email.child_first_name),
        "guardian_name": clean(email.guardian_name),
        "pin": format_pin(email.pin),
        "siblings": words.join(clean(name) for name in email.sibling_first_names),
    }
    others = "email.siblings" if email.sibling_first_names else "email.no_siblings"
    return _Body(
        greeting=words.text("email.greeting", **values),
        intro=words.text("email.intro", **values),
        pin_line=words.text("email.pin_line", **values),
        expiry=(
            words.text("email.expires", expires_on=words.date_in_words(email.expires_on))
            if email.expires_on
            else None
        ),
        steps_heading=words.text("email.steps_heading", **values),
        steps=words.lines("email.steps", **values),
        closing=(
            words.text(others, **values),
            words.text("email.private", **values),
            words.text("email.signature", **values),
        ),
        notices=assistance_notices(words.language, phone=email.practice.phone),
    )


def _plain(body: _Body) -> str:
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(body.steps, 1))
    parts = [
        body.greeting,
        body.intro,
        f"    {body.pin_line}",
        *([body.expiry] if body.expiry else []),
        f"{body.steps_heading}\n{steps}",
        *body.closing,
    ]
    if body.notices:
        parts.append("\n".join(body.notices))
    return "\n\n".join(parts) + "\n"


def _html(body: _Body, portal_url: str, language: str) -> str:
    # Every value is user-controlled or translated text: escape all of it, then link the URL.
    url = escape(portal_url)
    link = f'<a href="{url}">{url}</a>'

    def para(text: str) -> str:
        return f"<p>{escape(text).replace(url, link)}</p>"

    steps = "".join(f"<li>{escape(step).replace(url, link)}</li>" for step in body.steps)
    pin = (
        f'<p style="font-size:20px"><strong style="font-family:Courier New,monospace">'
        f"{escape(body.pin_line)}</strong></p>"
    )
    parts = [
        para(body.greeting),
        para(body.intro),
        pin,
        *([para(body.expiry)] if body.expiry else []),
        para(body.steps_heading),
        f"<ol>{steps}</ol>",
        *map(para, body.closing),
    ]
    parts += [f'<p style="font-size:12px;color:#555">{escape(n)}</p>' for n in body.notices]
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(language)}">'
        '<body style="font-family:Helvetica,Arial,sans-serif">\n'
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
