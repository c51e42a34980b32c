"""`make bench`: every benchmark of issue 5 on SQLite and PostgreSQL at 10k and 250k patients,
each figure with its floor ratio, then the figures against the targets.

    python -m bench.run_all            # full run (first run builds the 250k practice: minutes)
    python -m bench.run_all --quick    # 10k patients only, fewer samples, a minute or two
    python -m bench.run_all --stores sqlite --only search,letters

Results are also written as JSON to bench/.cache/results/ (and as Markdown with --markdown).
PostgreSQL: PINBOT_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
must let us create databases (pinbot_bench_*); when it is unreachable the PostgreSQL runs are
skipped with the reason. Cache folder: bench/.cache/ (PINBOT_BENCH_CACHE, or --cache).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import (
    batch_bench,
    family_bench,
    hl7_backfill,
    hl7_bench,
    letters_bench,
    load_bench,
    search_bench,
    stores,
)
from bench.stats import Report, Result
from bot.db import normalize_url

BENCHES = ("search", "family", "kinds", "socket", "batch", "letters", "load", "hl7", "backfill")
HL7_MESSAGES = {"full": hl7_bench.FULL, "quick": hl7_bench.QUICK, "tiny": 30}
BACKFILL_PATIENTS = {"full": hl7_backfill.FULL, "quick": 20_000, "tiny": 50}


@dataclass(frozen=True)
class Plan:
    families: tuple[int, ...]
    search_queries: int
    family_requests: int
    batches: int
    letters_seconds: float
    load_seconds: float
    saturated: bool
    # Unmeasured requests before each end-to-end benchmark measures (None: each one's own) and
    # rounds of the PIN-hashing figure: fewer only in the smoke test, which times nothing.
    warmup: int | None = None
    hash_rounds: int = batch_bench.HASH_ROUNDS

    def warmups(self, default: int) -> int:
        return default if self.warmup is None else min(self.warmup, default)


PLANS = {
    "full": Plan((4_000, 100_000), 1000, 300, 40, 5.0, 30.0, True),
    "quick": Plan((4_000,), 300, 60, 10, 2.0, 10.0, False),
    "tiny": Plan((40,), 30, 4, 2, 0.05, 1.0, False, warmup=2, hash_rounds=3),
}


def size_label(patients: int) -> str:
    if patients < 2000:
        return f"{patients}"
    return f"{round(patients / 1000, -1 if patients > 50_000 else 0):.0f}k"


def machine(stores_used: Sequence[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    if "postgresql" in stores_used:
        engine = create_engine(normalize_url(stores.PG_ADMIN_URL))
        with engine.connect() as connection:
            info["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    return info


def _targets(report: Report) -> list[str]:
    """Each target of the issue against the largest size measured, per store."""
    lines: list[str] = []
    sizes = sorted({r.size for r in report.results if r.size != "-"}, key=_size_key)

    def check(ok: bool) -> str:
        return "ok  " if ok else "MISS"

    for store in stores.STORES:
        if not any(r.store == store for r in report.results) or not sizes:
            continue
        big, small = sizes[-1], sizes[0]
        lines.append(f"{store} at {big} patients:")
        if r := report.find("search", store, big):
            s = r.figures["search"]
            lines.append(f"  {check(s.p95 <= 25)} search p95 {s.p95:.1f} ms (<= 25)")
            lines.append(
                f"  {check(r.figures['ratio_p95'] <= 3)} search p95 "
                f"{r.figures['ratio_p95']:.1f}x its floor (<= 3x)"
            )
            first = report.find("search", store, small)
            if first and small != big:
                growth = s.p95 / first.figures["search"].p95
                lines.append(
                    f"  {check(growth <= 2)} search p95 {small} -> {big}: x{growth:.2f} (<= 2)"
                )
        if r := report.find("family_e2e", store, big):
            c = r.figures["card"]
            lines.append(f"  {check(c.p95 <= 150)} /family end to end p95 {c.p95:.0f} ms (<= 150)")
            lines.append(
                f"  {check(r.figures['ratio_p95'] <= 2)} /family end to end p95 "
                f"{r.figures['ratio_p95']:.1f}x its floor (<= 2x)"
            )
            tail = r.figures.get("p95_over_median", float("nan"))
            lines.append(
                f"  {check(r.figures['ratio_p95'] <= 3 and tail <= 2)} /family end to end p95 "
                f"{r.figures['ratio_p95']:.1f}x its floor (<= 3x) and {tail:.1f}x its median "
                "(<= 2x; issue 13 §4)"
            )
        for name, over in (("family_kinds", ""), ("family_kinds_socket", " in Socket Mode")):
            if r := report.find(name, store, big):
                worst = max(r.figures["kinds"].items(), key=lambda item: item[1]["ratio_p95"])
                lines.append(
                    f"  {check(worst[1]['ratio_p95'] <= 2)} /family{over} every kind's p95 <= 2x "
                    f"the floor's: worst {worst[0]} {worst[1]['ratio_p95']:.1f}x (issue 22)"
                )
                gap = r.figures["listed"].median - r.figures["card"].median
                lines.append(
                    f"  {check(gap <= 1.5)} /family{over} list p50 {gap:+.2f} ms from the card's "
                    "(<= 1.5 ms; issue 22)"
                )
        if r := report.find("batch4", store, big):
            t = r.figures["total"]
            lines.append(
                f"  {check(t.p95 <= 600)} batch of 4 p95 {t.p95:.0f} ms (<= 600); "
                f"PIN hashing {r.figures['hash_share']:.0%} of the median"
            )
        if r := report.find("ack_load_paced", store, big):
            a = r.figures["ack"]
            lines.append(
                f"  {check(a.p99 <= 300 and r.figures['over_3s'] == 0)} ack under "
                f"load p99 {a.p99:.0f} ms (<= 300), {r.figures['over_3s']} over 3 s"
            )
        if r := report.find("memory", store, big):
            peak = r.figures["peak_rss_mib"]
            lines.append(f"  {check(peak <= 200)} peak RSS {peak:.0f} MiB (<= 200)")
    if r := report.find("letters", "-", "-"):
        rate, times = r.figures["pages_per_s"], r.figures["ratio_time_per_page"]
        lines.append(f"{check(rate >= 100)} PDF letters {rate:.0f} pages/s (>= 100)")
        lines.append(
            f"{check(times <= 1.5)} PDF letters {times:.2f}x the floor's time per page (<= 1.5x)"
        )
    return lines


def _size_key(label: str) -> float:
    return float(label.rstrip("k")) * (1000 if label.endswith("k") else 1)


def markdown(report: Report, info: dict[str, Any]) -> str:
    rows = ["| benchmark | store | patients | figures |", "|---|---|---|---|"]
    for r in report.results:
        figures = "; ".join(
            f"{k} {_short(v)}" for k, v in r.figures.items() if not isinstance(v, dict)
        )
        rows.append(f"| {r.bench} | {r.store} | {r.size} | {figures} |")
    head = ", ".join(f"{k}: {v}" for k, v in info.items())
    return "\n".join(
        [
            f"Machine: {head}",
            "",
            *rows,
            "",
            "Targets:",
            "",
            *(f"    {line}" for line in _targets(report)),
            "",
        ]
    )


def _short(value: Any) -> str:
    if hasattr(value, "p95"):
        return f"median {value.median:.1f} / p95 {value.p95:.1f} / p99 {value.p99:.1f} ms"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _backfill(patients: int, chosen: list[str], report: Report) -> None:
    argv = ["--patients", str(patients), "--stores", ",".join(chosen)]
    if hl7_backfill.main(argv, report) != 0:
        raise RuntimeError("the backfill did not apply every message")


def _step(report: Report, name: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as error:
        logging.getLogger("bench").exception("%s failed", name)
        report.say(f"[{name}] FAILED: {type(error).__name__}: {error}")
        report.failures.append(name)  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10k patients, fewer samples")
    size.add_argument("--tiny", action="store_true", help="a few dozen families (smoke test)")
    parser.add_argument(
        "--families",
        type=int,
        nargs="+",
        help="practice sizes in families (about 2.5 patients each)",
    )
    parser.add_argument("--stores", default=",".join(stores.STORES))
    parser.add_argument("--only", default=",".join(BENCHES), help=",".join(BENCHES))
    parser.add_argument("--load-seconds", type=float)
    parser.add_argument("--kinds", type=int, help="/family requests of the kinds bench")
    parser.add_argument("--cache", type=Path, help="cache folder (default bench/.cache)")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown")
    parser.add_argument("--reload", action="store_true", help="rebuild the cached databases")
    args = parser.parse_args(argv)
    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    if args.cache:
        stores.CACHE_DIR = args.cache
    only = set(args.only.split(","))
    chosen = [s for s in args.stores.split(",") if s]
    report = Report()
    report.failures = []  # type: ignore[attr-defined]
    if "postgresql" in chosen and (why := stores.postgres_available()):
        report.say(f"skipping PostgreSQL: {why}")
        chosen.remove("postgresql")
    info = machine(chosen)
    report.say("pinbot benchmarks — " + ", ".join(f"{k}: {v}" for k, v in info.items()))
    if "letters" in only:
        _step(report, "letters", lambda: letters_bench.run(report, seconds=plan.letters_seconds))
    if "hl7" in only:  # issue 10: the EHR feed on an empty database, against a bare listener
        messages = HL7_MESSAGES["tiny" if args.tiny else "quick" if args.quick else "full"]
        for store in chosen:
            _step(report, f"hl7 {store}", lambda s=store: hl7_bench.run(s, messages, report))
    if "backfill" in only:  # issue 10: a whole practice through `pinbot hl7 replay`
        patients = BACKFILL_PATIENTS["tiny" if args.tiny else "quick" if args.quick else "full"]
        _step(report, "hl7 backfill", lambda: _backfill(patients, chosen, report))
    for families in args.families or plan.families:
        for store in chosen:
            _run_store(report, plan, store, families, only, args)
    report.say()
    report.say("Targets (issue 5):")
    for line in _targets(report):
        report.say(f"  {line}")
    info["load_average_end"] = os.getloadavg()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report.save(stores.CACHE_DIR / "results" / f"{stamp}.json", info)
    if args.markdown:
        args.markdown.write_text(markdown(report, info))
    report.say(
        f"({time.time() - report.started:.0f} s; results in "
        f"{stores.CACHE_DIR / 'results' / f'{stamp}.json'})"
    )
    return 1 if report.failures else 0  # type: ignore[attr-defined]


def _run_store(
    report: Report, plan: Plan, store: str, families: int, only: set[str], args: argparse.Namespace
) -> None:
    start = time.perf_counter()
    url, load = stores.base(store, families, reload=args.reload)
    label = size_label(load.sizes.patients)
    sizes = load.sizes
    report.add(
        Result(
            "import",
            store,
            label,
            {
                "family_rows_per_s": load.family_rows_per_s,
                "family_rows": sizes.family_rows,
                "appointment_rows_per_s": load.appointment_rows_per_s,
                "cached": load.cached,
            },
        ),
        [
            f"{sizes.families:,} families, {sizes.patients:,} patients, {sizes.guardians:,} "
            f"guardians, {sizes.appointments:,} appointments ({sizes.family_rows:,} family rows)",
            f"import families: {load.family_rows_per_s:,.0f} rows/s "
            f"({load.family_seconds:.0f} s); "
            f"appointments: {load.appointment_rows_per_s:,.0f} rows/s"
            + (
                " — figures of the cached load"
                if load.cached
                else f" — loaded now in {time.perf_counter() - start:.0f} s"
            ),
        ],
    )
    with stores.working_copy(store, url, label) as work:
        if "search" in only:
            _step(
                report,
                f"search {store} {label}",
                lambda: search_bench.run(
                    report, work, store=store, size=label, count=plan.search_queries
                ),
            )
        if "family" in only:
            _step(
                report,
                f"family {store} {label}",
                lambda: family_bench.run(
                    report,
                    work,
                    store=store,
                    size=label,
                    count=plan.family_requests,
                    warmup=plan.warmups(family_bench.WARMUP),
                ),
            )
        # issue 22: every kind of /family answer, card or list, over HTTP and Socket Mode
        for bench, socket_mode in (("kinds", False), ("socket", True)):
            if bench in only:
                _step(
                    report,
                    f"{bench} {store} {label}",
                    lambda socket_mode=socket_mode: family_bench.run_kinds(
                        report,
                        work,
                        store=store,
                        size=label,
                        count=args.kinds or 7 * plan.family_requests,
                        warmup=plan.warmups(family_bench.WARMUP),
                        socket_mode=socket_mode,
                    ),
                )
        if "batch" in only:
            _step(
                report,
                f"batch {store} {label}",
                lambda: batch_bench.run(
                    report,
                    work,
                    store=store,
                    size=label,
                    count=plan.batches,
                    warmup=plan.warmups(batch_bench.WARMUP),
                    hash_rounds=plan.hash_rounds,
                ),
            )
        if "load" in only:
            _step(
                report,
                f"load {store} {label}",
                lambda: load_bench.run(
                    report,
                    work,
                    store=store,
                    size=label,
                    seconds=args.load_seconds or plan.load_seconds,
                    saturated=plan.saturated,
                    warmup=plan.warmups(load_bench.WARMUP),
                ),
            )


if __name__ == "__main__":
    sys.exit(main())
