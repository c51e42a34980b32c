"""One CSV record's values parsed and validated field by field (SPEC §4): text and names,
dates, date-times, yes/no flags, email addresses, phone numbers and languages."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo

from bot.languages import UnknownLanguage, read_language
from bot.text import EMAIL_ADDRESS, SHORT_YEAR_DATE, clean, phone_digits

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Spreadsheet habits around dates (README "Importing"): a time after the date, as Excel writes
# a date cell formatted as date and time, is dropped; a serial number (43526) and a two-digit
# year (3/2/19) are refused with the reason — guessing the epoch or century could print a
# wrong date of birth on a PIN letter, and the portal checks PIN + DOB.
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?( ?[AaPp][Mm])?$")
_EXCEL_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")
_TRUE, _FALSE = {"yes", "true", "1", "y"}, {"no", "false", "0", "n", ""}
# A day of slack on "not in the future": the server's clock may run in another time zone
# than the practice, and a baby born this morning must still import.
CLOCK_SLACK = timedelta(days=1)


class Fields:
    """One record's values, parsed field by field; collects every problem, not just the first."""

    def __init__(self, values: dict[str, str], today: date) -> None:
        self.values, self.today = values, today
        self.problems: list[str] = []
        # Details left out rather than refused (`contact`): column -> the problem it had.
        self.left_out: dict[str, str] = {}

    def text(self, column: str, limit: int = 100, *, required: bool = True) -> str:
        # Split first: clean() drops control characters, which would glue "Line\nName" together.
        value = " ".join(self.values[column].split())
        if not (value.isascii() and value.isprintable()):  # the common case needs no cleaning
            value = clean(value, limit=10 * limit)
        if required and not value:
            self.problems.append(f"{column} is empty")
        elif len(value) > limit:
            self.problems.append(f"{column} is longer than {limit} characters")
        return value[:limit]

    def day(self, column: str, *, earliest: date | None = None) -> date:
        raw = self.values[column].strip()
        try:
            value = _parse_date(raw)
        except _DateProblem as problem:
            self.problems.append(f"{column} {problem}")
            return date.min
        except ValueError:
            self.problems.append(
                f"{column} is empty"
                if not raw
                else f"{column} is not a date (use YYYY-MM-DD or MM/DD/YYYY)"
            )
            return date.min
        self._check_range(column, value, earliest)
        return value

    def moment(
        self,
        column: str,
        *,
        past_only: bool = False,
        date_ok: bool = False,
        zone: tzinfo | None = None,
    ) -> datetime:
        raw = self.values[column].strip()
        try:
            value = _parse_moment(raw, date_ok=date_ok, zone=zone)
        except ValueError:
            self.problems.append(
                f"{column} is empty"
                if not raw
                else f"{column} is not an ISO 8601 date and time (like 2025-03-14T09:30)"
            )
            return datetime.min
        if past_only:
            self._check_range(column, value.date(), None)
        return value

    def flag(self, column: str) -> bool:
        raw = self.values[column].strip().lower()
        if raw not in _TRUE | _FALSE:
            self.problems.append(f"{column} must be yes or no (got '{raw[:20]}')")
        return raw in _TRUE

    def email(self, column: str) -> str | None:
        value = self.text(column, 254, required=False)
        if value and not EMAIL_ADDRESS.fullmatch(value):
            self.problems.append(f"{column} is not an email address")
        elif value and not value.isascii():
            # Most practice mail servers refuse internationalized addresses (no SMTPUTF8):
            # better refused here, with its line, than failing at send time an hour later.
            self.problems.append(
                f"{column} has non-ASCII characters; use the address's plain ASCII form"
            )
        return value or None

    def phone(self, column: str) -> str | None:
        value = self.text(column, 40, required=False)
        if value and phone_digits(value) is None:
            self.problems.append(f"{column} is not a phone number")
        return value or None

    def contact(self, column: str) -> str | None:
        """A guardian's phone or email. A malformed one is left out, not a problem: one bad
        contact detail never loses a patient (SPEC §4, §8). `left_out` says which and why,
        for the import's summary and the feed's ACK."""
        before = len(self.problems)
        value = self.phone(column) if column.endswith("phone") else self.email(column)
        if len(self.problems) == before:
            return value
        self.left_out[column] = self.problems[before]
        del self.problems[before:]
        return None

    def language(self, column: str) -> str | None:
        """An ISO 639-1 code ("es" from "es", "spa", "Spanish", "Español"); None when the
        column is absent or empty, or says the language is not known ("UNK", "Declined")."""
        raw = " ".join(self.values.get(column, "").split())
        try:
            return read_language(raw)
        except UnknownLanguage:
            self.problems.append(
                f"{column} '{raw[:30]}' is not a language pinbot knows; use an ISO 639 "
                "code (es, spa) or the language's name (Spanish, Español)"
            )
            return None

    def _check_range(self, column: str, value: date, earliest: date | None) -> None:
        if value > self.today + CLOCK_SLACK:
            self.problems.append(f"{column} is in the future")
        elif earliest and value < earliest:
            self.problems.append(f"{column} is before {earliest.year}")


class _DateProblem(ValueError):
    """A value that is recognisably not a usable date; the message says why."""


def _parse_date(raw: str) -> date:
    raw = _TIME_SUFFIX.sub("", raw)
    if _ISO_DATE.match(raw):
        return date.fromisoformat(raw)
    if match := _US_DATE.match(raw):
        month, day, year = (int(part) for part in match.groups())
        if month > 12 >= day:
            raise _DateProblem("looks like day/month/year; use MM/DD/YYYY or YYYY-MM-DD")
        return date(year, month, day)
    if _EXCEL_SERIAL.match(raw):
        raise _DateProblem(
            "is a spreadsheet date serial number, not a date: format the column "
            "as a date (MM/DD/YYYY) before exporting"
        )
    if SHORT_YEAR_DATE.fullmatch(raw):
        raise _DateProblem("has a two-digit year; use four digits (MM/DD/YYYY)")
    raise ValueError(raw)


def _parse_moment(raw: str, *, date_ok: bool, zone: tzinfo | None) -> datetime:
    if date_ok and (_ISO_DATE.match(raw) or _US_DATE.match(raw)):
        return datetime.combine(_parse_date(raw), datetime.min.time())
    if len(raw) <= 10:  # a bare date where a time is needed
        raise ValueError(raw)
    value = datetime.fromisoformat(raw)
    if value.tzinfo is not None:
        # Stored as the practice's wall-clock time; an explicit offset is converted to it.
        value = (value.astimezone(zone) if zone else value).replace(tzinfo=None)
    return value
