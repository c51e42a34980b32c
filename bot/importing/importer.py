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
from collections.abc import Callable, Iterable, Iterator
from datetime import date, tzinfo
from typing import TypeVar

from bot.audit import record
from bot.clock import Clock
from bot.db import Database
from bot.families.name_fix import close_resolved
from bot.importing.base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    Importer,
    ImportReport,
    R,
    Tally,
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
from bot.importing.fields import Fields
from bot.importing.visits import (
    ALREADY_REGISTERED,
    APPOINTMENT_COLUMNS,
    BEFORE_PIN,
    NO_ACTIVE_PIN,
    REGISTERED,
    REGISTRATION_COLUMNS,
    AppointmentsImporter,
    RegistrationsImporter,
)

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


T = TypeVar("T")


# --------------------------------------------------------------------------- driver


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _parsed(
    csv_file: CsvFile, importer: Importer[R], today: date
) -> Iterator[tuple[int, R | None, list[str], list[str]]]:
    """(line, row, problems, left out) for every record; row is None when the record has
    problems; left out: the details the row imports without (a malformed guardian phone)."""
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
                yield line, None, [problem], []
                continue
            fields = Fields(dict(zip(header, cells, strict=True)), today)
            row = importer.parse(fields)
            left_out = [f"{reason}; imported without it" for reason in fields.left_out.values()]
            yield line, (None if fields.problems else row), fields.problems, left_out


def _validate(
    database: Database, csv_file: CsvFile, importer: Importer[R], report: ImportReport, today: date
) -> tuple[set[int], list[str]]:
    """Every problem in the file into the report; the lines to skip when writing, and what
    the written lines leave out ("line 7: guardian_phone is not a phone number; …")."""
    left_out: list[tuple[int, str]] = []
    with database.read_session() as session:
        records = _parsed(csv_file, importer, today)
        for chunk in _chunks(records, CHUNK_ROWS):
            report.rows_read += len(chunk)
            for line, _, problems, details in chunk:
                report.problems += [(line, problem) for problem in problems]
                left_out += [(line, detail) for detail in details]
            good = [(line, row) for line, row, _, _ in chunk if row is not None]
            report.problems += importer.check(session, good) if good else []
    bad = {line for line, _ in report.problems}
    report.problems.sort(key=lambda problem: problem[0])
    return bad, [f"line {line}: {detail}" for line, detail in left_out if line not in bad]


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
        for line, row, _, _ in _parsed(csv_file, importer, today)
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
    left_out: list[str] = []
    try:
        csv_file = CsvFile(source)
        bad, left_out = _validate(database, csv_file, importer, report, today)
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
    report.counts, report.renamed_patient_ids = tally.counts(), list(tally.renamed)
    report.warnings = (left_out if report.written else []) + list(tally.warnings.values())
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
        AppointmentsImporter(timezone),
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
        RegistrationsImporter(timezone),
        skip_invalid=skip_invalid,
        actor=actor,
        progress=progress,
        on_total=on_total,
        clock=clock,
    )
