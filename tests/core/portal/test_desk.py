"""The portal API's core without HTTP: every failure kind does the same work (the same SQL
statements, no scrypt), pre-API PINs keep working, and a redemption is live everywhere staff
look (the digest, the Home tab's figures, the adoption report)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.config import load_settings
from bot.db import Database
from bot.delivery.worker import Outbox
from bot.portal import throttle
from bot.portal.answers import Attempt, NoMatch, Unauthorized
from bot.portal.clients import revoke_client
from bot.portal.desk import PortalDesk
from bot.reminders.digest import Section, build_digest
from bot.reports.adoption import build_report
from bot.reports.workload import measure_workload
from bot.services import Services
from handlers.notices import render_notice
from models import Pin, PinStatus, PortalThrottle, utcnow
from tests.support.factories import make_family, make_patient
from tests.support.portal import IssuedPin, add_pin, new_key

DOB = date(2021, 3, 3)


@pytest.fixture
def services(database: Database, database_url: str) -> Services:
    settings = load_settings({"DATABASE_URL": database_url})
    outbox = Outbox(database, settings, slack=None, render_notice=render_notice)  # type: ignore[arg-type]
    return Services(settings=settings, database=database, outbox=outbox)


@pytest.fixture
def desk(services: Services) -> PortalDesk:
    return PortalDesk(services)


def _pin(services: Services, first: str, **options: object) -> IssuedPin:
    with services.database.transaction() as session:
        family = make_family(session, f"D-{first}")
        patient = make_patient(session, family, first, DOB)
        return add_pin(session, services, patient, **options)  # type: ignore[arg-type]


@pytest.fixture
def key(services: Services) -> str:
    """A live API client's key, as a request presents it."""
    return new_key(services)


@pytest.fixture
def counted(database: Database) -> Iterator[list[str]]:
    """Every SQL statement sent, and every scrypt run (as the word "scrypt")."""
    seen: list[str] = []

    def on_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    real_scrypt = hashlib.scrypt

    def scrypt(*args: object, **kwargs: object) -> bytes:
        seen.append("scrypt")
        return real_scrypt(*args, **kwargs)  # type: ignore[arg-type]

    event.listen(database.engine, "before_cursor_execute", on_execute)
    hashlib.scrypt = scrypt  # type: ignore[assignment]
    try:
        yield seen
    finally:
        hashlib.scrypt = real_scrypt
        event.remove(database.engine, "before_cursor_execute", on_execute)


def test_every_failure_kind_does_the_same_work(
    services: Services, desk: PortalDesk, key: str, counted: list[str]
) -> None:
    past = utcnow() - timedelta(days=1)
    attempts = {
        "unknown": Attempt(pin="ZZZZ-ZZZZ", dob=DOB, client_ip="192.0.2.1"),
        "wrong_dob": Attempt(pin=_pin(services, "Ann").pin, dob=DOB + timedelta(days=1)),
        "expired": Attempt(pin=_pin(services, "Bea", expires_at=past).pin, dob=DOB),
        "revoked": Attempt(pin=_pin(services, "Cal", status=PinStatus.REVOKED).pin, dob=DOB),
        "locked": Attempt(pin=_pin(services, "Dot", status=PinStatus.LOCKED).pin, dob=DOB),
        "before": Attempt(pin=_pin(services, "Eve", status=PinStatus.REGISTERED).pin, dob=DOB),
        # Redeemed through the API: a verify of it fails like the rest, right DOB or not.
        "redeemed": Attempt(
            pin=_pin(services, "Fig", status=PinStatus.REGISTERED, portal_account_id="acct-1").pin,
            dob=DOB,
        ),
    }
    with pytest.raises(NoMatch):  # the key's first use is recorded: not part of any kind's work
        desk.verify(key, Attempt(pin="ZZZZ-ZZZZ", dob=DOB, client_ip="192.0.2.0"))
    work = {}
    for kind, attempt in attempts.items():
        counted.clear()
        with pytest.raises(NoMatch):
            desk.verify(key, Attempt(attempt.pin, attempt.dob, client_ip=f"192.0.2.{kind}"))
        work[kind] = list(counted)
    assert all("scrypt" not in statements for statements in work.values())
    assert len({tuple(statements) for statements in work.values()}) == 1, work


def test_a_pin_from_before_the_api_is_found_and_gets_its_lookup(
    services: Services, desk: PortalDesk, key: str, counted: list[str]
) -> None:
    old = _pin(services, "Fay", with_lookup=False)
    answer = desk.verify(key, Attempt(pin=old.pin, dob=DOB))
    assert answer.patient.first_name == "Fay"
    with services.database.read_session() as session:
        assert session.get(Pin, old.pin_id).lookup is not None  # type: ignore[union-attr]
    counted.clear()
    desk.verify(key, Attempt(pin=old.pin, dob=DOB))
    assert "scrypt" not in counted  # the seek finds it now, and the lookup is its identity
    with pytest.raises(NoMatch):  # a wrong DOB finds no candidate to check
        desk.verify(key, Attempt(pin=old.pin, dob=DOB + timedelta(days=2)))


