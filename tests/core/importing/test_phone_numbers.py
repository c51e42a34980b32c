"""Guardian phone numbers in the families CSV: a number short of its digits ("555-201-44", a
typo) is left out with a warning on its line (the patient is still imported, as the feed does
with a bad contact detail); every way an EHR writes a full number is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.db import Database
from bot.importing.importer import FAMILY_COLUMNS, import_families
from bot.text import is_full_phone_number
from models import Guardian

ACCEPTED = [
    "(555) 201-4455",
    "555-201-4455",
    "555.201.4455",
    "5552014455",
    "+1 555 201 4455",
    "1-555-201-4455",
    "555-201-4455 x204",
    "(555) 201-4455 ext. 12",
    "+44 20 7946 0958",
]
REFUSED = ["555-201-44", "201-4455", "55-201-4455", "555-201-44556", "+1 555 201 445", "+44 12"]


@pytest.mark.parametrize("number", ACCEPTED)
def test_full_numbers_are_accepted(number: str) -> None:
    assert is_full_phone_number(number)


@pytest.mark.parametrize("number", REFUSED)
def test_numbers_short_or_long_of_their_digits_are_refused(number: str) -> None:
    assert not is_full_phone_number(number)


def test_the_import_leaves_out_555_201_44_and_says_so_on_its_line(
    database: Database, tmp_path: Path
) -> None:
    values = {
        "account_number": "A9001",
        "patient_id": "MRN9001",
        "patient_first_name": "Wren",
        "patient_last_name": "Ashcombe",
        "patient_dob": "2019-04-02",
        "patient_sex": "F",
        "guardian_first_name": "Tamsin",
        "guardian_last_name": "Ashcombe",
        "guardian_relationship": "Mother",
        "guardian_phone": "555-201-44",
        "guardian_has_portal_account": "no",
    }
    csv = tmp_path / "families.csv"
    header = ",".join(FAMILY_COLUMNS)
    csv.write_text(f"{header}\n{','.join(values.get(c, '') for c in FAMILY_COLUMNS)}\n")

    report = import_families(database, csv)

    assert report.written and report.problems == []
    assert report.warnings == ["line 2: guardian_phone is not a phone number; imported without it"]
    with database.read_session() as session:
        [guardian] = session.exec(select(Guardian)).all()
    assert (guardian.phone, guardian.phone_digits) == (None, None)
