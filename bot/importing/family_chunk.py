"""Writing one chunk of families-import rows (bot/importing/families.py decides what to write):
the existing patients and guardians updated in place, new ones gathered as plain rows and
inserted in bulk, RETURNING the ids the caller needs. Shared by the CSV import and the live
feed (bot/importing/rows.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Result, insert
from sqlmodel import Session, col

from bot.db import table_of
from bot.families.names import check_name
from bot.importing.base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    NameBefore,
    StoredPatient,
    Tally,
    apply_values,
    fetch_by,
)
from models import Family, Guardian, Patient, utcnow

# Built once: the live feed inserts one patient and guardian per new-family message.
_INSERT_PATIENTS = insert(table_of(Patient)).returning(col(Patient.chart_id), col(Patient.id))
_INSERT_GUARDIANS = insert(table_of(Guardian))
NAME_COLUMNS = frozenset({"first_name", "middle_name", "last_name", "first_key", "last_key"})


@dataclass(frozen=True, slots=True)
class FamilyRow:
    account: str
    patient: dict[str, Any]  # Patient column values
    # Guardian column values, except has_portal_account and language; None for a patient-only
    # row (an HL7 ADT without NK1: a feed row, never a CSV line).
    guardian: dict[str, Any] | None
    has_account: bool
    language: str | None  # None: not known, so a stored language is kept
    # Guardian columns ("email", "phone") left out as malformed: a stored value is kept.
    left_out: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database already holds for some rows: their patients (by chart id) with their
    families, and the families of the rows' accounts (by account number)."""

    patients: dict[str, Patient]
    families: dict[str, Family]

    def accounts(self) -> dict[str, str]:
        by_id = {family.id: account for account, family in self.families.items()}
        return {chart: by_id[p.family_id] for chart, p in self.patients.items()}


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

    def find(
        self, family_id: int, values: dict[str, Any], claimed: Callable[[Guardian], bool]
    ) -> Guardian | None:
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


class FamilyChunk:
    """One chunk's patients and guardians: existing ones preloaded and updated in place, new
    ones gathered as plain rows and inserted in bulk (building ORM objects costs more than
    the whole INSERT)."""

    def __init__(
        self,
        session: Session,
        patients: dict[str, Patient],
        old_family_ids: list[int],
        tally: Tally,
    ) -> None:
        self.session, self.tally, self.now = session, tally, utcnow()
        self.patients = patients
        self.guardians = _Guardians(
            fetch_by(session, Guardian, Guardian.family_id, old_family_ids)
            if old_family_ids
            else ()
        )
        self.keep_absent = False  # see FamiliesImporter(feed_rows=...)
        self.new_patients: dict[str, dict[str, Any]] = {}
        self.new_guardians: dict[tuple[int, str], dict[str, Any]] = {}
        self.written: dict[str, StoredPatient] = {}  # chart id -> the patient as written

    def patient(self, family_id: int, values: dict[str, Any]) -> bool:
        chart_id = values["chart_id"]
        if chart_id in self.new_patients:
            return False  # validation made every row of one patient agree
        if (patient := self.patients.get(chart_id)) is None:
            self.new_patients[chart_id] = {
                **values,
                "family_id": family_id,
                "name_verified": False,
                **self._stamps(),
            }
            self.tally.mark("patients", chart_id, CREATED)
            return True
        before = NameBefore.of(patient)
        changed = apply_values(patient, self._keep_approved_name(patient, values))
        if changed:
            patient.updated_at = self.now
        if {"first_name", "middle_name", "last_name"} & set(changed):
            # A new name has not been checked by a supervisor (SPEC §5, name fixes).
            patient.name_verified = False
            assert patient.id is not None  # an updated patient was loaded from the database
            self.tally.renamed[patient.id] = before
        self.tally.mark("patients", chart_id, UPDATED if changed else UNCHANGED)
        self.written[chart_id] = StoredPatient.of(patient)
        return bool(changed)

    def _keep_approved_name(self, patient: Patient, values: dict[str, Any]) -> dict[str, Any]:
        """A supervisor-approved name is not overwritten by a placeholder the EHR still has:
        the EHR lags behind the approval. The report says so, so someone updates the EHR."""
        incoming: tuple[str, str, str] = (
            values["first_name"],
            values["middle_name"],
            values["last_name"],
        )
        if (
            not patient.name_verified
            or incoming == (patient.first_name, patient.middle_name, patient.last_name)
            or not check_name(*incoming, name_type=values["name_type"]).flagged
        ):
            return values
        self.tally.warnings[patient.chart_id] = (
            f"EHR still has a temporary name for chart {patient.chart_id}; kept the approved "
            "name — update the EHR"
        )
        return {k: v for k, v in values.items() if k not in NAME_COLUMNS}

    def guardian(self, family_id: int, row: FamilyRow) -> bool:
        if row.guardian is None:
            return False
        key = (family_id, row.guardian["match_key"])
        if (pending := self.new_guardians.get(key)) is not None:
            pending.update(row.guardian)  # the last row wins, as for an existing guardian
            pending["has_portal_account"] |= row.has_account
            pending["language"] = row.language or pending["language"]
            return False
        guardian = self.guardians.find(
            family_id,
            row.guardian,
            lambda g: self.tally.outcome("guardians", (g.family_id, g.match_key)) is not None,
        )
        if guardian is None:
            self.new_guardians[key] = {
                **row.guardian,
                "family_id": family_id,
                "has_portal_account": row.has_account,
                "language": row.language,
                **self._stamps(),
            }
            self.tally.mark("guardians", key, CREATED)
            return True
        changed = apply_values(guardian, self._sent(row))
        # The EHR's flag can lag behind the portal: "no" never clears a known account.
        if row.has_account and not guardian.has_portal_account:
            guardian.has_portal_account = True
            changed.append("has_portal_account")
        # Likewise an empty language (a file or feed that does not say) keeps a known one.
        if row.language and guardian.language != row.language:
            guardian.language = row.language
            changed.append("language")
        if changed:
            guardian.updated_at = self.now
        self.tally.mark("guardians", key, UPDATED if changed else UNCHANGED)
        return bool(changed)

    def _sent(self, row: FamilyRow) -> dict[str, Any]:
        """The guardian values to write over the stored ones: a detail left out as malformed,
        or (feed rows) not sent, keeps the stored one."""
        values = row.guardian
        assert values is not None
        absent = row.left_out if not self.keep_absent else {"email", "phone"}
        kept = {name for name in absent if values[name] is None}
        kept |= {"match_key"} if "email" in kept else set()
        kept |= {"phone_digits"} if "phone" in kept else set()
        return {k: v for k, v in values.items() if k not in kept}

    def insert_new(self) -> None:
        if self.new_patients:
            inserted = insert_rows(
                self.session,
                _INSERT_PATIENTS,
                list(self.new_patients.values()),
            )
            for row in inserted:
                values = self.new_patients[row.chart_id]
                self.written[row.chart_id] = StoredPatient(
                    row.id, values["family_id"], values["first_key"], values["last_key"]
                )
        if self.new_guardians:
            insert_rows(self.session, _INSERT_GUARDIANS, list(self.new_guardians.values()))

    def _stamps(self) -> dict[str, datetime]:
        return {"created_at": self.now, "updated_at": self.now}


def insert_rows(session: Session, statement: Insert, rows: list[dict[str, Any]]) -> Result[Any]:
    """One row (the live feed's usual case) as a plain execute: a list, even of one, takes
    the executemany path, which costs more than the statement."""
    return session.execute(statement, rows[0] if len(rows) == 1 else rows)
