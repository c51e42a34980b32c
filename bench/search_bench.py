"""search: 1,000 mixed /family queries through `search_families`, each in its own read
session as the handler does. Floor: an exact indexed chart-id look-up on the same database,
also in its own read session. The two are interleaved, so both see the same machine load."""

from __future__ import annotations

import random
import time
from collections import defaultdict

from sqlmodel import select

from bench.queries import mixed_queries
from bench.stats import Report, Result, Summary, ratio
from bot.db import Database
from bot.lookup.search import forget_name_keys, search_families
from models import Patient

WARMUP = 50


def run(report: Report, database_url: str, *, store: str, size: str, count: int = 1000) -> Result:
    database = Database(database_url)
    try:
        with database.read_session() as session:
            queries = mixed_queries(session, count)
            charts = list(session.exec(select(Patient.chart_id).limit(5000)))
        forget_name_keys()
        first_name_query = next((q for q in queries if q.kind == "surname"), queries[0])
        start = time.perf_counter()
        with database.read_session() as session:
            search_families(session, first_name_query.text)
        cold = time.perf_counter() - start

        def search(text: str) -> tuple[float, list[int]]:
            start = time.perf_counter()
            with database.read_session() as session:
                hits = search_families(session, text)
            return time.perf_counter() - start, [hit.family_id for hit in hits]

        def floor(chart_id: str) -> float:
            start = time.perf_counter()
            with database.read_session() as session:
                session.exec(
                    select(Patient.id, Patient.family_id).where(Patient.chart_id == chart_id)
                ).first()
            return time.perf_counter() - start

        rng = random.Random(5)
        for query in queries[:WARMUP]:
            search(query.text)
            floor(rng.choice(charts))
        times, floors = [], []
        by_kind: dict[str, list[float]] = defaultdict(list)
        found = 0
        for query in queries:
            seconds, families = search(query.text)
            times.append(seconds)
            by_kind[query.kind].append(seconds)
            found += query.family_id in families
            floors.append(floor(rng.choice(charts)))
    finally:
        database.dispose()
    summary, floor_summary = Summary.of(times), Summary.of(floors)
    result = Result(
        "search",
        store,
        size,
        {
            "search": summary,
            "floor": floor_summary,
            "ratio_median": ratio(summary.median, floor_summary.median),
            "ratio_p95": ratio(summary.p95, floor_summary.p95),
            "cold_first_search_ms": cold * 1000,
            "found_share": found / len(queries),
            "by_kind_p95": {kind: Summary.of(values).p95 for kind, values in by_kind.items()},
        },
    )
    kinds = "  ".join(
        f"{kind} {Summary.of(values).p95:.1f}" for kind, values in sorted(by_kind.items())
    )
    return report.add(
        result,
        [
            f"search  {summary.text()}",
            f"floor   {floor_summary.text()}  (chart-id look-up)",
            f"ratio to floor: median {result.figures['ratio_median']:.1f}x  "
            f"p95 {result.figures['ratio_p95']:.1f}x",
            f"first search after start (loads the name-key cache): {cold * 1000:.0f} ms",
            f"p95 by kind (ms): {kinds}",
            f"the family the query was drawn from is among the hits: {found / len(queries):.1%} "
            "(a common surname has more families than the 10 listed)",
        ],
    )
