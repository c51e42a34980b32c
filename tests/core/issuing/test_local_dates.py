"""Every date a person reads is the practice's date, and a PIN works through the whole of its
printed expiry day: issued at 7:15 PM in New York (00:15 UTC the next day), on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import Session, select

from bot.clock import Clock, last_valid_day, local_midnight
from bot.db import Database
from bot.delivery.sealing import PinCipher, open_pins
from bot.families.record import load_family
from bot.issuing.gateway import BuiltinGateway, verify_patient_pin
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssuePolicy, IssueRequest, IssueResult
from bot.reminders.digest import Section, build_digest
from bot.reminders.sweep import mark_expired_pins
from bot.secret import Secret
from models import Family, Guardian, OutgoingWork, Patient, Pin, PinStatus, WorkKind
from tests.support.factories import make_family, make_guardian, make_patient

NEW_YORK = ZoneInfo("America/New_York")
EVENING = datetime(2026, 12, 6, 19, 15, tzinfo=NEW_YORK)  # 2026-12-07 00:15 UTC
LOCAL_TODAY, UTC_TODAY = date(2026, 12, 6), date(2026, 12, 7)
PRINTED_EXPIRY = date(2027, 3, 6)  # 90 days after the local issue date


def _policy(now: datetime) -> IssuePolicy:
    clock = Clock(NEW_YORK, lambda: now.astimezone(UTC))
    return IssuePolicy(
        now=clock(),
        today=clock.today(),
        pin_ttl_days=90,
        minor_age_limit=18,
        timezone=NEW_YORK,
        pin_cipher=CIPHER,
    )


def _issue(
    session: Session, family: Family, guardian: Guardian, child: Patient, *, at: datetime
) -> IssueResult:
    """One child's PIN, emailed to `guardian`, issued at the local moment `at`."""
    request = IssueRequest(
        family_id=family.id or 0,
        patient_ids=(child.id or 0,),
        recipient_guardian_id=guardian.id,
        emailed_patient_id=None,
        issued_by="U0STAFF",
        idempotency_key=f"view:{family.account_number}",
        channel_id="C0FRONT",
        thread_ts="1700000000.000100",
    )
    return issue_pins(session, request, policy=_policy(at), gateway=BuiltinGateway())


@pytest.fixture
def issued(database: Database) -> dict[str, object]:
    with database.transaction() as session:
        family = make_family(session, "TZ-1")
        mother = make_guardian(session, family, email="lan.nguyen@example.com")
        child = make_patient(session, family, "Łukasz", date(2019, 5, 1), last="Nguyễn")
        _issue(session, family, mother, child, at=EVENING)
    return {"family": family.id, "child": child.id, "chart": child.chart_id, "dob": child.dob}


CIPHER = PinCipher(Secret.ephemeral())


def _payload(database: Database, kind: WorkKind) -> dict:  # type: ignore[type-arg]
    with database.read_session() as session:
        work = session.exec(select(OutgoingWork).where(OutgoingWork.kind == kind)).one()
        return open_pins(json.loads(work.payload), CIPHER, work.dedupe_key)


def test_the_zone_really_differs_at_that_moment() -> None:
    assert EVENING.astimezone(UTC).date() == UTC_TODAY != LOCAL_TODAY


def test_letters_and_email_carry_the_local_issue_and_expiry_dates(
    database: Database, issued: dict[str, object]
) -> None:
    (letter,) = _payload(database, WorkKind.LETTERS_UPLOAD)["letters"]
    assert letter["issued_on"] == LOCAL_TODAY.isoformat()
    assert letter["expires_on"] == PRINTED_EXPIRY.isoformat()
    assert _payload(database, WorkKind.WELCOME_EMAIL)["expires_on"] == PRINTED_EXPIRY.isoformat()


def test_the_pin_expires_at_the_end_of_its_printed_local_day(
    database: Database, issued: dict[str, object]
) -> None:
    with database.read_session() as session:
        pin = session.exec(select(Pin)).one()
    # Midnight at the end of 03/06 in New York (EST, UTC-5) is 05:00 UTC on 03/07.
    assert pin.expires_at == datetime(2027, 3, 7, 5, 0, tzinfo=UTC)
    assert last_valid_day(pin.expires_at, NEW_YORK) == PRINTED_EXPIRY


def test_the_card_shows_local_dates(database: Database, issued: dict[str, object]) -> None:
    with database.read_session() as session:
        family = load_family(
            session, int(issued["family"]), today=LOCAL_TODAY, zone=NEW_YORK, minor_age_limit=18
        )
    (child,) = family.children
    assert child.pin_since == LOCAL_TODAY and child.pin_expires == PRINTED_EXPIRY


@pytest.mark.parametrize(
    ("local_moment", "works"),
    [
        (datetime(2027, 3, 6, 23, 59, tzinfo=NEW_YORK), True),  # late on the printed day
        (datetime(2027, 3, 7, 0, 1, tzinfo=NEW_YORK), False),  # the day after
    ],
)
def test_verification_and_the_expired_status_follow_the_printed_day(
    database: Database, issued: dict[str, object], local_moment: datetime, works: bool
) -> None:
    (letter,) = _payload(database, WorkKind.LETTERS_UPLOAD)["letters"]
    with time_machine.travel(local_moment, tick=False):
        with database.read_session() as session:
            chart, dob = str(issued["chart"]), issued["dob"]
            assert (
                verify_patient_pin(session, chart_id=chart, dob=dob, typed=letter["pin"]) is works
            )
            family = load_family(
                session,
                int(issued["family"]),
                today=local_moment.date(),
                zone=NEW_YORK,
                minor_age_limit=18,
            )
        assert family.children[0].pin_status == (PinStatus.ACTIVE if works else PinStatus.EXPIRED)
        with database.transaction() as session:
            assert mark_expired_pins(session, local_moment.astimezone(UTC)) == (0 if works else 1)


def _digest_lines(database: Database, now: datetime) -> list[str]:
    with database.read_session() as session:
        digest = build_digest(session, now=now.astimezone(UTC), tz=NEW_YORK)
    return [entry.needed for entry in digest.entries(Section.EXPIRING_PINS)]


def test_the_digest_lists_it_as_expiring_on_its_printed_day(
    database: Database, issued: dict[str, object]
) -> None:
    week_before = datetime(2027, 2, 27, 8, 0, tzinfo=NEW_YORK)  # the last day is 7 days away
    (line,) = _digest_lines(database, week_before)
    assert line.startswith("PIN expires Sat 03/06,")
    assert _digest_lines(database, week_before - timedelta(days=1)) == []


def test_a_local_day_ends_at_local_midnight_across_daylight_saving_time() -> None:
    # 03/14/2027 is the day New York springs forward: the day still ends at local midnight.
    assert local_midnight(date(2027, 3, 15), NEW_YORK) == datetime(2027, 3, 15, 4, 0, tzinfo=UTC)
    assert local_midnight(date(2027, 3, 14), NEW_YORK) == datetime(2027, 3, 14, 5, 0, tzinfo=UTC)


def test_the_earlier_welcome_emails_date_in_the_note_is_local(
    database: Database, issued: dict[str, object]
) -> None:
    with database.transaction() as session:
        other = make_family(session, "TZ-2")  # a second household, the same mother
        mother = make_guardian(session, other, email="lan.nguyen@example.com")
        child = make_patient(session, other, "Mai", date(2021, 2, 3), last="Trần")
        result = _issue(session, other, mother, child, at=EVENING + timedelta(minutes=5))
    assert result.account_note is not None
    assert "already went to this address on 12/06/2026" in result.account_note
