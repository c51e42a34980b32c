"""What every import kind shares: the report, the per-record tally, the Importer interface
the driver (bot.importing.importer) runs, and small helpers for writing a chunk."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from sqlmodel import Session, SQLModel, col, select

from bot.importing.fields import Fields
from models import Family, Patient

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
ENTITY_OUTCOMES = (CREATED, UPDATED, UNCHANGED)


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
        lines = [
            f"Import {self.kind}: {self.rows_read:,} rows read, {self.rows_written:,} written."
        ]
        if self.written:
            for entity, outcomes in self.counts.items():
                parts = ", ".join(f"{n:,} {outcome}" for outcome, n in outcomes.items())
                lines.append(f"  {entity}: {parts}")
        if self.renamed_patient_ids:
            lines.append(
                f"  {_plural(len(self.renamed_patient_ids), 'patient')} renamed "
                "(their names need verifying again)"
            )
        if self.closed_name_fixes:
            lines.append(
                f"  {_plural(self.closed_name_fixes, 'pending name fix')} closed: "
                "the EHR now has the child's real name"
            )
        lines += [f"  warning: {warning}" for warning in self.warnings]
        problems = _plural(len(self.problems), "problem")
        if self.fatal:
            lines.append("The file cannot be imported:")
        elif self.problems and not self.written:
            lines.append(
                f"{problems}, so nothing was written. Fix the file and import it "
                "again, or import only the good rows with --skip-invalid:"
            )
        elif self.problems:
            lines.append(f"{problems}; these rows were skipped:")
        lines += [
            f"  line {line}: {message}" if line else f"  {message}"
            for line, message in self.problems
        ]
        return lines


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


class NameBefore(NamedTuple):
    """A patient's name as it was before an import renamed them."""

    first_name: str
    middle_name: str
    last_name: str
    name_type: str | None
    name_verified: bool

    @classmethod
    def of(cls, patient: Patient) -> NameBefore:
        return cls(
            patient.first_name,
            patient.middle_name,
            patient.last_name,
            patient.name_type,
            patient.name_verified,
        )


class StoredPatient(NamedTuple):
    """A patient as the import left them: enough to audit and to learn their name keys."""

    id: int
    family_id: int
    first_key: str
    last_key: str

    @classmethod
    def of(cls, patient: Patient) -> StoredPatient:
        assert patient.id is not None
        return cls(patient.id, patient.family_id, patient.first_key, patient.last_key)


class Tally:
    """Outcome per record for the whole run, so a record seen on several rows counts once."""

    def __init__(self, outcomes: dict[str, tuple[str, ...]]) -> None:
        self._outcomes = outcomes
        self._seen: dict[str, dict[Any, str]] = {entity: {} for entity in outcomes}
        self.renamed: dict[int, NameBefore] = {}  # patient id -> the name it had
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


R = TypeVar("R")
Problems = list[tuple[int, str]]


class Importer(Generic[R]):
    kind: str
    columns: tuple[str, ...]
    optional_columns: tuple[str, ...] = ()  # a file may leave these out
    outcomes: ClassVar[dict[str, tuple[str, ...]]]

    def parse(self, fields: Fields) -> R:
        raise NotImplementedError

    def check(self, session: Session, rows: list[tuple[int, R]]) -> Problems:  # noqa: ARG002
        """Problems that need other rows or the database (rows already parse)."""
        return []

    def write(self, session: Session, rows: list[R], tally: Tally) -> None:
        raise NotImplementedError


def apply_values(entity: SQLModel, values: dict[str, Any]) -> list[str]:
    """Set the values that differ; the names of the changed columns."""
    changed = [name for name, value in values.items() if getattr(entity, name) != value]
    for name in changed:
        setattr(entity, name, values[name])
    return changed


def fetch_by(session: Session, model: type[Any], column: Any, keys: Iterable[Any]) -> list[Any]:
    return list(session.exec(select(model).where(col(column).in_(set(keys)))))


def chart_accounts(session: Session, chart_ids: Iterable[str]) -> dict[str, str]:
    query = (
        select(Patient.chart_id, Family.account_number)
        .join(Family)
        .where(col(Patient.chart_id).in_(set(chart_ids)))
    )
    return dict(session.exec(query).all())
