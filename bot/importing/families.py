"""Importing the families file (SPEC §4): families, patients and guardians, one row per
patient-guardian pair. Keyed by account_number, patient_id and guardian email (or name);
existing records are updated in place, new ones inserted in bulk."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from sqlalchemy import bindparam, insert, union_all
from sqlmodel import Session, col, select

from bot.db import table_of
from bot.importing.base import (
    CREATED,
    ENTITY_OUTCOMES,
    UNCHANGED,
    UPDATED,
    Importer,
    Problems,
    StoredPatient,
    Tally,
    chart_accounts,
)
from bot.importing.family_chunk import FamilyChunk, FamilyRow, Stored, insert_rows
from bot.importing.fields import Fields
from bot.text import fold, normalized_email, phone_digits
from models import Family, Patient, utcnow

_HAS_CHART = col(Patient.chart_id).in_(bindparam("charts", expanding=True))
# Built once (building it cost more than running it, on the feed's path): the families of the
# accounts and of the charts, as a UNION of two index look-ups (an OR would scan every family).
_STORED = (
    select(Family, Patient)
    .outerjoin(Patient, (col(Patient.family_id) == Family.id) & _HAS_CHART)
    .where(
        col(Family.id).in_(
            union_all(
                select(Family.id).where(
                    col(Family.account_number).in_(bindparam("accounts", expanding=True))
                ),
                select(Patient.family_id).where(_HAS_CHART),
            )
        )
    )
)

_INSERT_FAMILIES = insert(table_of(Family)).returning(col(Family.account_number), col(Family.id))

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
# A contact column left out as malformed -> the Guardian columns that keep their stored value.
_LEFT_OUT = {"guardian_email": "email", "guardian_phone": "phone"}
# The conflict a chart under another account is; the feed names its account field for it.
ACCOUNT_CONFLICT = "patient_id is already in the database under another account_number"


class FamiliesImporter(Importer[FamilyRow]):
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

    def parse(self, fields: Fields) -> FamilyRow:
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
        guardian = None if no_guardian else _guardian_values(fields)
        return FamilyRow(
            fields.text("account_number", 64),
            patient,
            guardian,
            fields.flag("guardian_has_portal_account"),
            fields.language("guardian_language"),
            frozenset(_LEFT_OUT[column] for column in fields.left_out),
        )

    def check(self, session: Session, rows: list[tuple[int, FamilyRow]]) -> Problems:
        stored = chart_accounts(session, (row.patient["chart_id"] for _, row in rows))
        return self.conflicts(rows, stored)

    def conflicts(self, rows: list[tuple[int, FamilyRow]], stored: dict[str, str]) -> Problems:
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
            (line, ACCOUNT_CONFLICT)
            for line, row in rows
            if stored.get(row.patient["chart_id"], row.account) != row.account
        ]
        return problems

    def load(self, session: Session, rows: list[FamilyRow]) -> Stored:
        """In one query: the families of the rows' accounts and of their stored patients
        (under another account, a conflict), each with those of the rows' patients it has."""
        params = {
            "charts": sorted({row.patient["chart_id"] for row in rows}),
            "accounts": sorted({row.account for row in rows}),
        }
        patients, families = {}, {}
        for family, patient in session.execute(_STORED, params):
            families[family.account_number] = family
            if patient is not None:
                patients[patient.chart_id] = patient
        return Stored(patients, families)

    def write(self, session: Session, rows: list[FamilyRow], tally: Tally) -> None:
        self.write_loaded(session, rows, tally, self.load(session, rows))

    def write_loaded(
        self, session: Session, rows: list[FamilyRow], tally: Tally, stored: Stored
    ) -> dict[str, StoredPatient]:
        """Write `rows`, given what `load` read for them in this session: the rows' patients
        as written, by chart id."""
        accounts = {row.account for row in rows}
        new = accounts - stored.families.keys()
        family_ids = {account: stored.families[account].id or 0 for account in accounts - new}
        # A family this chunk creates has no guardians yet: no need to look for them.
        chunk = FamilyChunk(session, stored.patients, list(family_ids.values()), tally)
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
        inserted = insert_rows(
            session,
            _INSERT_FAMILIES,
            [{"account_number": a, "created_at": now, "updated_at": now} for a in accounts],
        )
        return {row.account_number: row.id for row in inserted}


def _guardian_values(fields: Fields) -> dict[str, Any]:
    first, last = fields.text("guardian_first_name"), fields.text("guardian_last_name")
    email, phone = fields.contact("guardian_email"), fields.contact("guardian_phone")
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
