"""Importing the families file (SPEC §4): families, patients and guardians, one row per
patient-guardian pair. Keyed by account_number, patient_id and guardian email (or name);
existing records are updated in place, new ones inserted in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import CompoundSelect, Insert, Result, insert, union_all
from sqlmodel import Session, col, select

from bot.db import table_of
from bot.families.names import check_name
from bot.importing.base import (
    CREATED,
    ENTITY_OUTCOMES,
    UNCHANGED,
    UPDATED,
    Importer,
    NameBefore,
    Problems,
    StoredPatient,
    Tally,
    apply_values,
    chart_accounts,
    fetch_by,
)
from bot.importing.fields import Fields
from bot.text import fold, normalized_email, phone_digits
from models import Family, Guardian, Patient, utcnow

FAMILY_COLUMNS = (
    "account_number",
    "patient_id",
    "patient_first_name",
    "patient_middle_name",
    "patient_last_name",
    "patient_dob",
    "patient_sex",
    "name_type",
    "guardian_first_name",
    "guardian_last_name",
    "guardian_relationship",
    "guardian_email",
    "guardian_phone",
    "guardian_has_portal_account",
)
# Optional: a file without it imports as before. The HL7 feed's rows always carry it (NK1-20).
FAMILY_OPTIONAL_COLUMNS = ("guardian_language",)
_GUARDIAN_COLUMNS = tuple(c for c in FAMILY_COLUMNS if c.startswith("guardian_"))
_EARLIEST_DOB = date(1900, 1, 1)
_NAME_COLUMNS = frozenset({"first_name", "middle_name", "last_name", "first_key", "last_key"})


@dataclass(frozen=True, slots=True)
class _FamilyRow:
    account: str
    patient: dict[str, Any]  # Patient column values
    # Guardian column values, except has_portal_account and language; None for a patient-only
    # row (an HL7 ADT without NK1: a feed row, never a CSV line).
    guardian: dict[str, Any] | None
    has_account: bool
    language: str | None  # None: not known, so a stored language is kept


@dataclass(frozen=True, slots=True)
class _Stored:
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


class FamiliesImporter(Importer[_FamilyRow]):
    kind, columns, optional_columns = "families", FAMILY_COLUMNS, FAMILY_OPTIONAL_COLUMNS
    outcomes: ClassVar[dict[str, tuple[str, ...]]] = dict.fromkeys(
        ("families", "patients", "guardians"), ENTITY_OUTCOMES
    )

    def __init__(self, *, feed_rows: bool = False) -> None:
        # Rows from the live feed (bot/importing/rows.py) may leave things out, where a CSV
        # line is the whole record: a row whose guardian columns are all empty updates the
        # patient only (an ADT without NK1), and an empty email or phone keeps the one on
        # file (in HL7 an empty field is "not sent", not "delete").
        self._guardian_optional = self._keep_absent = feed_rows
        # patient_id -> (account_number, hash of its fields, first line), for in-file conflicts.
        self._patients: dict[str, tuple[str, int, int]] = {}

    def parse(self, fields: Fields) -> _FamilyRow:
        first = fields.text("patient_first_name")
        middle = fields.text("patient_middle_name", required=False)
        last = fields.text("patient_last_name")
        patient = {
            "chart_id": fields.text("patient_id", 64),
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "first_key": fold(first),
            "last_key": fold(last),
            "dob": fields.day("patient_dob", earliest=_EARLIEST_DOB),
            "sex": fields.text("patient_sex", 20),
            "name_type": fields.text("name_type", 10, required=False).upper() or None,
        }
        no_guardian = self._guardian_optional and not any(
            fields.values.get(column, "").strip() for column in _GUARDIAN_COLUMNS
        )
        return _FamilyRow(
            fields.text("account_number", 64),
            patient,
            None if no_guardian else _guardian_values(fields),
            fields.flag("guardian_has_portal_account"),
            fields.language("guardian_language"),
        )

    def check(self, session: Session, rows: list[tuple[int, _FamilyRow]]) -> Problems:
        stored = chart_accounts(session, (row.patient["chart_id"] for _, row in rows))
        return self.conflicts(rows, stored)

    def conflicts(self, rows: list[tuple[int, _FamilyRow]], stored: dict[str, str]) -> Problems:
        """Rows that disagree with each other or with `stored` (chart id -> account number)."""
        problems = []
        for line, row in rows:
            chart_id, fingerprint = row.patient["chart_id"], hash(tuple(row.patient.values()))
            account, seen_print, seen_line = self._patients.setdefault(
                chart_id, (row.account, fingerprint, line)
            )
            if account != row.account:
                problems.append(
                    (
                        line,
                        f"patient_id is also on line {seen_line} under a different account_number",
                    )
                )
            elif seen_print != fingerprint:
                problems.append(
                    (
                        line,
                        f"patient_id is also on line {seen_line} with a different "
                        "name, date of birth, sex or name_type",
                    )
                )
        problems += [
            (line, "patient_id is already in the database under another account_number")
            for line, row in rows
            if stored.get(row.patient["chart_id"], row.account) != row.account
        ]
        return problems

    def load(self, session: Session, rows: list[_FamilyRow]) -> _Stored:
        """In one query: the families of the rows' accounts and of their stored patients
        (under another account, a conflict), each with those of the rows' patients it has."""
        charts = {row.patient["chart_id"] for row in rows}
        has_chart = col(Patient.chart_id).in_(charts)
        # A UNION of two index lookups: an OR of the two would scan every family.
        wanted: CompoundSelect[tuple[int | None]] = union_all(
            select(Family.id).where(col(Family.account_number).in_({row.account for row in rows})),
            select(Patient.family_id).where(has_chart),
        )
        query = (
            select(Family, Patient)
            .outerjoin(Patient, (col(Patient.family_id) == Family.id) & has_chart)
            .where(col(Family.id).in_(wanted))
        )
        patients, families = {}, {}
        for family, patient in session.exec(query):
            families[family.account_number] = family
            if patient is not None:
                patients[patient.chart_id] = patient
        return _Stored(patients, families)

    def write(self, session: Session, rows: list[_FamilyRow], tally: Tally) -> None:
        self.write_loaded(session, rows, tally, self.load(session, rows))

    def write_loaded(
        self, session: Session, rows: list[_FamilyRow], tally: Tally, stored: _Stored
    ) -> dict[str, StoredPatient]:
        """Write `rows`, given what `load` read for them in this session: the rows' patients
        as written, by chart id."""
        accounts = {row.account for row in rows}
        new = accounts - stored.families.keys()
        family_ids = {account: stored.families[account].id or 0 for account in accounts - new}
        # A family this chunk creates has no guardians yet: no need to look for them.
        chunk = _FamilyChunk(session, stored.patients, list(family_ids.values()), tally)
        family_ids |= self._insert_families(session, new)
        for account in accounts:
            tally.mark("families", account, CREATED if account in new else UNCHANGED)
        chunk.keep_absent = self._keep_absent
        for row in rows:
            family_id = family_ids[row.account]
            changed = chunk.patient(family_id, row.patient)
            changed |= chunk.guardian(family_id, row)
            if changed and tally.outcome("families", row.account) != CREATED:
                stored.families[row.account].updated_at = utcnow()
                tally.mark("families", row.account, UPDATED)
        chunk.insert_new()
        return chunk.written

    @staticmethod
    def _insert_families(session: Session, accounts: set[str]) -> dict[str, int]:
        """In bulk, RETURNING the ids their patients and guardians need."""
        if not accounts:
            return {}
        now = utcnow()
        inserted = _insert(
            session,
            insert(table_of(Family)).returning(col(Family.account_number), col(Family.id)),
            [{"account_number": a, "created_at": now, "updated_at": now} for a in accounts],
        )
        return {row.account_number: row.id for row in inserted}


