"""The Home tab's figures: counted as the digest and the lists count them (on SQLite and
PostgreSQL), and cached: staff opening the tab together cost one set of queries, and the
figures are never older than a minute of the services' clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

from bot.db import Database
from bot.reminders import worklists
from bot.reminders.digest import Section, build_digest
from bot.reports.workload import CACHE_SECONDS, Workload, WorkloadCache, measure_workload
from models import NameFix, Patient
from tests.core.reminders.test_reminders import make_settings
from tests.support.factories import make_family, make_patient, make_pin

T0 = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)


def workload(n: int) -> Workload:
    return Workload(
        measured_at=T0, pending_name_fixes=n, no_portal_today=0, unregistered_pins=0,
        expiring_pins=0, registration_rate=None, rated_pins=0, rated_range=None,
        feed_configured=False, feed_last_message=None,
    )  # fmt: skip


def test_twenty_staff_opening_at_once_cost_one_load() -> None:
    cache, loads, start = WorkloadCache(), [], threading.Barrier(20)
    seen: list[Workload] = []

    def load() -> Workload:
        loads.append(1)
        time.sleep(0.05)  # a slow query set: the others must wait for it, not run their own
        return workload(len(loads))

    def open_tab() -> None:
        start.wait()
        seen.append(cache.get(T0, load))

    threads = [threading.Thread(target=open_tab) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(loads) == 1
    assert len(seen) == 20 and {w.pending_name_fixes for w in seen} == {1}


def test_figures_are_reloaded_after_a_minute_or_when_the_clock_goes_back() -> None:
    cache, loads = WorkloadCache(), []

    def load() -> Workload:
        loads.append(1)
        return workload(len(loads))

    assert cache.get(T0, load).pending_name_fixes == 1
    assert cache.get(T0 + timedelta(seconds=CACHE_SECONDS - 1), load).pending_name_fixes == 1
    assert cache.get(T0 + timedelta(seconds=CACHE_SECONDS), load).pending_name_fixes == 2
    assert cache.get(T0, load).pending_name_fixes == 3  # a clock set back: not trusted
    assert CACHE_SECONDS <= 60


def _fix(patient: Patient, requested_at: datetime) -> NameFix:
    return NameFix(patient_id=patient.id or 0, family_id=patient.family_id, proposed_first="Ada",
                   proposed_last="Okafor", confirmed_by="birth_certificate",
                   requested_by="U0STAFF01", requested_at=requested_at)  # fmt: skip


def test_a_merged_away_chart_is_not_counted_as_a_child_of_its_own(
    database: Database, database_url: str
) -> None:
    """A chart the EHR merged away (A40) keeps its history, and may gain a name fix from a
    card posted before the merge: the Home tab counts it no more than the digest and the
    lists show it. (Its active PINs are revoked by the merge; one is left here to show the
    PIN counts follow the same rule.)"""
    with database.transaction() as session:
        family = make_family(session, "MG-1001")
        kept = make_patient(session, family, "Chioma", date(2021, 7, 7), chart="MG-KEPT")
        gone = make_patient(session, family, "Chioma", date(2021, 7, 7), chart="MG-GONE")
        gone.merged_into_id = kept.id
        for patient in (kept, gone):
            session.add(_fix(patient, T0 - timedelta(days=3)))
            make_pin(session, patient, T0 - timedelta(days=10))
    settings = make_settings(database_url, "http://127.0.0.1:9")
    with database.read_session() as session:
        home = measure_workload(session, now=T0, settings=settings)
        digest = build_digest(session, now=T0, tz=settings.timezone)
        waiting = worklists.pending_name_fixes(session)
    listed = {part.section: len(part.entries) for part in digest.sections}
    assert (home.pending_name_fixes, home.unregistered_pins, home.expiring_pins) == (1, 1, 0)
    assert len(waiting) == home.pending_name_fixes
    assert listed.get(Section.UNREGISTERED_PINS, 0) == home.unregistered_pins
    assert listed.get(Section.EXPIRING_PINS, 0) == home.expiring_pins