def test_a_redemption_is_live_in_the_digest_home_tab_and_report(
    services: Services, desk: PortalDesk, key: str
) -> None:
    now = utcnow()
    issued = _pin(services, "Gus", issued_at=now - timedelta(days=8))
    tz = services.settings.timezone

    def unregistered() -> int:
        with services.database.read_session() as session:
            digest = build_digest(session, now=now, tz=tz)
            workload = measure_workload(session, now=now, settings=services.settings)
        sections = [s for s in digest.sections if s.section == Section.UNREGISTERED_PINS]
        listed = sum(len(s.entries) for s in sections)
        assert listed == workload.unregistered_pins
        return listed

    assert unregistered() == 1
    redeemed = desk.redeem(key, Attempt(pin=issued.pin, dob=DOB), "acct-G")
    assert redeemed.first_use
    assert unregistered() == 0
    with services.database.read_session() as session:
        report = build_report(session, now=now, tz=tz, practice_name="Test")
        pin = session.exec(select(Pin).where(Pin.id == issued.pin_id)).one()
    assert sum(week.registered for week in report.weeks) == 1
    assert pin.status == PinStatus.REGISTERED and pin.portal_account_id == "acct-G"


def test_quiet_sources_are_forgotten_and_clients_kept(
    services: Services, desk: PortalDesk, key: str
) -> None:
    for n in range(3):
        with pytest.raises(NoMatch):
            desk.verify(key, Attempt(pin="ZZZZ-ZZZZ", dob=DOB, client_ip=f"192.0.2.{n}"))
    with services.database.transaction() as session:
        assert throttle.prune(session, utcnow()) == 0  # still within their window
    later = utcnow() + throttle.PRUNE_AFTER + timedelta(minutes=1)
    with services.database.transaction() as session:
        assert throttle.prune(session, later) == 3
    with services.database.read_session() as session:
        assert [r.subject for r in session.exec(select(PortalThrottle)).all()] == ["client:1"]


def test_only_a_live_clients_key_is_judged(
    services: Services, desk: PortalDesk, key: str, counted: list[str]
) -> None:
    issued = _pin(services, "Hal")
    with services.database.transaction() as session:
        revoke_client(session, name="portal", now=utcnow())
    for presented in (key, "pinbot_not-a-key"):
        counted.clear()
        with pytest.raises(Unauthorized):
            desk.verify(presented, Attempt(pin=issued.pin, dob=DOB))
        # The one read statement (whose PIN part a key that matches no live client never
        # reaches), no write, no scrypt.
        assert len(counted) == 1 and "portalclient" in counted[0]
        assert "scrypt" not in counted


# What a failed attempt sends, judged by the mechanism (not timed): one read statement outside
# any transaction (PostgreSQL: autocommit, no BEGIN or COMMIT), then one write transaction —
# the counters taken under their lock, then the rest in one statement on PostgreSQL (three
# plain ones on SQLite, in process). On PostgreSQL each statement is a round trip, so one
# creeping back costs every failure of a guessing load (bench/RESULTS.md, issue 18, third pass).
FAILURE_STATEMENTS = {
    "sqlite": ["SELECT", "BEGIN IMMEDIATE", "INSERT", "UPDATE", "UPDATE", "INSERT"],
    "postgresql": ["SELECT", "INSERT", "WITH"],
}


def test_a_failed_attempt_sends_few_statements(
    services: Services, desk: PortalDesk, key: str, database: Database
) -> None:
    wrong_dob = _pin(services, "Ida").pin
    attempts = [
        Attempt(pin="ZZZZ-ZZZZ", dob=DOB, client_ip="192.0.2.1"),
        Attempt(pin=wrong_dob, dob=DOB + timedelta(days=1), client_ip="192.0.2.2"),
    ]
    with pytest.raises(NoMatch):  # the key's first use is recorded: not part of a failure's work
        desk.verify(key, Attempt(pin="ZZZZ-ZZZZ", dob=DOB, client_ip="192.0.2.0"))
    sent: list[tuple[str, bool]] = []

    def on_execute(conn: Any, _cursor: object, statement: str, *_args: object) -> None:
        words = statement.split()
        verb = " ".join(words[:2]) if words[:2] == ["BEGIN", "IMMEDIATE"] else words[0]
        autocommit = getattr(conn.connection.driver_connection, "autocommit", False)
        sent.append((verb, autocommit is True))

    event.listen(database.engine, "before_cursor_execute", on_execute)
    try:
        for attempt in attempts:
            for call in (desk.verify, lambda key, attempt: desk.redeem(key, attempt, "acct-I")):
                sent.clear()
                with pytest.raises(NoMatch):
                    call(key, attempt)
                dialect = database.engine.dialect.name
                assert [verb for verb, _ in sent] == FAILURE_STATEMENTS[dialect]
                if dialect == "postgresql":  # the read outside a transaction, the rest in one
                    assert [autocommit for _, autocommit in sent] == [True, False, False]
    finally:
        event.remove(database.engine, "before_cursor_execute", on_execute)
