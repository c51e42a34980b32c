"""Normalization shared by the importer (which stores search keys) and search (which queries
them), so both sides always agree."""

from __future__ import annotations

import re
import unicodedata

# PIN characters: Crockford base32, no I, L, O, U (nothing a parent can misread).
CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_NON_LETTERS = re.compile(r"[^a-z]+")
_NON_DIGITS = re.compile(r"\D+")
# One pattern each, matched whole (fullmatch): an email address as the bot accepts it, and a
# date with a two-digit year (03/04/18), which the bot refuses as ambiguous.
EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SHORT_YEAR_DATE = re.compile(r"\d{1,2}/\d{1,2}/\d{2}")
# Slack mrkdwn (message text, mrkdwn text objects): &, < and > are its only escapes, and they
# stop every mention, link and date token. It has no escape for formatting marks, so a
# zero-width space after each keeps "*Bo*" literal instead of bold, and one after "@" keeps a
# typed "@here" from ever being read as a mention.
_MRKDWN = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "*": "*\u200b",
    "_": "_\u200b",
    "~": "~\u200b",
    "`": "`\u200b",
    "@": "@\u200b",
}
_MRKDWN_TABLE = str.maketrans(_MRKDWN)  # one C pass (a per-character join cost 10x more)
# Control and bidi-override characters; tab and newlines are whitespace and become spaces.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
)


def fold(value: str) -> str:
    """Lower-case ASCII letters only: "Peña-O'Brien" -> "penaobrien"."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    return _NON_LETTERS.sub("", ascii_only.lower())


def phone_digits(value: str | None) -> str | None:
    """The last ten digits of a North American number, whatever its punctuation."""
    digits = _NON_DIGITS.sub("", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits[-10:] if len(digits) >= 7 else None


_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension)\s*\d{1,6}\s*$", re.IGNORECASE)


def is_full_phone_number(value: str) -> bool:
    """A number a parent can be called on: ten digits with the area code (a leading 1 allowed),
    or an international +number of 8 to 15 digits; an extension ("x204") may follow. Shorter
    runs of digits ("555-201-44") are a typo, not a number."""
    number = _EXTENSION.sub("", value).strip()
    digits = _NON_DIGITS.sub("", number)
    if number.startswith("+1"):
        return len(digits) == 11
    if number.startswith("+"):
        return 8 <= len(digits) <= 15
    return len(digits) == 10 or (len(digits) == 11 and digits.startswith("1"))


def clean(value: str | None, limit: int = 100) -> str:
    """Collapse whitespace and drop control and bidi-override characters."""
    without_controls = _CONTROL.sub("", value or "")
    return " ".join(without_controls.split())[:limit]


def normalized_email(value: str | None) -> str | None:
    email = clean(value, 254).lower()
    return email or None


def mask_email(value: str | None) -> str:
    """'jane.doe@example.com' -> 'j•••@e•••.com' (enough to recognise, not to use)."""
    if not value or "@" not in value:
        return "—"
    local, _, domain = value.partition("@")
    host, dot, tld = domain.rpartition(".")
    host = host or tld
    return f"{local[:1]}•••@{host[:1]}•••{dot}{tld if dot else ''}"


def mask_phone(value: str | None) -> str:
    """'(555) 010-1234' -> '•••-•••-1234'."""
    digits = phone_digits(value)
    return f"•••-•••-{digits[-4:]}" if digits else "—"


def mrkdwn_literal(value: object) -> str:
    """User-controlled text (names, notes, queries) inside Slack mrkdwn: shown as typed, never
    a ping, a link or formatting. The one escaping function: handlers use it as blocks.esc,
    and bot/ uses it for the few sentences it writes for Slack."""
    return str(value).translate(_MRKDWN_TABLE)
