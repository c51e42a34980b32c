"""CSV import from the EHR (SPEC §4): families, appointments, registrations.

Two passes over the file. The first parses every row and checks the database for conflicts,
writing nothing; the second writes the good rows in chunks of CHUNK_ROWS, one transaction each,
preloading the existing records of a chunk with IN queries (not one SELECT per row) so a
250,000-patient practice imports in minutes. Re-imports are idempotent: records are keyed by
account_number, patient_id and guardian email (or name), updated in place, never deleted.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from sqlalchemy import insert
from sqlmodel import Session, SQLModel, col, select

from bot.audit import record
from bot.db import Database
from bot.name_fix import close_resolved
from bot.names import check_name
from bot.text import clean, email_key, fold, phone_digits
from models import Appointment, Family, Guardian, Patient, Pin, PinStatus, utcnow

CHUNK_ROWS = 1000
Source = str | Path | IO[str] | IO[bytes]
Progress = Callable[[int], None]

FAMILY_COLUMNS = (
    "account_number", "patient_id", "patient_first_name", "patient_middle_name",
    "patient_last_name", "patient_dob", "patient_sex", "name_type", "guardian_first_name",
    "guardian_last_name", "guardian_relationship", "guardian_email", "guardian_phone",
    "guardian_has_portal_account",
)
APPOINTMENT_COLUMNS = ("patient_id", "starts_at", "provider")
REGISTRATION_COLUMNS = ("patient_id", "registered_at")

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
_ENTITY_OUTCOMES = (CREATED, UPDATED, UNCHANGED)
REGISTERED, ALREADY_REGISTERED = "registered", "already registered"
NO_ACTIVE_PIN, BEFORE_PIN = "no active PIN", "registered before the active PIN was issued"
_REGISTRATION_OUTCOMES = (REGISTERED, ALREADY_REGISTERED, NO_ACTIVE_PIN, BEFORE_PIN)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Spreadsheet habits around dates (README "Importing"): a time after the date, as Excel writes
# a date cell formatted as date and time, is dropped; a serial number (43526) and a two-digit
# year (3/2/19) are refused with the reason — guessing the epoch or century could print a
# wrong date of birth on a PIN letter, and the portal checks PIN + DOB.
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?( ?[AaPp][Mm])?$")
_EXCEL_SERIAL = re.compile(r"^\d{1,6}(\.\d+)?$")
_SHORT_YEAR = re.compile(r"^\d{1,2}/\d{1,2}/\d{2}$")
_DELIMITERS = (",", ";", "\t")  # ties go to the comma
_SEP_HINT = re.compile(r"^sep=(.)\r?\n?$")  # Excel's optional first line naming the delimiter
_COLUMN_SEPARATORS = re.compile(r"[\s-]+")
# A record running over more physical lines than this has a quote that was never closed: the
# CSV reader would swallow the following rows into one field.
MAX_RECORD_LINES = 5
_TRUE, _FALSE = {"yes", "true", "1", "y"}, {"no", "false", "0", "n", ""}
_EARLIEST_DOB = date(1900, 1, 1)
_NAME_COLUMNS = frozenset({"first_name", "middle_name", "last_name", "first_key", "last_key"})
# A day of slack on "not in the future": the server's clock may run in another time zone
# than the practice, and a baby born this morning must still import.
_CLOCK_SLACK = timedelta(days=1)


# --------------------------------------------------------------------------- report

@dataclass
class ImportReport:
    kind: str = ""
    problems: list[tuple[int, str]] = field(default_factory=list)
    rows_read: int = 0
    rows_written: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    renamed_patient_ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # written anyway, but someone must act
    closed_name_fixes: int = 0  # pending name fixes this import made unnecessary
    written: bool = False  # False when problems stopped the import before anything was written
    fatal: bool = False  # the file itself is unusable (encoding, header): skip_invalid can't help

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_lines(self) -> list[str]:
        """What the CLI prints: counts, then every problem with its line number."""
        lines = [f"Import {self.kind}: {self.rows_read:,} rows read, "
                 f"{self.rows_written:,} written."]
        if self.written:
            for entity, outcomes in self.counts.items():
                parts = ", ".join(f"{n:,} {outcome}" for outcome, n in outcomes.items())
                lines.append(f"  {entity}: {parts}")
        if self.renamed_patient_ids:
            lines.append(f"  {_plural(len(self.renamed_patient_ids), 'patient')} renamed "
                         "(their names need verifying again)")
        if self.closed_name_fixes:
            lines.append(f"  {_plural(self.closed_name_fixes, 'pending name fix')} closed: "
                         "the EHR now has the child's real name")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        problems = _plural(len(self.problems), "problem")
        if self.fatal:
            lines.append("The file cannot be imported:")
        elif self.problems and not self.written:
            lines.append(f"{problems}, so nothing was written. Fix the file and import it "
                         "again, or import only the good rows with --skip-invalid:")
        elif self.problems:
            lines.append(f"{problems}; these rows were skipped:")
        lines += [f"  line {line}: {message}" if line else f"  {message}"
                  for line, message in self.problems]
        return lines


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


class _Tally:
    """Outcome per record for the whole run, so a record seen on several rows counts once."""

    def __init__(self, outcomes: dict[str, tuple[str, ...]]) -> None:
        self._outcomes = outcomes
        self._seen: dict[str, dict[Any, str]] = {entity: {} for entity in outcomes}
        self.renamed: list[int] = []
        self.warnings: dict[str, str] = {}  # by chart id: a patient on several rows warns once

    def mark(self, entity: str, key: Any, outcome: str) -> None:
        seen = self._seen[entity]
        before = seen.get(key)
        if before is None or (before == UNCHANGED and outcome == UPDATED):
            seen[key] = outcome

    def outcome(self, entity: str, key: Any) -> str | None:
        return self._seen[entity].get(key)

    def counts(self) -> dict[str, dict[str, int]]:
        counts = {e: dict.fromkeys(outcomes, 0) for e, outcomes in self._outcomes.items()}
        for entity, seen in self._seen.items():
            for outcome in seen.values():
                counts[entity][outcome] += 1
        return counts


# --------------------------------------------------------------------------- reading

class _FileProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _detect_encoding(chunks: Iterable[bytes]) -> str:
    """utf-16 with a byte-order mark (Excel's "Unicode Text"); otherwise utf-8-sig when the
    whole file decodes as UTF-8, else cp1252 (Excel's "CSV" on Windows, a superset of the
    printable Latin-1)."""
    chunks = iter(chunks)
    head = next(chunks, b"")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise _FileProblem(1, "the file looks like UTF-16 text without a byte-order mark; save "
                              "it as \"CSV UTF-8\" and import that")
    decoders = {name: codecs.getincrementaldecoder(name)() for name in ("utf-8-sig", "cp1252")}
    line, bad_line = 1, 1
    for chunk in itertools.chain([head], chunks, [b""]):
        for name, decoder in list(decoders.items()):
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                del decoders[name]
                bad_line = line + chunk.count(b"\n", 0, error.start)
        line += chunk.count(b"\n")
        if not decoders:
            raise _FileProblem(bad_line, "the file is not UTF-8 or Windows-1252 text")
    return next(iter(decoders))


class _CsvFile:
    """A CSV source that can be read twice. Paths are streamed; streams are read into memory
    (the CLI passes paths; streams are for the demo and tests)."""

    def __init__(self, source: Source) -> None:
        self._path: Path | None = None
        self._text: str | None = None
        if isinstance(source, str | Path):
            self._path = Path(source)
            try:
                with self._path.open("rb") as handle:
                    self._encoding = _detect_encoding(iter(lambda: handle.read(1 << 20), b""))
            except OSError as error:
                raise _FileProblem(0, f"cannot read {self._path}: {error.strerror}") from error
            return
        data = source.read()
        if isinstance(data, bytes):
            encoding = _detect_encoding([data])
            data = data.decode(encoding)
        self._text = data

    @contextmanager
    def open(self) -> Iterator[IO[str]]:
        if self._text is not None:
            yield io.StringIO(self._text, newline="")
            return
        assert self._path is not None
        with self._path.open(encoding=self._encoding, newline="") as handle:
            yield handle


Record = tuple[int, int, list[str]]  # first and last physical line, cells


def _records(stream: IO[str]) -> tuple[list[str], int, Iterator[Record]]:
    """The header, its line, and the non-blank records with the physical lines each spans."""
    first, skipped = stream.readline().lstrip("\ufeff"), 0
    if hint := _SEP_HINT.match(first):
        first, skipped = stream.readline(), 1
    if not first.strip():
        raise _FileProblem(1 + skipped, "the file is empty: the first line must be the column "
                                        "names")
    delimiter = hint.group(1) if hint else max(_DELIMITERS, key=first.count)
    reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
    header = [_COLUMN_SEPARATORS.sub("_", name.strip().lower()) for name in next(reader)]
    while header and not header[-1]:
        header.pop()  # empty columns Excel keeps after the last one used

    def rows() -> Iterator[Record]:
        last = reader.line_num
        try:
            for cells in reader:
                start, last = last + 1, reader.line_num
                if any(cell.strip() for cell in cells):
                    yield start + skipped, last + skipped, cells
        except csv.Error as error:
            raise _FileProblem(last + 1 + skipped, f"cannot be read as CSV ({error})") from error

    return header, 1 + skipped, rows()


def _record_problem(start: int, end: int, cells: list[str], width: int) -> str | None:
    if end - start >= MAX_RECORD_LINES:
        return (f"a quoted value starting on this line runs on to line {end}: a closing "
                "quote (\") is probably missing")
    if len(cells) != width:
        return f"has {len(cells)} fields but the header has {width}"
    return None


def _fit(cells: list[str], width: int) -> list[str]:
    """Drop empty trailing cells beyond the header (Excel's unused columns)."""
    if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
        return cells[:width]
    return cells


def _header_problems(header: list[str], columns: tuple[str, ...]) -> list[str]:
    problems = []
    if duplicates := sorted({name for name in header if header.count(name) > 1}):
        problems.append(f"column(s) appear more than once: {', '.join(duplicates)}")
    if missing := [name for name in columns if name not in header]:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown := [name or "(a column with no name)" for name in header if name not in columns]:
        problems.append(f"unknown column(s): {', '.join(unknown)}; "
                        f"the columns are: {', '.join(columns)}")
    return problems


class _Fields:
    """One record's values, parsed field by field; collects every problem, not just the first."""

    def __init__(self, values: dict[str, str], today: date) -> None:
        self.values, self.today = values, today
        self.problems: list[str] = []

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
            self.problems.append(f"{column} is empty" if not raw else
                                 f"{column} is not a date (use YYYY-MM-DD or MM/DD/YYYY)")
            return date.min
        self._check_range(column, value, earliest)
        return value

    def moment(self, column: str, *, past_only: bool = False, date_ok: bool = False,
               zone: tzinfo | None = None) -> datetime:
        raw = self.values[column].strip()
        try:
            value = _parse_moment(raw, date_ok=date_ok, zone=zone)
        except ValueError:
            self.problems.append(f"{column} is empty" if not raw else
                                 f"{column} is not an ISO 8601 date and time "
                                 "(like 2025-03-14T09:30)")
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
        if value and not _EMAIL.match(value):
            self.problems.append(f"{column} is not an email address")
        elif value and not value.isascii():
            # Most practice mail servers refuse internationalized addresses (no SMTPUTF8):
            # better refused here, with its line, than failing at send time an hour later.
            self.problems.append(f"{column} has non-ASCII characters; use the address's "
                                 "plain ASCII form")
        return value or None

    def phone(self, column: str) -> str | None:
        value = self.text(column, 40, required=False)
        if value and phone_digits(value) is None:
            self.problems.append(f"{column} is not a phone number")
        return value or None

    def _check_range(self, column: str, value: date, earliest: date | None) -> None:
        if value > self.today + _CLOCK_SLACK:
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
        raise _DateProblem("is a spreadsheet date serial number, not a date: format the column "
                           "as a date (MM/DD/YYYY) before exporting")
    if _SHORT_YEAR.match(raw):
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


# --------------------------------------------------------------------------- importers

R = TypeVar("R")
Problems = list[tuple[int, str]]


class _Importer(Generic[R]):
    kind: str
    columns: tuple[str, ...]
    outcomes: dict[str, tuple[str, ...]]

    def parse(self, fields: _Fields) -> R:
        raise NotImplementedError

    def check(self, session: Session, rows: list[tuple[int, R]]) -> Problems:
        """Problems that need other rows or the database (rows already parse)."""
        return []

    def write(self, session: Session, rows: list[R], tally: _Tally) -> None:
        raise NotImplementedError


def _apply(entity: SQLModel, values: dict[str, Any]) -> list[str]:
    """Set the values that differ; the names of the changed columns."""
    changed = [name for name, value in values.items() if getattr(entity, name) != value]
    for name in changed:
        setattr(entity, name, values[name])
    return changed


def _fetch_by(session: Session, model: type[Any], column: Any, keys: Iterable[Any]) -> list[Any]:
    return list(session.exec(select(model).where(col(column).in_(set(keys)))))


def _chart_accounts(session: Session, chart_ids: Iterable[str]) -> dict[str, str]:
    query = (select(Patient.chart_id, Family.account_number).join(Family)
             .where(col(Patient.chart_id).in_(set(chart_ids))))
    return dict(session.exec(query).all())


@dataclass(frozen=True, slots=True)
class _FamilyRow:
    account: str
    patient: dict[str, Any]  # Patient column values
    guardian: dict[str, Any]  # Guardian column values, except has_portal_account
    has_account: bool


class _Guardians:
    """A chunk's existing guardians, found by match key or, failing that, by name."""

    def __init__(self, guardians: Iterable[Guardian]) -> None:
        self.by_key: dict[tuple[int, str], Guardian] = {}
        self.by_name: dict[tuple[int, str, str], list[Guardian]] = defaultdict(list)
        for guardian in guardians:
            self.add(guardian)

    def add(self, guardian: Guardian) -> None:
        assert guardian.family_id is not None
        self.by_key[(guardian.family_id, guardian.match_key)] = guardian
        self.by_name[(guardian.family_id, guardian.first_key, guardian.last_key)].append(guardian)

    def find(self, family_id: int, values: dict[str, Any],
             claimed: Callable[[Guardian], bool]) -> Guardian | None:
        if found := self.by_key.get((family_id, values["match_key"])):
            return found
        # An email added or changed in the EHR: the same person under the same name, when exactly
        # one such guardian has not already been matched by another row of this run.
        same_name = self.by_name[(family_id, values["first_key"], values["last_key"])]
        candidates = [guardian for guardian in same_name if not claimed(guardian)]
        if len(candidates) != 1:
            return None
        del self.by_key[(family_id, candidates[0].match_key)]
        self.by_key[(family_id, values["match_key"])] = candidates[0]
        return candidates[0]


class _FamiliesImporter(_Importer[_FamilyRow]):
    kind, columns = "families", FAMILY_COLUMNS
    outcomes = {e: _ENTITY_OUTCOMES for e in ("families", "patients", "guardians")}

    def __init__(self) -> None:
        # patient_id -> (account_number, hash of its fields, first line), for in-file conflicts.
        self._patients: dict[str, tuple[str, int, int]] = {}

    def parse(self, fields: _Fields) -> _FamilyRow:
        first = fields.text("patient_first_name")
        middle = fields.text("patient_middle_name", required=False)
        last = fields.text("patient_last_name")
        patient = {
            "chart_id": fields.text("patient_id", 64), "first_name": first,
            "middle_name": middle, "last_name": last, "first_key": fold(first),
            "last_key": fold(last), "dob": fields.day("patient_dob", earliest=_EARLIEST_DOB),
            "sex": fields.text("patient_sex", 20),
            "name_type": fields.text("name_type", 10, required=False).upper() or None,
        }
        return _FamilyRow(fields.text("account_number", 64), patient,
                          _guardian_values(fields), fields.flag("guardian_has_portal_account"))

    def check(self, session: Session, rows: list[tuple[int, _FamilyRow]]) -> Problems:
        problems = []
        for line, row in rows:
            chart_id, fingerprint = row.patient["chart_id"], hash(tuple(row.patient.values()))
            account, seen_print, seen_line = self._patients.setdefault(
                chart_id, (row.account, fingerprint, line))
            if account != row.account:
                problems.append((line, f"patient_id is also on line {seen_line} under a "
                                       "different account_number"))
            elif seen_print != fingerprint:
                problems.append((line, f"patient_id is also on line {seen_line} with a different "
                                       "name, date of birth, sex or name_type"))
        stored = _chart_accounts(session, (row.patient["chart_id"] for _, row in rows))
        problems += [(line, "patient_id is already in the database under another account_number")
                     for line, row in rows
                     if stored.get(row.patient["chart_id"], row.account) != row.account]
        return problems

    def write(self, session: Session, rows: list[_FamilyRow], tally: _Tally) -> None:
        families = self._families(session, {row.account for row in rows}, tally)
        chunk = _FamilyChunk(session, families, rows, tally)
        for row in rows:
            family = families[row.account]
            changed = chunk.patient(family, row.patient)
            changed |= chunk.guardian(family, row)
            if changed and tally.outcome("families", row.account) != CREATED:
                family.updated_at = utcnow()
                tally.mark("families", row.account, UPDATED)
        chunk.insert_new()

    @staticmethod
    def _families(session: Session, accounts: set[str], tally: _Tally) -> dict[str, Family]:
        families = {f.account_number: f for f in _fetch_by(
            session, Family, Family.account_number, accounts)}
        for account in accounts:
            tally.mark("families", account, UNCHANGED if account in families else CREATED)
        if new := accounts - families.keys():
            # In bulk, then read back for their ids (which their patients and guardians need):
            # building ORM objects one by one costs more than the INSERT itself.
            now = utcnow()
            session.execute(insert(Family), [{"account_number": account, "created_at": now,
                                              "updated_at": now} for account in new])
            families.update((f.account_number, f) for f in _fetch_by(
                session, Family, Family.account_number, new))
        return families


class _FamilyChunk:
    """One chunk's patients and guardians: existing ones preloaded and updated in place, new
    ones gathered as plain rows and inserted in bulk (building ORM objects costs more than
    the whole INSERT)."""

    def __init__(self, session: Session, families: dict[str, Family], rows: list[_FamilyRow],
                 tally: _Tally) -> None:
        self.session, self.tally, self.now = session, tally, utcnow()
        self.patients = {p.chart_id: p for p in _fetch_by(
            session, Patient, Patient.chart_id, (row.patient["chart_id"] for row in rows))}
        self.guardians = _Guardians(_fetch_by(
            session, Guardian, Guardian.family_id, (f.id for f in families.values())))
        self.new_patients: dict[str, dict[str, Any]] = {}
        self.new_guardians: dict[tuple[int, str], dict[str, Any]] = {}

    def patient(self, family: Family, values: dict[str, Any]) -> bool:
        chart_id = values["chart_id"]
        if chart_id in self.new_patients:
            return False  # validation made every row of one patient agree
        if (patient := self.patients.get(chart_id)) is None:
            self.new_patients[chart_id] = {**values, "family_id": family.id,
                                           "name_verified": False, **self._stamps()}
            self.tally.mark("patients", chart_id, CREATED)
            return True
        changed = _apply(patient, self._keep_approved_name(patient, values))
        if changed:
            patient.updated_at = self.now
        if {"first_name", "middle_name", "last_name"} & set(changed):
            # A new name has not been checked by a supervisor (SPEC §5, name fixes).
            patient.name_verified = False
            self.tally.renamed.append(patient.id)  # type: ignore[arg-type]
        self.tally.mark("patients", chart_id, UPDATED if changed else UNCHANGED)
        return bool(changed)

    def _keep_approved_name(self, patient: Patient, values: dict[str, Any]) -> dict[str, Any]:
        """A supervisor-approved name is not overwritten by a placeholder the EHR still has:
        the EHR lags behind the approval. The report says so, so someone updates the EHR."""
        incoming = tuple(values[c] for c in ("first_name", "middle_name", "last_name"))
        if (not patient.name_verified
                or incoming == (patient.first_name, patient.middle_name, patient.last_name)
                or not check_name(*incoming, values["name_type"]).flagged):
            return values
        self.tally.warnings[patient.chart_id] = (
            f"EHR still has a temporary name for chart {patient.chart_id}; kept the approved "
            "name — update the EHR")
        return {k: v for k, v in values.items() if k not in _NAME_COLUMNS}

    def guardian(self, family: Family, row: _FamilyRow) -> bool:
        assert family.id is not None
        key = (family.id, row.guardian["match_key"])
        if (pending := self.new_guardians.get(key)) is not None:
            pending.update(row.guardian)  # the last row wins, as for an existing guardian
            pending["has_portal_account"] |= row.has_account
            return False
        guardian = self.guardians.find(family.id, row.guardian, lambda g: self.tally.outcome(
            "guardians", (g.family_id, g.match_key)) is not None)
        if guardian is None:
            self.new_guardians[key] = {**row.guardian, "family_id": family.id,
                                       "has_portal_account": row.has_account, **self._stamps()}
            self.tally.mark("guardians", key, CREATED)
            return True
        changed = _apply(guardian, row.guardian)
        # The EHR's flag can lag behind the portal: "no" never clears a known account.
        if row.has_account and not guardian.has_portal_account:
            guardian.has_portal_account = True
            changed.append("has_portal_account")
        if changed:
            guardian.updated_at = self.now
        self.tally.mark("guardians", key, UPDATED if changed else UNCHANGED)
        return bool(changed)

    def insert_new(self) -> None:
        for model, rows in ((Patient, self.new_patients), (Guardian, self.new_guardians)):
            if rows:
                self.session.execute(insert(model), list(rows.values()))

    def _stamps(self) -> dict[str, datetime]:
        return {"created_at": self.now, "updated_at": self.now}


def _guardian_values(fields: _Fields) -> dict[str, Any]:
    first, last = fields.text("guardian_first_name"), fields.text("guardian_last_name")
    email, phone = fields.email("guardian_email"), fields.phone("guardian_phone")
    return {
        "first_name": first, "last_name": last, "first_key": fold(first), "last_key": fold(last),
        "relationship": fields.text("guardian_relationship", 50), "email": email,
        "phone": phone, "phone_digits": phone_digits(phone),
        "match_key": email_key(email) or f"name:{fold(first)} {fold(last)}",
    }


@dataclass(frozen=True)
class _PatientRef:
    chart_id: str


P = TypeVar("P", bound=_PatientRef)


class _ByPatient(_Importer[P]):
    """Rows that refer to an existing patient by patient_id."""

    def check(self, session: Session, rows: list[tuple[int, P]]) -> Problems:
        known = _chart_accounts(session, (row.chart_id for _, row in rows))
        return [(line, "patient_id is not in the database (import the families file first)")
                for line, row in rows if row.chart_id not in known]


@dataclass(frozen=True)
class _AppointmentRow(_PatientRef):
    starts_at: datetime
    provider: str


class _AppointmentsImporter(_ByPatient[_AppointmentRow]):
    kind, columns = "appointments", APPOINTMENT_COLUMNS
    outcomes = {"appointments": _ENTITY_OUTCOMES}

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone

    def parse(self, fields: _Fields) -> _AppointmentRow:
        return _AppointmentRow(fields.text("patient_id", 64),
                               fields.moment("starts_at", zone=self._zone),
                               fields.text("provider", required=False))

    def write(self, session: Session, rows: list[_AppointmentRow], tally: _Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        query = select(Appointment).where(
            col(Appointment.patient_id).in_(set(patient_ids.values())),
            col(Appointment.starts_at).between(min(r.starts_at for r in rows),
                                               max(r.starts_at for r in rows)))
        existing = {(a.patient_id, a.starts_at): a for a in session.exec(query)}
        for row in rows:
            key = (patient_ids[row.chart_id], row.starts_at)
            if (appointment := existing.get(key)) is None:
                existing[key] = Appointment(patient_id=key[0], starts_at=row.starts_at,
                                            provider=row.provider)
                session.add(existing[key])
                tally.mark("appointments", key, CREATED)
            else:
                changed = _apply(appointment, {"provider": row.provider})
                tally.mark("appointments", key, UPDATED if changed else UNCHANGED)


@dataclass(frozen=True)
class _RegistrationRow(_PatientRef):
    registered_at: datetime


class _RegistrationsImporter(_ByPatient[_RegistrationRow]):
    kind, columns = "registrations", REGISTRATION_COLUMNS
    outcomes = {"registrations": _REGISTRATION_OUTCOMES}

    def parse(self, fields: _Fields) -> _RegistrationRow:
        return _RegistrationRow(fields.text("patient_id", 64), fields.moment(
            "registered_at", past_only=True, date_ok=True))

    def write(self, session: Session, rows: list[_RegistrationRow], tally: _Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        pins: dict[int, dict[str, Pin]] = defaultdict(dict)
        query = select(Pin).where(col(Pin.patient_id).in_(set(patient_ids.values())),
                                  col(Pin.status).in_([PinStatus.ACTIVE, PinStatus.REGISTERED]))
        for pin in session.exec(query):
            pins[pin.patient_id][pin.status] = pin
        for row in rows:
            tally.mark("registrations", row.chart_id,
                       _register(pins[patient_ids[row.chart_id]], row.registered_at))


def _register(pins: dict[str, Pin], registered_at: datetime) -> str:
    active = pins.get(PinStatus.ACTIVE)
    if active is None:
        return ALREADY_REGISTERED if PinStatus.REGISTERED in pins else NO_ACTIVE_PIN
    # A cumulative portal export lists old registrations too; one made before this PIN existed
    # used an earlier PIN and must not mark a freshly issued one (a day of time-zone slack).
    if registered_at.date() < active.issued_at.date() - _CLOCK_SLACK:
        return BEFORE_PIN
    active.status, active.status_changed_at = PinStatus.REGISTERED, utcnow()
    pins[PinStatus.REGISTERED] = pins.pop(PinStatus.ACTIVE)
    return REGISTERED


def _patient_ids(session: Session, chart_ids: Iterable[str]) -> dict[str, int]:
    query = select(Patient.chart_id, Patient.id).where(col(Patient.chart_id).in_(set(chart_ids)))
    return dict(session.exec(query).all())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- driver

def _chunks(items: Iterable[R], size: int) -> Iterator[list[R]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _parsed(csv_file: _CsvFile, importer: _Importer[R], today: date
            ) -> Iterator[tuple[int, R | None, list[str]]]:
    """(line, row, problems) for every record; row is None when the record has problems."""
    with csv_file.open() as stream:
        header, header_line, records = _records(stream)
        if not set(header) & set(importer.columns):
            # Data where the names should be; listing them as "unknown columns" would echo
            # a patient's details.
            raise _FileProblem(header_line, "the first line must be the column names (" + ", ".join(
                importer.columns) + "); none of them is there: is the header row missing?")
        if problems := _header_problems(header, importer.columns):
            raise _FileProblem(header_line, "; ".join(problems))
        for line, end, raw_cells in records:
            cells = _fit(raw_cells, len(header))
            if problem := _record_problem(line, end, cells, len(header)):
                yield line, None, [problem]
                continue
            fields = _Fields(dict(zip(header, cells, strict=True)), today)
            row = importer.parse(fields)
            yield line, (None if fields.problems else row), fields.problems


def _validate(database: Database, csv_file: _CsvFile, importer: _Importer[R],
              report: ImportReport, today: date) -> set[int]:
    """Every problem in the file into the report; the lines to skip when writing."""
    bad: set[int] = set()
    with database.read_session() as session:
        for chunk in _chunks(_parsed(csv_file, importer, today), CHUNK_ROWS):
            report.rows_read += len(chunk)
            for line, _, problems in chunk:
                report.problems += [(line, problem) for problem in problems]
            good = [(line, row) for line, row, _ in chunk if row is not None]
            report.problems += importer.check(session, good) if good else []
    bad.update(line for line, _ in report.problems)
    report.problems.sort(key=lambda problem: problem[0])
    return bad


def _write(database: Database, csv_file: _CsvFile, importer: _Importer[R], bad: set[int],
           tally: _Tally, today: date, progress: Progress | None) -> int:
    written = 0
    rows = ((line, row) for line, row, _ in _parsed(csv_file, importer, today)
            if row is not None and line not in bad)
    for chunk in _chunks(rows, CHUNK_ROWS):
        with database.transaction() as session:
            importer.write(session, [row for _, row in chunk], tally)
        written += len(chunk)
        if progress:
            progress(len(chunk))
    return written


def _run(database: Database, source: Source, importer: _Importer[R], *, skip_invalid: bool,
         actor: str, progress: Progress | None, on_total: Progress | None) -> ImportReport:
    report, today = ImportReport(kind=importer.kind), date.today()
    tally = _Tally(importer.outcomes)
    try:
        csv_file = _CsvFile(source)
        bad = _validate(database, csv_file, importer, report, today)
    except _FileProblem as problem:
        # Unreadable files and bad headers stop the import even with skip_invalid.
        report.problems.append((problem.line, problem.message))
        report.problems.sort(key=lambda item: item[0])
        bad, report.fatal = set(), True
    if not report.fatal and (skip_invalid or not report.problems):
        if on_total:
            on_total(report.rows_read - len(bad))
        report.rows_written = _write(database, csv_file, importer, bad, tally, today, progress)
        report.written = True
    report.counts, report.renamed_patient_ids = tally.counts(), tally.renamed
    report.warnings = list(tally.warnings.values())
    with database.transaction() as session:
        record(session, actor=actor, action=f"import.{importer.kind}",
               outcome="imported" if report.written else "rejected",
               rows_read=report.rows_read, rows_written=report.rows_written,
               problems=len(report.problems), counts=report.counts,
               renamed=len(report.renamed_patient_ids))
    return report


# --------------------------------------------------------------------------- public API

def import_families(database: Database, path_or_stream: Source, *, skip_invalid: bool = False,
                    actor: str = "cli", progress: Progress | None = None,
                    on_total: Progress | None = None) -> ImportReport:
    """Families, patients and guardians; one row per patient-guardian pair (SPEC §4).

    `progress` is called with the number of rows just written (an increment, like
    tqdm.update); `on_total` once, before writing, with the number of rows to write.
    """
    report = _run(database, path_or_stream, _FamiliesImporter(), skip_invalid=skip_invalid,
                  actor=actor, progress=progress, on_total=on_total)
    if report.renamed_patient_ids:
        with database.transaction() as session:
            closed = close_resolved(session, report.renamed_patient_ids, actor=actor)
        report.closed_name_fixes = len(closed)
    return report


def import_appointments(database: Database, path_or_stream: Source, *,
                        skip_invalid: bool = False, actor: str = "cli",
                        progress: Progress | None = None, on_total: Progress | None = None,
                        timezone: tzinfo | None = None) -> ImportReport:
    """Appointments (patient_id, starts_at, provider), keyed by patient and start time.
    starts_at is stored as naive local time; one with an offset is converted to `timezone`."""
    return _run(database, path_or_stream, _AppointmentsImporter(timezone),
                skip_invalid=skip_invalid, actor=actor, progress=progress, on_total=on_total)


def import_registrations(database: Database, path_or_stream: Source, *,
                         skip_invalid: bool = False, actor: str = "cli",
                         progress: Progress | None = None,
                         on_total: Progress | None = None) -> ImportReport:
    """Portal registrations (patient_id, registered_at): marks each active PIN registered."""
    return _run(database, path_or_stream, _RegistrationsImporter(), skip_invalid=skip_invalid,
                actor=actor, progress=progress, on_total=on_total)
