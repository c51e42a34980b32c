"""Importing the families file (SPEC §4): families, patients and guardians, one row per
patient-guardian pair. Keyed by account_number, patient_id and guardian email (or name);
existing records are updated in place, new ones inserted in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import insert
from sqlmodel import Session

from bot.families.names import check_name
from bot.importing.base import (
    CREATED,
    ENTITY_OUTCOMES,
    UNCHANGED,
    UPDATED,
    Importer,
    Problems,
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
        stored = chart_accounts(session, (row.patient["chart_id"] for _, row in rows))
        problems += [
            (line, "patient_id is already in the database under another account_number")
            for line, row in rows
            if stored.get(row.patient["chart_id"], row.account) != row.account
        ]
        return problems

    def write(self, session: Session, rows: list[_FamilyRow], tally: Tally) -> None:
        families = self._families(session, {row.account for row in rows}, tally)
        chunk = _FamilyChunk(session, families, rows, tally)
        chunk.keep_absent = self._keep_absent
        for row in rows:
            family = families[row.account]
            changed = chunk.patient(family, row.patient)
            changed |= chunk.guardian(family, row)
            if changed and tally.outcome("families", row.account) != CREATED:
                family.updated_at = utcnow()
                tally.mark("families", row.account, UPDATED)
        chunk.insert_new()

    @staticmethod
    def _families(session: Session, accounts: set[str], tally: Tally) -> dict[str, Family]:
        families = {
            f.account_number: f for f in fetch_by(session, Family, Family.account_number, accounts)
        }
        for account in accounts:
            tally.mark("families", account, UNCHANGED if account in families else CREATED)
        if new := accounts - families.keys():
            # In bulk, then read back for their ids (which their patients and guardians need):
            # building ORM objects one by one costs more than the INSERT itself.
            now = utcnow()
            session.execute(
                insert(Family),
                [
                    {"account_number": account, "created_at": now, "updated_at": now}
                    for account in new
                ],
            )
            families.update(
                (f.account_number, f) for f in fetch_by(session, Family, Family.account_number, new)
            )
        return families


class _FamilyChunk:
    """One chunk's patients and guardians: existing ones preloaded and updated in place, new
    ones gathered as plain rows and inserted in bulk (building ORM objects costs more than
    the whole INSERT)."""

    def __init__(
        self, session: Session, families: dict[str, Family], rows: list[_FamilyRow], tally: Tally
    ) -> None:
        self.session, self.tally, self.now = session, tally, utcnow()
        self.patients = {
            p.chart_id: p
            for p in fetch_by(
                session, Patient, Patient.chart_id, (row.patient["chart_id"] for row in rows)
            )
        }
        self.guardians = _Guardians(
            fetch_by(session, Guardian, Guardian.family_id, (f.id for f in families.values()))
        )
        self.keep_absent = False  # see FamiliesImporter(feed_rows=...)
        self.new_patients: dict[str, dict[str, Any]] = {}
        self.new_guardians: dict[tuple[int, str], dict[str, Any]] = {}

    def patient(self, family: Family, values: dict[str, Any]) -> bool:
        chart_id = values["chart_id"]
        if chart_id in self.new_patients:
            return False  # validation made every row of one patient agree
        if (patient := self.patients.get(chart_id)) is None:
            self.new_patients[chart_id] = {
                **values,
                "family_id": family.id,
                "name_verified": False,
                **self._stamps(),
            }
            self.tally.mark("patients", chart_id, CREATED)
            return True
        changed = apply_values(patient, self._keep_approved_name(patient, values))
        if changed:
            patient.updated_at = self.now
        if {"first_name", "middle_name", "last_name"} & set(changed):
            # A new name has not been checked by a supervisor (SPEC §5, name fixes).
            patient.name_verified = False
            assert patient.id is not None  # an updated patient was loaded from the database
            self.tally.renamed.append(patient.id)
        self.tally.mark("patients", chart_id, UPDATED if changed else UNCHANGED)
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

    def guardian(self, family: Family, row: _FamilyRow) -> bool:
        assert family.id is not None
        if row.guardian is None:
            return False
        key = (family.id, row.guardian["match_key"])
        if (pending := self.new_guardians.get(key)) is not None:
            pending.update(row.guardian)  # the last row wins, as for an existing guardian
            pending["has_portal_account"] |= row.has_account
            pending["language"] = row.language or pending["language"]
            return False
        guardian = self.guardians.find(
            family.id,
            row.guardian,
            lambda g: self.tally.outcome("guardians", (g.family_id, g.match_key)) is not None,
        )
        if guardian is None:
            self.new_guardians[key] = {
                **row.guardian,
                "family_id": family.id,
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
        for model, rows in ((Patient, self.new_patients), (Guardian, self.new_guardians)):
            if rows:
                self.session.execute(insert(model), list(rows.values()))

    def _stamps(self) -> dict[str, datetime]:
        return {"created_at": self.now, "updated_at": self.now}


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
