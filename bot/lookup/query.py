"""Reading a search query (no Slack here, no database).

`parse_query` reads the text as an account number or chart id, a phone number (any format),
an email, a date of birth (optionally with name words: "ava 03/02/2019"), "last, first", or a
free name of one or more words (child or guardian, first and/or last name). bot/lookup/search.py
finds the people it describes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from bot.errors import InvalidQuery
from bot.text import (
    EMAIL_ADDRESS,
    SHORT_YEAR_DATE,
    clean,
    fold,
    mrkdwn_literal,
    normalized_email,
    phone_digits,
)

__all__ = ["HELP", "MAX_NAME_WORDS", "MAX_QUERY_CHARS", "Query", "QueryKind", "parse_query"]

MAX_QUERY_CHARS = 200
MAX_NAME_WORDS = 10

HELP = (
    "Search by last name, \u201clast, first\u201d, a child's or guardian's name, phone, "
    "email, account number, chart id, or date of birth (MM/DD/YYYY or YYYY-MM-DD)."
)
_DATE_FORMATS = (
    (re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"), (3, 1, 2)),
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), (1, 2, 3)),
)
_PHONE_TEXT = re.compile(r"\+?[\d\s().-]+")
# Slack may send a typed email or phone as <mailto:a@b.org|a@b.org> or <tel:555…|555…>.
_SLACK_LINK = re.compile(r"<(?:mailto:|tel:)?([^|<>]*)(?:\|([^<>]*))?>")


class QueryKind(StrEnum):
    NAME = "name"
    LAST_FIRST = "last, first"
    PHONE = "phone"
    EMAIL = "email"
    DOB = "date of birth"
    IDENTIFIER = "account number or chart id"


@dataclass(frozen=True)
class Query:
    kind: QueryKind
    text: str
    # Folded name words. LAST_FIRST: the last name's. DOB: any beside the date. IDENTIFIER:
    # the letters of a mostly-letters id, tried as a name when no id matches ("1Judysgirl").
    words: tuple[str, ...] = ()
    first: tuple[str, ...] = ()  # LAST_FIRST: the words after the comma
    value: str = ""  # PHONE: ten digits; EMAIL: lower-cased address
    identifier: str = ""  # IDENTIFIER, and a bare 10-digit PHONE (it may be an account number)
    dob: date | None = None


def parse_query(text: str) -> Query:
    raw = clean(
        _SLACK_LINK.sub(lambda link: link[2] or link[1], text or ""), limit=10 * MAX_QUERY_CHARS
    )
    if not raw:
        raise InvalidQuery(f"Type what to look for. {HELP}")
    if len(raw) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"That search is over {MAX_QUERY_CHARS} characters. {HELP}")
    if not any(c.isalnum() for c in raw):
        raise InvalidQuery(f"That search has no letters or digits. {HELP}")
    if "@" in raw:
        if not EMAIL_ADDRESS.fullmatch(raw):
            raise InvalidQuery(
                f"\u201c{mrkdwn_literal(raw)}\u201d doesn't look like an email address."
            )
        return Query(QueryKind.EMAIL, raw, value=normalized_email(raw) or "")
    tokens = raw.split()
    dates = [(i, dob) for i, token in enumerate(tokens) if (dob := _parse_date(token))]
    if dates:
        index, dob = dates[0]
        words = _name_words(tokens[:index] + tokens[index + 1 :])
        return Query(QueryKind.DOB, raw, words=words, dob=dob)
    digits = re.sub(r"\D", "", raw)
    if _PHONE_TEXT.fullmatch(raw) and (
        len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
    ):
        return Query(
            QueryKind.PHONE,
            raw,
            value=phone_digits(raw) or "",
            identifier=raw if raw.isdigit() else "",
        )
    if digits and (len(tokens) == 1 or not re.search(r"[^\W\d_]", raw)):
        # Mostly letters ("1Judysgirl"): also tried as a name when no id matches.
        letters = sum(c.isalpha() for c in raw)
        words = _name_words(tokens) if letters > len(digits) else ()
        return Query(QueryKind.IDENTIFIER, raw, identifier=raw, words=words)
    if "," in raw:
        last, _, first = raw.partition(",")
        last_words, first_words = _name_words(last.split()), _name_words(first.split())
        if last_words:
            return Query(QueryKind.LAST_FIRST, raw, words=last_words, first=first_words)
    words = _name_words(tokens)
    if not words:
        raise InvalidQuery(f"\u201c{mrkdwn_literal(raw)}\u201d has no name in it. {HELP}")
    return Query(QueryKind.NAME, raw, words=words)


def _parse_date(token: str) -> date | None:
    if SHORT_YEAR_DATE.fullmatch(token):
        raise InvalidQuery(
            f"Write the year in full: \u201c{mrkdwn_literal(token)}\u201d could "
            "be several dates. Use MM/DD/YYYY or YYYY-MM-DD."
        )
    for pattern, (y, m, d) in _DATE_FORMATS:
        if found := pattern.fullmatch(token):
            try:
                return date(int(found[y]), int(found[m]), int(found[d]))
            except ValueError:
                raise InvalidQuery(
                    f"\u201c{mrkdwn_literal(token)}\u201d is not a real date. "
                    "Dates of birth look like 03/02/2019 or 2019-03-02."
                ) from None
    return None


def _name_words(tokens: Iterable[str]) -> tuple[str, ...]:
    words = tuple(w for w in map(fold, tokens) if w)
    if len(words) > MAX_NAME_WORDS:
        raise InvalidQuery(f"Use at most {MAX_NAME_WORDS} words of a name. {HELP}")
    return words
