"""The family behind the card (`load_family`) on SQLite and PostgreSQL: children by date of
birth with their PIN state and pending name fixes, guardians in the order they were added,
all in one statement. Records are synthetic."""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pytest
from sqlalchemy import event

from bot.db import Database
from bot.errors import NotFound
from bot.families.record import load_family
from models import NameFix, PinStatus, utcnow
from tests.support.factories import make_family, make_guardian, make_patient, make_pin

TODAY = date(2026, 12, 1)


@pytest.fixture
def family_id(database: Database) -> int:
    """The Thistlewaites: a newborn added before her brother (ids out of birth order), a PIN
    that expired and a newer one for him, a name fix waiting for her; two guardians, the
    second with a portal account and Spanish letters."""
    with database.transaction() as session:
        family = make_family(session, "TW-3001")
        make_guardian(session, family, "Dana", "Thistlewaite")
        make_guardian(
            session,
            family,
            "Sol",
            "Thistlewaite",
            email=None,
            phone=None,
            relationship="father",
            has_portal_account=True,
        ).language = "es"
        baby = make_patient(
            session, family, "Baby Girl", date(2026, 11, 20), last="Thistlewaite", name_type="NB"
        )
        brother = make_patient(session, family, "Owen", date(2019, 5, 4), last="Thistlewaite")
        now = utcnow()
        make_pin(session, brother, now - timedelta(days=400), status=PinStatus.EXPIRED)
        make_pin(session, brother, now, expires_at=now + timedelta(days=30))
        session.add(
            NameFix(
                patient_id=baby.id or 0,
                family_id=family.id or 0,
                proposed_first="Wren",
                proposed_last="Thistlewaite",
                confirmed_by="birth_certificate",
                requested_by="U0STAFF01",
            )
        )
        return family.id or 0


def test_the_family_in_one_statement(database: Database, family_id: int) -> None:
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        with database.read_session() as session:
            family = load_family(session, family_id, today=TODAY, zone=UTC, minor_age_limit=18)
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1

    assert (family.account_number, family.surname) == ("TW-3001", "Thistlewaite")
    owen, baby = family.children
    assert (owen.first_name, owen.age_label, owen.pin_status) == ("Owen", "7 y", "active")
    assert owen.pin_expires == owen.pin_since + timedelta(days=30)  # the newer PIN's
    assert not owen.pending_name_fix and owen.eligible
    assert (baby.full_name, baby.age_label, baby.pin_status) == (
        "Baby Girl Thistlewaite",
        "11 d",
        "none",
    )
    assert baby.pending_name_fix and baby.name_flag and not baby.eligible
    dana, sol = family.guardians
    assert (dana.name, dana.relationship, dana.has_email, dana.has_portal_account) == (
        "Dana Thistlewaite",
        "mother",
        True,
        False,
    )
    assert dana.masked_email != "dana.testwood@example.com" and dana.masked_phone
    assert (sol.name, sol.relationship, sol.has_email, sol.masked_phone) == (
        "Sol Thistlewaite",
        "father",
        False,
        "—",
    )
    assert sol.has_portal_account is True and sol.language == "es" and dana.language is None


def test_a_family_without_children_is_named_after_its_guardians(database: Database) -> None:
    with database.transaction() as session:
        family = make_family(session, "TW-3002")
        make_guardian(session, family, "Ira", "Marlowe")
    with database.read_session() as session:
        record = load_family(session, family.id or 0, today=TODAY, zone=UTC, minor_age_limit=18)
    assert (record.surname, record.children, [g.name for g in record.guardians]) == (
        "Marlowe",
        (),
        ["Ira Marlowe"],
    )


def test_a_family_that_is_gone(database: Database) -> None:
    with database.read_session() as session, pytest.raises(NotFound):
        load_family(session, 424242, today=TODAY, zone=UTC, minor_age_limit=18)
