"""The Home tab's figure cache: staff opening the tab together cost one set of queries, and the
figures are never older than a minute of the services' clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from bot.reports.workload import CACHE_SECONDS, Workload, WorkloadCache

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
