"""Adoption report and Home tab (issue 12): the report query at 250k patients / 100k PINs
(target p95 <= 200 ms), the chart render (<= 500 ms), and a Home tab open through the real Bolt
app until views.publish reaches the fake Slack (p95 <= 300 ms cold, <= 50 ms cached).

    python -m bench.report_bench            # 250k patients, 100k PINs (builds the store: minutes)
    python -m bench.report_bench --quick    # 10k patients, 4k PINs, fewer samples
    python -m bench.report_bench --stores sqlite

The practice comes from bench/stores.py (the real families import, cached); the PINs are
bulk-inserted into a working copy: one per patient, issued evenly over the last 52 weeks, 55 %
registered (1-40 days after issue), 10 % revoked, 10 % expired, the rest active, letters in
English (80 %), Spanish (15 %) or from before languages (5 %), written in the order they were
issued (as the bot writes them: a week's PINs sit together in the table). Their hashes are
placeholders: 100k scrypt hashes would take over an hour and the report never reads them.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlmodel import col

from bench import stores
from bench.generate import families_for_patients
from bench.procs import BenchSlack, slack_and_smtp
from bench.stats import Report, Result, Summary, timed
from bot.db import Database
from bot.reports.adoption import build_report
from bot.reports.chart import render_chart
from models import IssueBatch, Patient, Pin, PinStatus, utcnow
from tests.support.slack_requests import app_home_opened_event
from tests.support.stack import Stack, build_stack

TARGETS_MS = {"query_p95": 200.0, "chart_p95": 500.0, "home_cold_p95": 300.0,
              "home_cached_p95": 50.0}  # fmt: skip
# patients, PINs, query samples, chart samples, Home tab samples
SIZES = {
    "full": (250_000, 100_000, 50, 20, 40),
    "quick": (10_000, 4_000, 20, 5, 15),
    "tiny": (100, 40, 2, 1, 2),  # the smoke test: it runs, nothing more
}
CHUNK = 5_000
TZ = ZoneInfo("America/New_York")


def add_pins(database_url: str, count: int, *, now: datetime, seed: int = 12) -> int:
    """Bulk-insert `count` PINs and their batches, in the order they were issued (as the bot
    writes them); returns how many. One PIN per patient; beyond that (--pins on a small
    store), earlier non-active PINs of the same children, as re-issues leave them."""
    rng = random.Random(seed)
    database = Database(database_url)
    try:
        with database.read_session() as session:
            patients = list(session.execute(select(col(Patient.id), col(Patient.family_id))).all())
        chosen = [(p, False) for p in rng.sample(patients, min(count, len(patients)))]
        chosen += [(rng.choice(patients), True) for _ in range(count - len(chosen))]
        start = now - timedelta(weeks=52)
        planned = sorted(
            ((start + timedelta(seconds=rng.uniform(0, 52 * 7 * 86400)), p, extra)
             for p, extra in chosen),
            key=lambda item: item[0],
        )  # fmt: skip
        for at in range(0, len(planned), CHUNK):
            part = planned[at : at + CHUNK]
            with database.transaction() as session:
                batch_ids = session.execute(
                    insert(IssueBatch).returning(col(IssueBatch.id)),
                    [
                        {
                            "family_id": family_id,
                            "idempotency_key": f"bench:{at + n}",
                            "issued_by": "UBENCH",
                            "mode": "welcome",
                            "language": rng.choices(["en", "es", None], [80, 15, 5])[0],
                            "created_at": issued,
                        }
                        for n, (issued, (_, family_id), _) in enumerate(part)
                    ],
                ).scalars()
                rows = []
                for (issued, (patient_id, _), extra), batch_id in zip(
                    part, list(batch_ids), strict=True
                ):
                    roll = rng.random() * (0.75 if extra else 1.0)
                    status = (PinStatus.REGISTERED if roll < 0.55 else PinStatus.REVOKED
                              if roll < 0.65 else PinStatus.EXPIRED if roll < 0.75
                              else PinStatus.ACTIVE)  # fmt: skip
                    changed = None
                    if status != PinStatus.ACTIVE:
                        changed = min(now, issued + timedelta(days=rng.uniform(1, 40)))
                    rows.append({
                        "patient_id": patient_id, "batch_id": batch_id, "pin_hash": "bench",
                        "delivery": rng.choice(["emailed", "printed"]), "issued_by": "UBENCH",
                        "issued_at": issued, "expires_at": issued + timedelta(days=90),
                        "status": status, "status_changed_at": changed,
                    })  # fmt: skip
                session.execute(insert(Pin), rows)
        return len(planned)
    finally:
        database.dispose()


def measure_query(database_url: str, samples: int, now: datetime) -> tuple[Summary, int]:
    database = Database(database_url)
    try:
        times, issued = [], 0
        for _ in range(samples + 3):
            start = time.perf_counter()
            with database.read_session() as session:
                report = build_report(session, now=now, tz=TZ, practice_name="Bench")
            times.append(time.perf_counter() - start)
            issued = report.totals.issued
        return Summary.of(times[3:]), issued  # the first few warm the connection pool
    finally:
        database.dispose()


def measure_chart(database_url: str, samples: int, now: datetime) -> Summary:
    database = Database(database_url)
    try:
        with database.read_session() as session:
            report = build_report(session, now=now, tz=TZ, practice_name="Bench Pediatrics")
    finally:
        database.dispose()
    render_chart(report)  # matplotlib's font cache and first draw
    return Summary.of(timed(lambda: render_chart(report)) for _ in range(samples))


def _open_tab(stack: Stack, slack: BenchSlack, user: str, at: datetime) -> float:
    stack.services.clock = lambda: at
    waiter = slack.arrivals.expect("publish", user)
    start = time.perf_counter()
    response = stack.sender.event(app_home_opened_event(user))
    if response.status != 200:
        raise RuntimeError(f"app_home_opened answered {response.status}")
    return waiter.wait() - start


def measure_home(database_url: str, samples: int) -> tuple[Summary, Summary]:
    """(cold, cached) Home tab opens: signed event -> views.publish at the fake Slack. Cold
    opens move the services' clock past the figures' 60 s cache each time."""
    user, base = "U0STAFF01", utcnow()
    with slack_and_smtp() as (slack, smtp):
        for stack in build_stack(database_url, slack, smtp, ALLOWED_CHANNEL_IDS="C0BENCH"):
            _open_tab(stack, slack, user, base)  # users.info, the first connections
            minutes = [base + timedelta(seconds=61 * n) for n in range(1, samples + 1)]
            cold = [_open_tab(stack, slack, user, at) for at in minutes]
            cached = [_open_tab(stack, slack, user, minutes[-1]) for _ in range(samples)]
    return Summary.of(cold), Summary.of(cached)


def run(report: Report, store: str, *, plan: str = "full", pins: int | None = None) -> Result:
    patients, planned_pins, query_n, chart_n, home_n = SIZES[plan]
    pins = pins or planned_pins
    size = f"{patients // 1000}k" if patients >= 1000 else str(patients)
    base_url, _ = stores.base(store, families_for_patients(patients))
    now = utcnow()
    with stores.working_copy(store, base_url, "report") as url:
        written = add_pins(url, pins, now=now)
        query, issued = measure_query(url, query_n, now)
        chart = measure_chart(url, chart_n, now)
        cold, cached = measure_home(url, home_n)
    figures = {"query": query, "chart": chart, "home_cold": cold, "home_cached": cached}
    result = Result("report", store, size, figures)
    if plan != "full":
        result.notes.append(f"--{plan}: {patients:,} patients / {written:,} PINs, not 250k / 100k")
    return report.add(result, [
        f"{written:,} PINs ({issued:,} in the report's 13 weeks)",
        f"report query   {query.text()}   target p95 <= {TARGETS_MS['query_p95']:.0f} ms",
        f"chart render   {chart.text()}   target p95 <= {TARGETS_MS['chart_p95']:.0f} ms",
        f"home (cold)    {cold.text()}   target p95 <= {TARGETS_MS['home_cold_p95']:.0f} ms",
        f"home (cached)  {cached.text()}   target p95 <= {TARGETS_MS['home_cached_p95']:.0f} ms",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10k patients, 4k PINs")
    size.add_argument("--tiny", action="store_true", help="100 patients (smoke test)")
    parser.add_argument("--stores", default=",".join(stores.STORES))
    parser.add_argument("--pins", type=int, help="PINs to add (default: 100k, --quick 4k)")
    parser.add_argument("--cache", type=Path, help="cache folder (default bench/.cache)")
    args = parser.parse_args(argv)
    if args.cache:
        stores.CACHE_DIR = args.cache
    plan = "tiny" if args.tiny else "quick" if args.quick else "full"
    report = Report()
    for store in args.stores.split(","):
        if store == "postgresql" and (reason := stores.postgres_available()):
            report.say(f"[report · postgresql] skipped: {reason}")
            continue
        run(report, store, plan=plan, pins=args.pins)
    return 0


if __name__ == "__main__":
    sys.exit(main())
