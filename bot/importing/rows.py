"""Family rows that do not come from a file: the live EHR feed turns one ADT message into the
rows a families-CSV line would be (bot/feed/records.py) and upserts them here, inside the
caller's transaction, through the very FamiliesImporter a CSV import runs: the same field
checks, the same conflicts, the same writes (never deletes, an approved name is kept, "no"
never clears a known portal account) and the same closing of name fixes a real name made
unnecessary. Two things differ because an HL7 message is not a whole record: a patient may
come without guardians, and an empty email or phone is "not sent", so it keeps the stored
one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session

from bot.families.name_fix import close_resolved
from bot.importing.base import NameBefore, StoredPatient, Tally
from bot.importing.families import FamiliesImporter
from bot.importing.fields import Fields


@dataclass(frozen=True)
class RowProblem:
    index: int  # which row (0-based): for the feed, which guardian
    column: str  # the families-CSV column the problem is about
    message: str  # as the CSV import words it ("patient_dob is empty")


class RowsRejected(Exception):
    """Some row does not pass the families import's rules: nothing was written."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class RowsApplied:
    counts: dict[str, dict[str, int]]
    patients: dict[str, StoredPatient]  # by chart id, as written
    renamed: dict[int, NameBefore]  # patient id -> the name it had before
    closed_name_fix_ids: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            n for outcomes in self.counts.values() for o, n in outcomes.items() if o != "unchanged"
        )


def upsert_family_rows(
    session: Session, rows: Sequence[dict[str, str]], *, today: date, actor: str
) -> RowsApplied:
    """Validate every row, then write them all in `session` (the caller commits), or raise
    RowsRejected and write nothing. Rows whose guardian columns are all empty update the
    patient only (an ADT without NK1); an empty email or phone keeps the one on file."""
    importer = FamiliesImporter(feed_rows=True)
    parsed, problems = [], []
    for index, values in enumerate(rows):
        fields = Fields(values, today)
        parsed.append((index, importer.parse(fields)))
        problems += [RowProblem(index, _column(p), p) for p in fields.problems]
    if problems:
        raise RowsRejected(problems)
    # One read serves both the conflict check and the write (the feed's hot path).
    stored = importer.load(session, [row for _, row in parsed])
    if problems := [
        RowProblem(index, _column(p), p)
        for index, p in importer.conflicts(parsed, stored.accounts())
    ]:
        raise RowsRejected(problems)
    tally = Tally(importer.outcomes)
    written = importer.write_loaded(session, [row for _, row in parsed], tally, stored)
    closed = close_resolved(session, tally.renamed, actor=actor) if tally.renamed else []
    return RowsApplied(
        tally.counts(), written, tally.renamed, closed, list(tally.warnings.values())
    )


def _column(problem: str) -> str:
    """Every problem the families import words starts with the column's name."""
    return problem.split(" ", 1)[0]
