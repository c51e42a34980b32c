"""Where one /family's own work goes, per query kind (issue 22): the bot in this process (the
app `pinbot run` builds, served by waitress on loopback, Web API at the fake Slack), the mixed
queries of `family_bench.run_kinds` sent as signed requests, and for each kind:

- the listener's wall time (search, card or list, ack, audit, commit) on the worker thread;
- SQL statements per request, and how many went to the database (execute calls);
- with --profile, a cProfile of the listener, one per kind, written as .prof files and
  printed (cumulative time, top functions).

Not a latency benchmark (everything shares one process and the GIL): a tool to see what a
change does to a kind's statements and Python work. It runs on a working copy of the cached
practice, as run_all does.

    python -m bench.family_profile --families 4000 --store sqlite --count 400 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import pstats
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import stores
from bench.family_bench import kind_queries
from bench.procs import STAFF_IDS, slack_and_smtp
from bot.config import load_settings
from bot.db import Database
from bot.runtime.process import make_services, warm_search_cache
from tests.support.slack_requests import SlackSender, serve_wsgi
from tests.support.stack import SIGNING_SECRET, stack_env

_local = threading.local()


class _Tally:
    """Per-kind figures of the requests measured so far."""

    def __init__(self, profile: bool) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.statements: dict[str, list[int]] = defaultdict(list)
        self.texts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.profiles: dict[str, cProfile.Profile] = {}
        self.profile = profile
        self.kind = ""
        self.measuring = False
        self.idle = threading.Event()  # no listener running (a card's runs on after its ack)
        self.idle.set()


def _count_statements(tally: _Tally, engine: Any) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements = getattr(_local, "statements", None)
        if statements is not None:
            statements.append(statement)


def _wrap_listener(tally: _Tally) -> None:
    import handlers.family as family

    command = family.family_command

    def timed(**kwargs: Any) -> None:
        kind = tally.kind
        if not tally.measuring:
            try:
                command(**kwargs)
            finally:
                tally.idle.set()
            return
        _local.statements = []
        profile = tally.profiles.setdefault(kind, cProfile.Profile())
        start = time.perf_counter()
        if tally.profile:
            profile.enable()
        try:
            command(**kwargs)
        finally:
            if tally.profile:
                profile.disable()
            tally.seconds[kind].append(time.perf_counter() - start)
            statements, _local.statements = _local.statements, None
            tally.statements[kind].append(len(statements))
            for text in statements:
                tally.texts[kind][" ".join(text.split())[:110]] += 1
            tally.idle.set()

    timed.__signature__ = inspect.signature(command)  # type: ignore[attr-defined]
    family.family_command = timed


@contextmanager
def _bot(url: str, tally: _Tally) -> Iterator[SlackSender]:
    from handlers.app import create_app, make_client
    from handlers.serving import make_wsgi_app

    with slack_and_smtp() as (slack, smtp):
        settings = load_settings(stack_env(url, slack, smtp))
        database = Database(settings.database_url)
        for engine in (database.engine, database.lookup_engine):
            if engine is not None:
                _count_statements(tally, engine.engine)
        _wrap_listener(tally)
        client = make_client(settings)
        services = make_services(settings, database, client)
        app = create_app(services, client)
        warm_search_cache(database)
        try:
            with serve_wsgi(make_wsgi_app(app, database), threads=8) as base:
                yield SlackSender(
                    base, SIGNING_SECRET, response_urls=slack.response_url, timeout=30
                )
        finally:
            database.dispose()


# (label, first span, last span) of bench/spans.py, per request
PHASES = (
    ("search", "search_start", "search_end"),
    ("labels", "labels_start", "labels_end"),
    ("list blocks", "choices_start", "choices_end"),
    ("ack()", "ack_start", "ack_end"),
    ("load_family", "load_start", "load_end"),
    ("card blocks", "card_start", "card_end"),
    ("post", "post_start", "post_end"),
    ("after post", "post_end", "listener_end"),
    ("audit", "audit_start", "audit_end"),
    ("listener", "listener_start", "listener_end"),
    ("listener to ack", "listener_start", "ack_end"),
    ("listener to post", "listener_start", "post_end"),
)


def _phases(path: Path, kinds: dict[str, str]) -> None:
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in path.read_text().splitlines():
        row = json.loads(line)
        kind = kinds.get(row["channel"])
        if kind is None:
            continue
        for label, begin, end in PHASES:
            if begin in row and end in row:
                rows[kind][label].append((max(row[end]) - min(row[begin])) * 1000)
    print(f"\n{'phase (ms)':<18}" + "".join(f"{k[:12]:>14}" for k in sorted(rows)))
    for label, _, _ in PHASES:
        cells = []
        for kind in sorted(rows):
            values = sorted(rows[kind].get(label, []))
            if not values:
                cells.append(f"{'-':>14}")
                continue
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            cells.append(f"{statistics.median(values):6.2f}/{p95:6.2f} ")
        print(f"{label:<18}" + "".join(cells))
    print("(median/p95 over the requests of each kind that have the phase)")


def run(url: str, count: int, profile: bool, out: Path, spans: Path | None = None) -> None:
    queries = kind_queries(url, count)
    tally = _Tally(profile)
    kinds: dict[str, str] = {}
    with _bot(url, tally) as sender:
        for i, (query, _card) in enumerate(queries):
            if not tally.idle.wait(30):
                raise TimeoutError("a listener did not finish")
            tally.idle.clear()
            tally.kind, tally.measuring = query.kind, i >= 20
            channel = f"CPROF{i:07d}"
            if i >= 20:
                kinds[channel] = query.kind
            response = sender.command(
                "/family", query.text, channel_id=channel, user_id=STAFF_IDS[i % 10]
            )
            if response.status != 200:
                raise RuntimeError(response.text[:200])
        tally.idle.wait(30)
    print(f"{'kind':<14} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'stmts':>6}")
    for kind in sorted(tally.seconds):
        ms = sorted(s * 1000 for s in tally.seconds[kind])
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(
            f"{kind:<14} {len(ms):4d} {statistics.median(ms):7.2f} {p95:7.2f} "
            f"{statistics.mean(tally.statements[kind]):6.2f}"
        )
    for kind, texts in sorted(tally.texts.items()):
        n = len(tally.seconds[kind])
        print(f"\n{kind}: statements per request")
        for text, times in sorted(texts.items(), key=lambda item: -item[1]):
            print(f"  {times / n:5.2f}  {text}")
    if spans is not None:
        _phases(spans, kinds)
    if profile:
        out.mkdir(parents=True, exist_ok=True)
        for kind, prof in sorted(tally.profiles.items()):
            path = out / f"{kind.replace(' ', '_').replace(',', '')}.prof"
            prof.dump_stats(path)
            print(f"\n===== {kind} ({path})")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=4000)
    parser.add_argument("--store", choices=stores.STORES, default="sqlite")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--spans", action="store_true", help="time each step (bench/spans.py)")
    parser.add_argument("--out", type=Path, default=stores.CACHE_DIR / "profiles")
    args = parser.parse_args()
    base, _load = stores.base(args.store, args.families)
    spans = None
    if args.spans:
        spans = stores.CACHE_DIR / "logs" / f"profile-spans-{time.time():.0f}.jsonl"
        spans.parent.mkdir(parents=True, exist_ok=True)
        import bench.spans

        bench.spans.install(str(spans))
    with stores.working_copy(args.store, base, "profile") as url:
        run(url, args.count, args.profile, args.out, spans)


if __name__ == "__main__":
    main()