class _FamilyChunk:
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
        return {k: v for k, v in values.items() if k not in _NAME_COLUMNS}

    def guardian(self, family_id: int, row: _FamilyRow) -> bool:
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
        changed = apply_values(guardian, self._sent(row.guardian))
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

    def _sent(self, values: dict[str, Any]) -> dict[str, Any]:
        if not self.keep_absent:
            return values
        absent = {"email", "match_key"} if values["email"] is None else set()
        absent |= {"phone", "phone_digits"} if values["phone"] is None else set()
        return {k: v for k, v in values.items() if k not in absent}

    def insert_new(self) -> None:
        if self.new_patients:
            inserted = _insert(
                self.session,
                insert(table_of(Patient)).returning(col(Patient.chart_id), col(Patient.id)),
                list(self.new_patients.values()),
            )
            for row in inserted:
                values = self.new_patients[row.chart_id]
                self.written[row.chart_id] = StoredPatient(
                    row.id, values["family_id"], values["first_key"], values["last_key"]
                )
        if self.new_guardians:
            _insert(self.session, insert(table_of(Guardian)), list(self.new_guardians.values()))

    def _stamps(self) -> dict[str, datetime]:
        return {"created_at": self.now, "updated_at": self.now}


def _insert(session: Session, statement: Insert, rows: list[dict[str, Any]]) -> Result[Any]:
    """One row (the live feed's usual case) as a plain execute: a list, even of one, takes
    the executemany path, which costs more than the statement."""
    return session.execute(statement, rows[0] if len(rows) == 1 else rows)


def _guardian_values(fields: Fields) -> dict[str, Any]:
    first, last = fields.text("guardian_first_name"), fields.text("guardian_last_name")
    email, phone = fields.email("guardian_email"), fields.phone("guardian_phone")
    values = {
        "first_name": first,
        "last_name": last,
        "first_key": fold(first),
        "last_key": fold(last),
        "relationship": fields.text("guardian_relationship", 50),
        "email": email,
        "phone": phone,
        "phone_digits": phone_digits(phone),
        "match_key": normalized_email(email) or f"name:{fold(first)} {fold(last)}",
    }
    return values
