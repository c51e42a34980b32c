"""Family rows that do not come from a file: the live EHR feed turns one ADT message into the
rows a families-CSV line would be (bot/feed/records.py) and upserts them here, inside the
caller's transaction, through the very FamiliesImporter a CSV import runs: the same field
checks, the same conflicts, the same writes (never deletes, an approved name is kept, "no"
never clears a known portal account) and the same closing of name fixes a real name made
unnecessary. Two things differ because an HL7 message is not a whole record: a patient may
come without guardians, and an empty email or phone is "not sent", so it keeps the stored
one; and an empty account number is "not sent" too: a chart pinbot knows keeps its family's
account, only a new chart needs one (SPEC §8). A malformed guardian phone or email is left
out and reported, as the CSV import leaves it out (bot/importing/fields.py `contact`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session

from bot.families.name_fix import close_resolved
from bot.importing.base import NameBefore, StoredPatient, Tally, chart_accounts
from bot.importing.families import ACCOUNT_CONFLICT, FamiliesImporter
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
    # Details written without (a malformed guardian phone or email), worded as RowProblems.
    left_out: list[RowProblem] = field(default_factory=list)

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
    parsed, problems, left_out = [], [], []
    for index, values in enumerate(_with_known_accounts(session, rows)):
        fields = Fields(values, today)
        parsed.append((index, importer.parse(fields)))
        problems += [RowProblem(index, _column(p), p) for p in fields.problems]
        left_out += [RowProblem(index, c, p) for c, p in fields.left_out.items()]
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
        tally.counts(), written, tally.renamed, closed, list(tally.warnings.values()), left_out
    )


def _with_known_accounts(
    session: Session, rows: Sequence[dict[str, str]]
) -> Sequence[dict[str, str]]:
    """Rows that sent no account number get their chart's stored one (one look-up, only
    then); a chart pinbot does not know stays without, and the import says it is empty."""
    if all(row["account_number"].strip() for row in rows):
        return rows
    chart = {id(row): " ".join(row["patient_id"].split()) for row in rows}  # as Fields reads it
    stored = chart_accounts(session, chart.values())
    return [
        row
        if row["account_number"].strip()
        else row | {"account_number": stored.get(chart[id(row)], "")}
        for row in rows
    ]


def _column(problem: str) -> str:
    """Every problem the families import words starts with the column's name; a chart under
    another account is about the account."""
    return "account_number" if problem == ACCOUNT_CONFLICT else problem.split(" ", 1)[0]
