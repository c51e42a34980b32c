"""CSV import (SPEC §4) and the demo practice, on SQLite and PostgreSQL. Fixtures are synthetic."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

import bot.importing.importer
from bot.db import Database
from bot.importing.demo import build_practice, demo_hints, load_demo
from bot.importing.importer import (
    ImportReport,
    import_appointments,
    import_families,
    import_registrations,
)
from models import Appointment, AuditEvent, Family, Guardian, IssueBatch, Patient, Pin, PinStatus
from tests.support.paths import DATA_DIR

DATA = DATA_DIR
GOOD = DATA / "families_good.csv"
GOOD_COUNTS = {
    "families": {"created": 3, "updated": 0, "unchanged": 0},
    "patients": {"created": 4, "updated": 0, "unchanged": 0},
    "guardians": {"created": 4, "updated": 0, "unchanged": 0},
}
ALL_UNCHANGED = {
    "families": {"created": 0, "updated": 0, "unchanged": 3},
    "patients": {"created": 0, "updated": 0, "unchanged": 4},
    "guardians": {"created": 0, "updated": 0, "unchanged": 4},
}


def row_counts(database: Database) -> dict[str, int]:
    with database.read_session() as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


def edited(path: Path, *replacements: tuple[str, str]) -> io.StringIO:
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return io.StringIO(text)


def patient(session: Session, chart_id: str) -> Patient:
    return session.exec(select(Patient).where(Patient.chart_id == chart_id)).one()


def guardian(session: Session, first_name: str) -> Guardian:
    return session.exec(select(Guardian).where(Guardian.first_name == first_name)).one()


# --------------------------------------------------------------------------- families


def test_good_file_imports_with_counts_and_search_keys(database: Database) -> None:
    report = import_families(database, GOOD)

    assert report.ok and report.written and not report.fatal
    assert (report.rows_read, report.rows_written) == (6, 6)
    assert report.counts == GOOD_COUNTS
    assert report.renamed_patient_ids == []
    counts = row_counts(database)
    assert (counts["family"], counts["patient"], counts["guardian"]) == (3, 4, 4)
    with database.read_session() as session:
        ada, bram, baby = (patient(session, c) for c in ("P1001", "P1002", "P2001"))
        assert (ada.first_name, ada.middle_name, ada.first_key, ada.last_key) == (
            "Ada",
            "Grace",
            "ada",
            "testwood",
        )
        assert ada.dob == date(2015, 3, 14) and bram.dob == date(2018, 3, 2)  # both formats
        assert ada.family_id == bram.family_id != baby.family_id
        assert (baby.first_name, baby.name_type, baby.name_verified) == ("Baby Girl", "NB", False)
        marla, opal, hank = (guardian(session, n) for n in ("Marla", "Opal", "Hank"))
        assert (marla.match_key, marla.phone, marla.phone_digits) == (
            "marla.testwood@example.com",
            "(555) 010-0101",
            "5550100101",
        )
        assert (opal.has_portal_account, opal.phone_digits) == (True, "5550100103")
        assert (hank.email, hank.match_key, hank.has_portal_account) == (
            None,
            "name:hank nomailer",
            False,
        )
    assert "families: 3 created, 0 updated, 0 unchanged" in "\n".join(report.summary_lines())


def test_bad_file_lists_every_problem_and_writes_nothing(database: Database) -> None:
    report = import_families(database, DATA / "families_bad.csv")

    assert not report.ok and not report.written
    assert report.problems == [
        (3, "patient_first_name is empty"),
        (3, "patient_dob is not a date (use YYYY-MM-DD or MM/DD/YYYY)"),
        # A malformed email (line 3) or phone (line 6) is left out, not a problem.
        (3, "guardian_has_portal_account must be yes or no (got 'maybe')"),
        (5, "patient_id is also on line 2 under a different account_number"),
        (6, "patient_dob is in the future"),
        (7, "patient_dob is before 1900"),
        (8, "has 6 fields but the header has 14"),
        # Line 9 starts a record whose quoted name spans two lines; the next record is line 11.
        (11, "guardian_has_portal_account must be yes or no (got 'perhaps')"),
    ]
    assert report.rows_read == 8 and report.rows_written == 0
    # Nothing but the audit record of the refused run.
    assert {name: n for name, n in row_counts(database).items() if n} == {"auditevent": 1}
    lines = report.summary_lines()
    assert "8 problems, so nothing was written" in lines[1]
    assert "  line 11: guardian_has_portal_account must be yes or no (got 'perhaps')" in lines


def test_skip_invalid_writes_the_good_rows_and_lists_the_rest(database: Database) -> None:
    report = import_families(database, DATA / "families_bad.csv", skip_invalid=True)

    assert report.written and not report.ok
    assert len(report.problems) == 8 and report.rows_written == 2
    assert report.counts["patients"] == {"created": 2, "updated": 0, "unchanged": 0}
    with database.read_session() as session:
        assert patient(session, "P8001").last_name == "Line Name"  # whitespace collapsed
        families = session.exec(select(Family.account_number)).all()
    assert sorted(families) == ["A100", "A800"]
    assert "8 problems; these rows were skipped:" in report.summary_lines()


def test_reimport_of_the_same_file_changes_nothing(database: Database) -> None:
    import_families(database, GOOD)
    with database.read_session() as session:
        before = session.exec(select(Patient.updated_at).order_by(Patient.id)).all()

    report = import_families(database, GOOD)

    assert report.counts == ALL_UNCHANGED and report.renamed_patient_ids == []
    with database.read_session() as session:
        assert session.exec(select(Patient.updated_at).order_by(Patient.id)).all() == before


def test_reimport_with_changes_updates_in_place(database: Database) -> None:
    import_families(database, GOOD)
    with database.transaction() as session:
        ada = patient(session, "P1001")
        ada.name_verified = True
        ada_id, marla_id = ada.id, guardian(session, "Marla").id

    report = import_families(
        database,
        edited(
            GOOD,
            ("Ada,Grace,Testwood", "Adeline,Grace,Testwood"),
            ("marla.testwood@example.com", "marla.t@example.com"),
            ("555.010.0102", "555-010-0199"),
            (
                "Opal,Sampleton,Mother,opal.sampleton@example.com,+1 555 010 0103,yes",
                "Opal,Sampleton,Mother,opal.sampleton@example.com,+1 555 010 0103,no",
            ),
        ),
    )

    assert report.counts == {
        "families": {"created": 0, "updated": 1, "unchanged": 2},
        "patients": {"created": 0, "updated": 1, "unchanged": 3},
        "guardians": {"created": 0, "updated": 2, "unchanged": 2},
    }
    assert report.renamed_patient_ids == [ada_id]
    assert row_counts(database)["guardian"] == 4  # a changed email is the same guardian
    with database.read_session() as session:
        ada = patient(session, "P1001")
        assert (ada.first_name, ada.first_key, ada.name_verified) == ("Adeline", "adeline", False)
        assert ada.updated_at > ada.created_at
        marla = guardian(session, "Marla")
        assert (marla.id, marla.email, marla.match_key) == (
            marla_id,
            "marla.t@example.com",
            "marla.t@example.com",
        )
        assert guardian(session, "Dirk").phone_digits == "5550100199"
        # "no" in a later export never clears a portal account the practice knows about.
        assert guardian(session, "Opal").has_portal_account is True
    assert "  1 patient renamed (their names need verifying again)" in report.summary_lines()


def test_an_email_added_later_updates_the_guardian_known_by_name(database: Database) -> None:
    import_families(database, GOOD)
    report = import_families(
        database, edited(GOOD, (",Grandfather,,", ",Grandfather,h@example.com,"))
    )

    assert report.counts["guardians"] == {"created": 0, "updated": 1, "unchanged": 3}
    with database.read_session() as session:
        assert guardian(session, "Hank").match_key == "h@example.com"


def test_a_row_with_a_bad_phone_imports_without_it_and_the_summary_lists_the_line(
    database: Database,
) -> None:
    import_families(database, GOOD)
    with database.read_session() as session:
        marla = guardian(session, "Marla")
        phone_before, email_before = marla.phone, marla.email
    assert phone_before and email_before
    text = edited(GOOD, (phone_before, "121111"), (email_before, "marla.at.example.com"))
    text.seek(0, io.SEEK_END)
    text.write(
        "A777,P7770,Nia,,Testbay,2019-05-06,F,,Oma,Testbay,Mother,oma@example.com,555-01,no\n"
    )
    text.seek(0)

    report = import_families(database, text)

    assert report.ok and report.written
    assert report.counts["patients"] == {"created": 1, "updated": 0, "unchanged": 4}
    with database.read_session() as session:
        marla = guardian(session, "Marla")
        oma = guardian(session, "Oma")
        assert patient(session, "P7770").first_name == "Nia"
    # A stored phone or email is kept; a new guardian comes without the bad one.
    assert (marla.phone, marla.email) == (phone_before, email_before)
    assert (oma.email, oma.phone, oma.phone_digits) == ("oma@example.com", None, None)
    lines = report.summary_lines()
    good_lines = GOOD.read_text(encoding="utf-8").splitlines()
    marla_line = 1 + next(n for n, line in enumerate(good_lines) if ",Marla," in line)
    assert (
        f"  warning: line {marla_line}: guardian_email is not an email address; imported without it"
    ) in lines
    assert (
        f"  warning: line {marla_line}: guardian_phone is not a phone number; imported without it"
    ) in lines
    last_line = len(good_lines) + 1
    assert (
        f"  warning: line {last_line}: guardian_phone is not a phone number; imported without it"
    ) in lines
    assert not any("121111" in line or "marla.at" in line for line in lines)


def test_small_chunks_give_the_same_result(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.importing.importer, "CHUNK_ROWS", 2)
    seen: list[int] = []
    totals: list[int] = []

    report = import_families(database, GOOD, progress=seen.append, on_total=totals.append)

    assert report.counts == GOOD_COUNTS
    assert seen == [2, 2, 2] and totals == [6]
    assert import_families(database, GOOD).counts == ALL_UNCHANGED


@pytest.mark.parametrize("name", ["families_semicolon_bom.csv", "families_cp1252.csv"])
def test_semicolons_bom_and_windows_1252(database: Database, name: str) -> None:
    report = import_families(database, DATA / name)

    assert report.ok, report.problems
    with database.read_session() as session:
        zoe = patient(session, "Q1001")
        assert (zoe.first_name, zoe.last_name, zoe.dob) == ("Zoë", "Peña", date(2016, 7, 4))
        assert (zoe.first_key, zoe.last_key) == ("zoe", "pena")
        assert patient(session, "Q1002").middle_name == "Ángel"
        assert guardian(session, "Inés").has_portal_account is True


def test_streams_text_and_bytes(database: Database) -> None:
    text = (DATA / "families_semicolon_bom.csv").read_text(encoding="utf-8-sig")
    assert import_families(database, io.StringIO(text)).ok
    raw = (DATA / "families_cp1252.csv").read_bytes()
    report = import_families(database, io.BytesIO(raw))
    assert report.counts["patients"] == {"created": 0, "updated": 0, "unchanged": 2}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("account_number,patient_id", "missing column(s): patient_first_name"),
        (
            "patient_id," + ",".join(bot.importing.importer.FAMILY_COLUMNS),
            "column(s) appear more than once: patient_id",
        ),
        (
            ",".join(bot.importing.importer.FAMILY_COLUMNS) + ",favourite_color",
            "unknown column(s): favourite_c",
        ),
    ],
)
def test_header_problems_stop_the_import_even_with_skip_invalid(
    database: Database, header: str, expected: str
) -> None:
    body = GOOD.read_text(encoding="utf-8").split("\n", 1)[1]
    report = import_families(database, io.StringIO(header + "\n" + body), skip_invalid=True)

    assert report.fatal and not report.written and len(report.problems) == 1
    line, message = report.problems[0]
    assert line == 1 and expected in message
    assert row_counts(database)["patient"] == 0
    assert report.summary_lines()[1] == "The file cannot be imported:"


def test_empty_unreadable_and_missing_files(database: Database, tmp_path: Path) -> None:
    assert import_families(database, io.StringIO("")).problems == [
        (1, "the file is empty: the first line must be the column names")
    ]
    garbage = GOOD.read_bytes() + b"A9,P9,\x81\x8d,,X,2015-01-01,F,,A,B,C,,,\n"
    assert import_families(database, io.BytesIO(garbage)).problems == [
        (8, "the file is not UTF-8 or Windows-1252 text")
    ]
    report = import_families(database, tmp_path / "nope.csv")
    assert report.fatal and report.problems[0][0] == 0
    assert row_counts(database)["family"] == 0


def test_patient_under_another_family_is_refused(database: Database) -> None:
    import_families(database, GOOD)
    report = import_families(database, edited(GOOD, ("A300,P3001", "A999,P1001")))

    assert report.problems == [
        (7, "patient_id is also on line 2 under a different account_number"),
        (7, "patient_id is already in the database under another account_number"),
    ]
    header, *rows = GOOD.read_text(encoding="utf-8").splitlines()
    moved = rows[-1].replace("A300,P3001", "A999,P1001")
    assert import_families(database, io.StringIO(f"{header}\n{moved}\n")).problems == [
        (2, "patient_id is already in the database under another account_number")
    ]


def test_same_patient_with_different_details_in_one_file(database: Database) -> None:
    report = import_families(
        database,
        edited(
            GOOD,
            (
                "A100,P1001,Ada,Grace,Testwood,2015-03-14,F,,Dirk",
                "A100,P1001,Ada,Grace,Testwood,2015-03-15,F,,Dirk",
            ),
        ),
    )

    assert report.problems == [
        (3, "patient_id is also on line 2 with a different name, date of birth, sex or name_type")
    ]
    assert row_counts(database)["patient"] == 0


def test_one_audit_event_per_run_without_names(database: Database) -> None:
    import_families(database, GOOD, actor="U0TEST")
    import_families(database, DATA / "families_bad.csv")

    with database.read_session() as session:
        events = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.actor, e.action) for e in events] == [
        ("U0TEST", "import.families"),
        ("cli", "import.families"),
    ]
    first, second = (json.loads(e.details) for e in events)
    assert first["outcome"] == "imported" and first["counts"] == GOOD_COUNTS
    # Line 5 now also clashes with the stored P1001: 8 problems in the file + 1.
    assert second["outcome"] == "rejected" and second["problems"] == 9
    assert not any(name in events[0].details for name in ("Testwood", "Ada", "example.com"))


# --------------------------------------------------------------------------- appointments


def test_appointments_import_and_reimport(database: Database) -> None:
    import_families(database, GOOD)
    report = import_appointments(database, DATA / "appointments_good.csv")

    assert report.ok and report.counts == {
        "appointments": {"created": 3, "updated": 0, "unchanged": 0}
    }
    with database.read_session() as session:
        starts = session.exec(select(Appointment.starts_at).order_by(Appointment.starts_at)).all()
    assert starts == [
        datetime(2030, 1, 15, 9, 30),
        datetime(2030, 1, 15, 10, 0),
        datetime(2030, 1, 16, 8, 15),
    ]  # naive local wall-clock time

    again = import_appointments(
        database,
        edited(DATA / "appointments_good.csv", ("10:00,Dr. Placeholder", "10:00,Dr. Example")),
    )
    assert again.counts == {"appointments": {"created": 0, "updated": 1, "unchanged": 2}}


def test_appointment_offsets_convert_to_the_practice_zone(database: Database) -> None:
    import_families(database, GOOD)
    import_appointments(
        database, DATA / "appointments_good.csv", timezone=ZoneInfo("America/Chicago")
    )
    with database.read_session() as session:
        baby = patient(session, "P2001")
        appointment = session.exec(
            select(Appointment).where(Appointment.patient_id == baby.id)
        ).one()
    assert appointment.starts_at == datetime(2030, 1, 16, 7, 15)


def test_bad_appointments_are_listed_and_nothing_written(database: Database) -> None:
    import_families(database, GOOD)
    report = import_appointments(database, DATA / "appointments_bad.csv")

    assert [line for line, _ in report.problems] == [2, 3, 4]
    assert "patient_id is not in the database" in report.problems[1][1]
    assert row_counts(database)["appointment"] == 0


# --------------------------------------------------------------------------- registrations


def issue_pin(session: Session, chart_id: str, issued_at: datetime) -> Pin:
    child = patient(session, chart_id)
    batch = IssueBatch(
        family_id=child.family_id,
        idempotency_key=f"test-{chart_id}",
        issued_by="U0TEST",
        mode="print_only",
    )
    session.add(batch)
    session.flush()
    pin = Pin(
        patient_id=child.id,
        batch_id=batch.id,
        pin_hash="not-a-real-hash",
        delivery="printed",
        issued_by="U0TEST",
        issued_at=issued_at,
    )
    session.add(pin)
    return pin


def test_registrations_mark_active_pins_registered(database: Database) -> None:
    import_families(database, GOOD)
    with database.transaction() as session:
        issue_pin(session, "P1001", datetime(2026, 5, 1, tzinfo=UTC))
        # Issued after the registration date: that registration used an earlier PIN.
        issue_pin(session, "P1002", datetime(2026, 10, 1, tzinfo=UTC))

    report = import_registrations(database, DATA / "registrations.csv")

    assert report.ok and report.counts == {
        "registrations": {
            "registered": 1,
            "already registered": 0,
            "no active PIN": 1,
            "registered before the active PIN was issued": 1,
        }
    }
    with database.read_session() as session:
        pins = {p.patient_id: p for p in session.exec(select(Pin))}
        ada, bram = patient(session, "P1001"), patient(session, "P1002")
    assert pins[ada.id].status == PinStatus.REGISTERED
    assert pins[ada.id].status_changed_at == datetime(2026, 6, 1, tzinfo=UTC)  # the file's time
    assert pins[bram.id].status == PinStatus.ACTIVE
    again = import_registrations(database, DATA / "registrations.csv")
    assert again.counts["registrations"]["already registered"] == 1


def test_registration_problems(database: Database) -> None:
    import_families(database, GOOD)
    report = import_registrations(
        database,
        io.StringIO("patient_id,registered_at\nP404,2026-01-01\nP1001,2999-01-01\nP1001,soon\n"),
    )

    assert report.problems == [
        (2, "patient_id is not in the database (import the families file first)"),
        (3, "registered_at is in the future"),
        (4, "registered_at is not an ISO 8601 date and time (like 2025-03-14T09:30)"),
    ]


# --------------------------------------------------------------------------- demo


def test_demo_loads_the_advertised_cases(database: Database) -> None:
    report: ImportReport = load_demo(database)

    assert report.ok and report.written
    assert report.counts["families"]["created"] >= 24
    assert report.counts["appointments"]["created"] > 0
    today = date.today()
    with database.read_session() as session:
        babies = session.exec(select(Patient).where(Patient.first_name == "Baby Girl")).all()
        assert len(babies) == 1 and babies[0].name_type == "NB"
        assert session.exec(select(Guardian).where(Guardian.has_portal_account)).first()
        no_email = session.exec(select(Guardian).where(Guardian.email == None)).all()  # noqa: E711
        assert no_email
        adults = [p for p in session.exec(select(Patient)) if (today - p.dob).days >= 18 * 365.25]
        assert adults
        twins = session.exec(
            select(Patient.family_id, Patient.dob, func.count())
            .group_by(Patient.family_id, Patient.dob)
            .having(func.count() > 1)
        ).all()
        assert twins
        assert session.exec(
            select(Appointment).where(
                Appointment.starts_at >= datetime.combine(today, datetime.min.time())
            )
        ).first()
        emails = session.exec(select(Guardian.email)).all()
    assert all(e.endswith(("@example.com", "@example.org")) for e in emails if e)

    hints = "\n".join(demo_hints())
    surname = babies[0].last_name
    assert f"/family {surname}" in hints and f"Baby Girl {surname}" in hints
    assert load_demo(database).counts["patients"]["created"] == 0  # loading twice is harmless


def test_demo_is_deterministic() -> None:
    day = date(2026, 3, 2)
    first, second = build_practice(7, day), build_practice(7, day)
    assert first == second
    assert {f.role for f in first} >= {
        "siblings",
        "twins",
        "newborn",
        "portal account",
        "no email",
        "adult patient",
        "second household",
    }
