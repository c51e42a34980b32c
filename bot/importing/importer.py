"""CSV import from the EHR (SPEC §4): families, appointments, registrations.

Two passes over the file. The first parses every row and checks the database for conflicts,
writing nothing; the second writes the good rows in chunks of CHUNK_ROWS, one transaction each,
preloading the existing records of a chunk with IN queries (not one SELECT per row) so a
250,000-patient practice imports in minutes. Re-imports are idempotent: records are keyed by
account_number, patient_id and guardian email (or name), updated in place, never deleted.

This module runs the passes and holds the appointments and registrations kinds; reading the
file is csv_reader's, parsing fields is fields', the families kind is families' and what they
share (report, tally, Importer interface) is base's.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import ClassVar, TypeVar

from sqlmodel import Session, col, select

from bot.audit import record
from bot.clock import Clock
from bot.db import Database
from bot.families.name_fix import close_resolved
from bot.importing.base import (
    CREATED,
    ENTITY_OUTCOMES,
    UNCHANGED,
    UPDATED,
    Importer,
    ImportReport,
    Problems,
    R,
    Tally,
    apply_values,
    chart_accounts,
)
from bot.importing.csv_reader import (
    MAX_RECORD_LINES,
    CsvFile,
    FileProblem,
    Source,
    fit,
    header_problems,
    read_records,
    record_problem,
)
from bot.importing.families import FAMILY_COLUMNS, FAMILY_OPTIONAL_COLUMNS, FamiliesImporter
from bot.importing.fields import CLOCK_SLACK, Fields
from models import Appointment, Patient, Pin, PinStatus, utcnow

__all__ = [
    "ALREADY_REGISTERED",
    "APPOINTMENT_COLUMNS",
    "BEFORE_PIN",
    "CHUNK_ROWS",
    "CREATED",
    "FAMILY_COLUMNS",
    "FAMILY_OPTIONAL_COLUMNS",
    "MAX_RECORD_LINES",
    "NO_ACTIVE_PIN",
    "REGISTERED",
    "REGISTRATION_COLUMNS",
    "UNCHANGED",
    "UPDATED",
    "ImportReport",
    "Progress",
    "Source",
    "import_appointments",
    "import_families",
    "import_registrations",
]

UTC_CLOCK = Clock()  # the practice's clock comes from the caller (the CLI passes it)
CHUNK_ROWS = 1000
Progress = Callable[[int], None]

APPOINTMENT_COLUMNS = ("patient_id", "starts_at", "provider")
REGISTRATION_COLUMNS = ("patient_id", "registered_at")

REGISTERED, ALREADY_REGISTERED = "registered", "already registered"
NO_ACTIVE_PIN, BEFORE_PIN = "no active PIN", "registered before the active PIN was issued"
_REGISTRATION_OUTCOMES = (REGISTERED, ALREADY_REGISTERED, NO_ACTIVE_PIN, BEFORE_PIN)


# ------------------------------------------------------------- appointments, registrations


@dataclass(frozen=True)
class _PatientRef:
    chart_id: str


P = TypeVar("P", bound=_PatientRef)
T = TypeVar("T")


class _ByPatient(Importer[P]):
    """Rows that refer to an existing patient by patient_id."""

    def check(self, session: Session, rows: list[tuple[int, P]]) -> Problems:
        known = chart_accounts(session, (row.chart_id for _, row in rows))
        return [
            (line, "patient_id is not in the database (import the families file first)")
            for line, row in rows
            if row.chart_id not in known
        ]


@dataclass(frozen=True)
class _AppointmentRow(_PatientRef):
    starts_at: datetime
    provider: str


class _AppointmentsImporter(_ByPatient[_AppointmentRow]):
    kind, columns = "appointments", APPOINTMENT_COLUMNS
    outcomes: ClassVar[dict[str, tuple[str, ...]]] = {"appointments": ENTITY_OUTCOMES}

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone

    def parse(self, fields: Fields) -> _AppointmentRow:
        return _AppointmentRow(
            fields.text("patient_id", 64),
            fields.moment("starts_at", zone=self._zone),
            fields.text("provider", required=False),
        )

    def write(self, session: Session, rows: list[_AppointmentRow], tally: Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        query = select(Appointment).where(
            col(Appointment.patient_id).in_(set(patient_ids.values())),
            col(Appointment.starts_at).between(
                min(r.starts_at for r in rows), max(r.starts_at for r in rows)
            ),
        )
        existing = {(a.patient_id, a.starts_at): a for a in session.exec(query)}
        for row in rows:
            key = (patient_ids[row.chart_id], row.starts_at)
            if (appointment := existing.get(key)) is None:
                existing[key] = Appointment(
                    patient_id=key[0], starts_at=row.starts_at, provider=row.provider
                )
                session.add(existing[key])
                tally.mark("appointments", key, CREATED)
            else:
                changed = apply_values(appointment, {"provider": row.provider})
                tally.mark("appointments", key, UPDATED if changed else UNCHANGED)


@dataclass(frozen=True)
class _RegistrationRow(_PatientRef):
    registered_at: datetime


class _RegistrationsImporter(_ByPatient[_RegistrationRow]):
    kind, columns = "registrations", REGISTRATION_COLUMNS
    outcomes: ClassVar[dict[str, tuple[str, ...]]] = {"registrations": _REGISTRATION_OUTCOMES}

    def __init__(self, zone: tzinfo | None) -> None:
        self._zone = zone

    def parse(self, fields: Fields) -> _RegistrationRow:
        return _RegistrationRow(
            fields.text("patient_id", 64),
            fields.moment("registered_at", past_only=True, date_ok=True, zone=self._zone),
        )

    def write(self, session: Session, rows: list[_RegistrationRow], tally: Tally) -> None:
        patient_ids = _patient_ids(session, (row.chart_id for row in rows))
        pins: dict[int, dict[str, Pin]] = defaultdict(dict)
        query = select(Pin).where(
            col(Pin.patient_id).in_(set(patient_ids.values())),
            col(Pin.status).in_([PinStatus.ACTIVE, PinStatus.REGISTERED]),
        )
        for pin in session.exec(query):
            pins[pin.patient_id][pin.status] = pin
        for row in rows:
            tally.mark(
                "registrations",
                row.chart_id,
                _register(pins[patient_ids[row.chart_id]], row.registered_at, self._zone),
            )


def _register(pins: dict[str, Pin], registered_at: datetime, zone: tzinfo | None) -> str:
    active = pins.get(PinStatus.ACTIVE)
    if active is None:
        return ALREADY_REGISTERED if PinStatus.REGISTERED in pins else NO_ACTIVE_PIN
    # A cumulative portal export lists old registrations too; one made before this PIN existed
    # used an earlier PIN and must not mark a freshly issued one (a day of time-zone slack).
    if registered_at.date() < active.issued_at.date() - CLOCK_SLACK:
        return BEFORE_PIN
    # The family's registration time (the file's local time), not the import's: the
    # adoption report counts PINs registered within 30 days of issue (SPEC §10).
    when = min(registered_at.replace(tzinfo=zone or UTC), utcnow())
    active.status, active.status_changed_at = PinStatus.REGISTERED, when
    pins[PinStatus.REGISTERED] = pins.pop(PinStatus.ACTIVE)
    return REGISTERED


def _patient_ids(session: Session, chart_ids: Iterable[str]) -> dict[str, int]:
    query = select(Patient.chart_id, Patient.id).where(col(Patient.chart_id).in_(set(chart_ids)))
    return dict(session.exec(query).all())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- driver


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _parsed(
    csv_file: CsvFile, importer: Importer[R], today: date
) -> Iterator[tuple[int, R | None, list[str]]]:
    """(line, row, problems) for every record; row is None when the record has problems."""
    with csv_file.open() as stream:
        header, header_line, records = read_records(stream)
        if not set(header) & set(importer.columns):
            # Data where the names should be; listing them as "unknown columns" would echo
            # a patient's details.
            raise FileProblem(
                header_line,
                "the first line must be the column names ("
                + ", ".join(importer.columns)
                + "); none of them is there: is the header row missing?",
            )
        if problems := header_problems(header, importer.columns, importer.optional_columns):
            raise FileProblem(header_line, "; ".join(problems))
        for line, end, raw_cells in records:
            cells = fit(raw_cells, len(header))
            if problem := record_problem(line, end, cells, len(header)):
                yield line, None, [problem]
                continue
            fields = Fields(dict(zip(header, cells, strict=True)), today)
            row = importer.parse(fields)
            yield line, (None if fields.problems else row), fields.problems


def _validate(
    database: Database, csv_file: CsvFile, importer: Importer[R], report: ImportReport, today: date
) -> set[int]:
    """Every problem in the file into the report; the lines to skip when writing."""
    bad: set[int] = set()
    with database.read_session() as session:
        records = _parsed(csv_file, importer, today)
        for chunk in _chunks(records, CHUNK_ROWS):
            report.rows_read += len(chunk)
            for line, _, problems in chunk:
                report.problems += [(line, problem) for problem in problems]
            good = [(line, row) for line, row, _ in chunk if row is not None]
            report.problems += importer.check(session, good) if good else []
    bad.update(line for line, _ in report.problems)
    report.problems.sort(key=lambda problem: problem[0])
    return bad


def _write(
    database: Database,
    csv_file: CsvFile,
    importer: Importer[R],
    bad: set[int],
    tally: Tally,
    today: date,
    progress: Progress | None,
) -> int:
    written = 0
    rows = (
        (line, row)
        for line, row, _ in _parsed(csv_file, importer, today)
        if row is not None and line not in bad
    )
    for chunk in _chunks(rows, CHUNK_ROWS):
        with database.transaction() as session:
            importer.write(session, [row for _, row in chunk], tally)
        written += len(chunk)
        if progress:
            progress(len(chunk))
    return written


def _run(
    database: Database,
    source: Source,
    importer: Importer[R],
    *,
    skip_invalid: bool,
    actor: str,
    progress: Progress | None,
    on_total: Progress | None,
    clock: Clock,
) -> ImportReport:
    report, today = ImportReport(kind=importer.kind), clock.today()
    tally = Tally(importer.outcomes)
    try:
        csv_file = CsvFile(source)
        bad = _validate(database, csv_file, importer, report, today)
    except FileProblem as problem:
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
        record(
            session,
            actor=actor,
            action=f"import.{importer.kind}",
            outcome="imported" if report.written else "rejected",
            rows_read=report.rows_read,
            rows_written=report.rows_written,
            problems=len(report.problems),
            counts=report.counts,
            renamed=len(report.renamed_patient_ids),
        )
    return report


# --------------------------------------------------------------------------- public API


def import_families(
    database: Database,
    path_or_stream: Source,
    *,
    skip_invalid: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
    on_total: Progress | None = None,
    clock: Clock = UTC_CLOCK,
) -> ImportReport:
    """Families, patients and guardians; one row per patient-guardian pair (SPEC §4).

    `progress` is called with the number of rows just written (an increment, like
    tqdm.update); `on_total` once, before writing, with the number of rows to write.
    """
    report = _run(
        database,
        path_or_stream,
        FamiliesImporter(),
        skip_invalid=skip_invalid,
        actor=actor,
        progress=progress,
        on_total=on_total,
        clock=clock,
    )
    if report.renamed_patient_ids:
        with database.transaction() as session:
            closed = close_resolved(session, report.renamed_patient_ids, actor=actor)
        report.closed_name_fixes = len(closed)
    return report


def import_appointments(
    database: Database,
    path_or_stream: Source,
    *,
    skip_invalid: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
    on_total: Progress | None = None,
    timezone: tzinfo | None = None,
    clock: Clock = UTC_CLOCK,
) -> ImportReport:
    """Appointments (patient_id, starts_at, provider), keyed by patient and start time.
    starts_at is stored as naive local time; one with an offset is converted to `timezone`."""
    return _run(
        database,
        path_or_stream,
        _AppointmentsImporter(timezone),
        skip_invalid=skip_invalid,
        actor=actor,
        progress=progress,
        on_total=on_total,
        clock=clock,
    )


def import_registrations(
    database: Database,
    path_or_stream: Source,
    *,
    skip_invalid: bool = False,
    actor: str = "cli",
    progress: Progress | None = None,
    on_total: Progress | None = None,
    timezone: tzinfo | None = None,
    clock: Clock = UTC_CLOCK,
) -> ImportReport:
    """Portal registrations (patient_id, registered_at): marks each active PIN registered, at
    registered_at (naive times are in `timezone`, the practice's)."""
    return _run(
        database,
        path_or_stream,
        _RegistrationsImporter(timezone),
        skip_invalid=skip_invalid,
        actor=actor,
        progress=progress,
        on_total=on_total,
        clock=clock,
    )
