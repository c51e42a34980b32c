"""`pinbot demo`'s PIN history makes a chart worth looking at, from real parts (SQLite and
PostgreSQL): PINs over the last 12 weeks with real salted hashes, registrations recorded through
the registrations import, the showcase families left for staff to try."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlmodel import col, select

from bot.db import Database
from bot.importing.demo import DEFAULT_TZ, build_practice, load_demo
from bot.reports.adoption import build_report
from models import AuditEvent, Patient, Pin, PinStatus

TODAY = date(2026, 12, 2)


def test_twelve_weeks_of_pins_for_a_meaningful_chart(database: Database) -> None:
    load_demo(database, today=TODAY)
    now = datetime.combine(TODAY, time(12), tzinfo=DEFAULT_TZ)
    with database.read_session() as session:
        report = build_report(session, now=now, tz=DEFAULT_TZ, practice_name="Demo")
        pins = session.exec(select(Pin)).all()
        imported = session.exec(
            select(AuditEvent).where(col(AuditEvent.action).contains("registrations"))
        ).all()
        siblings = next(f for f in build_practice(today=TODAY) if f.role == "siblings")
        sibling_pins = session.exec(
            select(Pin).join(Patient, col(Pin.patient_id) == col(Patient.id))
            .where(col(Patient.chart_id).in_([c.chart_id for c in siblings.children]))
        ).all()  # fmt: skip

    full = report.weeks[:-1]
    assert sum(w.issued for w in full) >= 35
    assert sum(1 for w in full if w.issued) >= 10  # nearly every week has PINs
    assert report.totals.emailed and report.totals.printed
    assert report.rate is not None and 0.3 <= report.rate <= 0.95
    assert {p.status for p in pins} >= {PinStatus.ACTIVE, PinStatus.REGISTERED, PinStatus.REVOKED}
    assert all(p.pin_hash.startswith("scrypt$16384$") for p in pins)  # the gateway's hashes
    assert len({p.pin_hash for p in pins}) == len(pins)  # each salted
    assert imported, "registrations go through the registrations import"
    assert sibling_pins == []  # the family staff are told to issue PINs for


def test_loading_the_demo_again_adds_no_history(database: Database) -> None:
    load_demo(database, today=TODAY)
    with database.read_session() as session:
        before = len(session.exec(select(Pin.id)).all())
    load_demo(database, today=TODAY)
    with database.read_session() as session:
        assert len(session.exec(select(Pin.id)).all()) == before
