"""/family end to end: a signed slash command into the running bot (`pinbot run`, HTTP mode,
its own process) until the family card reaches the fake Slack server. Floor: the bare Bolt app
of bench/floor_app.py on the same server setup, acking and posting a fixed message.

Requests go one at a time, each in a channel of its own so its card is recognised on arrival;
both apps run side by side and each query goes to one, then the other (see `measure`).
Queries are the mixed ones of the search benchmark that open one family (a card, not a list);
the card's time is also given per query kind.

With PINBOT_BENCH_SPANS=1 the bot is started with bench/spans.py, which times each step of the
request inside the bot process (the same monotonic clock as here), and the report adds where
the time goes: each step's median over all requests and its mean over the slowest 5%.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stores
from bench.procs import STAFF_IDS, BenchSlack, BenchSocketMode, Served, serve, slack_and_smtp
from bench.queries import Query, mixed_queries
from bench.stats import Report, Result, Summary, percentile, ratio
from bot.db import Database
from bot.lookup.search import is_single_match, search_families
from tests.support.slack_requests import command_payload

WARMUP = 20
_channels = itertools.count(1)


@dataclass(frozen=True)
class Sample:
    kind: str
    channel: str
    start: float  # perf_counter, when the request was sent
    ack: float  # seconds to the HTTP answer
    card: float  # seconds to the card at the fake Slack


def card_queries(database_url: str, count: int) -> list[Query]:
    """Queries that open exactly one family (checked with the real search)."""
    database = Database(database_url)
    try:
        with database.read_session() as session:
            found = []
            for query in mixed_queries(session, 3 * count + WARMUP, seed=23):
                if is_single_match(search_families(session, query.text)):
                    found.append(query)
    finally:
        database.dispose()
    return found


def _send(
    served: Served, slack: BenchSlack, query: Query, user: str, channel: str
) -> tuple[float, float]:
    """A signed /family; when it was sent and when its HTTP answer came (perf_counter)."""
    start = time.perf_counter()
    response = served.sender.command(
        "/family", query.text, channel_id=channel, user_id=user, response_url=slack.response_url()
    )
    answered = time.perf_counter()
    if response.status != 200:
        raise RuntimeError(f"/family answered {response.status}: {response.text[:200]}")
    return start, answered


def _one(served: Served, slack: BenchSlack, query: Query, user: str) -> Sample:
    channel = f"CE2E{next(_channels):07d}"
    waiter = slack.arrivals.expect("message", channel)
    start, acked = _send(served, slack, query, user, channel)
    return Sample(query.kind, channel, start, acked - start, waiter.wait() - start)


def measure(
    floor: Served, bot: Served, slack: BenchSlack, queries: list[Query], warmup: int = WARMUP
) -> tuple[list[Sample], list[Sample]]:
    """Each query to the floor and to the bot, one right after the other (which one first
    alternates), so both see the same moment of the machine: its noise comes in bursts of a
    few hundred milliseconds, which would otherwise land in one app's tail and not the other's."""
    rng = random.Random(3)
    users = STAFF_IDS[:10]
    floor_samples: list[Sample] = []
    bot_samples: list[Sample] = []
    for i, query in enumerate(queries):
        user = rng.choice(users)
        pair = [(floor, floor_samples), (bot, bot_samples)]
        for served, samples in pair if i % 2 else reversed(pair):
            sample = _one(served, slack, query, user)
            if i >= warmup:
                samples.append(sample)
    return floor_samples, bot_samples


def by_kind(samples: list[Sample]) -> dict[str, Summary]:
    kinds: dict[str, list[float]] = {}
    for sample in samples:
        kinds.setdefault(sample.kind, []).append(sample.card)
    return {kind: Summary.of(cards) for kind, cards in sorted(kinds.items())}


def run(
    report: Report,
    database_url: str,
    *,
    store: str,
    size: str,
    count: int = 300,
    warmup: int = WARMUP,
) -> Result:
    # Fewer warm-ups (the smoke test) drop the first queries: the measured ones stay the same.
    queries = card_queries(database_url, count)[WARMUP - warmup : count + WARMUP]
    spans_path = None
    if os.environ.get("PINBOT_BENCH_SPANS"):
        spans_path = stores.CACHE_DIR / "logs" / f"spans-{store}-{size}-{time.time():.0f}.jsonl"
    label = f"{store}-{size}"
    with (
        slack_and_smtp() as (slack, smtp),
        serve("floor", database_url, slack, smtp, label) as floor_app,
        serve("bot", database_url, slack, smtp, label, spans=spans_path) as bot,
    ):
        floor_samples, samples = measure(floor_app, bot, slack, queries, warmup)
    card = Summary.of(s.card for s in samples)
    floor = Summary.of(s.card for s in floor_samples)
    ack = Summary.of(s.ack for s in samples)
    kinds = by_kind(samples)
    floor_kinds = by_kind(floor_samples)
    result = Result(
        "family_e2e",
        store,
        size,
        {
            "card": card,
            "floor": floor,
            "ack": ack,
            "ratio_median": ratio(card.median, floor.median),
            "ratio_p95": ratio(card.p95, floor.p95),
            "p95_over_median": ratio(card.p95, card.median),
            "kinds": kinds,
        },
    )
    lines = [
        f"card    {card.text()}  (signed /family -> card at fake Slack)",
        f"floor   {floor.text()}  (bare Bolt app: ack + fixed message)",
        f"ratio to floor: median {result.figures['ratio_median']:.1f}x  "
        f"p95 {result.figures['ratio_p95']:.1f}x;  card p95/median "
        f"{result.figures['p95_over_median']:.1f}x",
        f"ack     {ack.text()}",
        "per query kind (card; floor p95 with the same queries):",
    ]
    for kind, summary in kinds.items():
        lines.append(
            f"  {kind:<13} median {summary.median:6.2f}  p95 {summary.p95:6.2f}  "
            f"max {summary.max:6.2f} ms  (n={summary.count}; floor p95 "
            f"{floor_kinds[kind].p95:.2f})"
        )
    if spans_path is not None:
        lines += where_time_goes(samples, spans_path)
    return report.add(result, lines)


# --- every kind of answer (issue 22) ---------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str
    seconds: float  # to what the user sees: the card at the fake Slack, or the ack's own body
    listed: bool  # answered in the ack's body (a list of families or a "no match" hint)
    channel: str = ""
    start: float = 0.0  # perf_counter, when the request was sent


def kind_queries(database_url: str, count: int) -> list[tuple[Query, bool]]:
    """Mixed queries of every kind, each with whether the bot answers it with one card (the
    real search decides); the others are answered in the ack's body."""
    database = Database(database_url)
    try:
        with database.read_session() as session:
            return [
                (query, is_single_match(search_families(session, query.text)))
                for query in mixed_queries(session, count + WARMUP, seed=29)
            ]
    finally:
        database.dispose()


def _answer(served: Served, slack: BenchSlack, query: Query, user: str, card: bool) -> Answer:
    channel = f"CE2E{next(_channels):07d}"
    waiter = slack.arrivals.expect("message", channel) if card else None
    start, answered = _send(served, slack, query, user, channel)
    if waiter is None:
        return Answer(query.kind, answered - start, True, channel, start)
    return Answer(query.kind, waiter.wait() - start, False, channel, start)


def _socket_answer(
    peer: BenchSocketMode, slack: BenchSlack, query: Query, user: str, card: bool
) -> Answer:
    """As `_answer`, over Socket Mode: the command goes out as an envelope, and a list or a
    hint comes back in the envelope's ack (timed when the peer received it)."""
    channel = f"CE2E{next(_channels):07d}"
    waiter = slack.arrivals.expect("message", channel) if card else None
    payload = command_payload(
        "/family", query.text, channel_id=channel, user_id=user, response_url=slack.response_url()
    )
    start = time.perf_counter()
    envelope_id = peer.send_envelope("slash_commands", payload, timeout=30)
    acked = peer.wait_for_ack(envelope_id, timeout=30)
    if waiter is None:
        if not acked.get("payload"):
            raise RuntimeError(f"/family {query.text!r}: an empty ack where an answer was due")
        return Answer(query.kind, peer.acked_at[envelope_id] - start, True, channel, start)
    return Answer(query.kind, waiter.wait() - start, False, channel, start)


def run_kinds(
    report: Report,
    database_url: str,
    *,
    store: str,
    size: str,
    count: int = 700,
    warmup: int = WARMUP,
    socket_mode: bool = False,
) -> Result:
    """Per query kind, the time to the answer the user sees, whether a card or the list in the
    ack's body. Three apps side by side, each query to all three in a rotating order: the floor
    (which always acks and posts), the bot, and the bot with Bolt's own listener runner, which
    polls for the ack every 10 ms (before issue 22). Over HTTP (signed requests; the ack is the
    HTTP answer) or, with `socket_mode`, over Socket Mode: each app connected to a local
    websocket peer of its own, the ack sent back on it."""
    queries = kind_queries(database_url, count)[WARMUP - warmup :]  # as in `run`
    rng = random.Random(5)
    label = f"{store}-{size}{'-socket' if socket_mode else ''}"
    answers: dict[str, list[Answer]] = {"floor": [], "bot": [], "poll": []}
    spans_path = None
    if os.environ.get("PINBOT_BENCH_SPANS"):
        spans_path = stores.CACHE_DIR / "logs" / f"kinds-spans-{label}-{time.time():.0f}.jsonl"
    with ExitStack() as stack:
        slack, smtp = stack.enter_context(slack_and_smtp())
        apps: list[tuple[str, Callable[[Query, str, bool], Answer]]] = []
        for name, kind, spans, bolt_poll in (
            ("floor", "floor", None, False),
            ("bot", "bot", spans_path, False),
            ("poll", "bot", None, True),
        ):
            peer = stack.enter_context(BenchSocketMode()) if socket_mode else None
            served = stack.enter_context(
                serve(
                    kind,
                    database_url,
                    slack,
                    smtp,
                    label,
                    spans=spans,
                    bolt_poll=bolt_poll,
                    socket=peer,
                )
            )
            apps.append((name, _answering(served, peer, slack)))
        for i, (query, card) in enumerate(queries):
            user = rng.choice(STAFF_IDS[:10])
            for name, answer in apps[i % 3 :] + apps[: i % 3]:
                answered = answer(query, user, card or name == "floor")
                if i >= warmup:
                    answers[name].append(answered)
    floor = Summary.of(a.seconds for a in answers["floor"])
    figures: dict[str, Any] = {"floor": floor}
    lines = [f"floor   {floor.text()}  (bare Bolt app: ack + fixed message)"]
    for name, title in (("bot", "bot"), ("poll", "bot with Bolt's ack poll")):
        figures[name] = _kind_figures(answers[name], floor)
        lines += _kind_lines(title, figures[name])
    figures["kinds"] = figures["bot"]["kinds"]  # the targets are the bot's
    figures["listed"], figures["card"] = figures["bot"]["listed"], figures["bot"]["card"]
    if spans_path is not None:
        lines += kind_steps(answers["bot"], spans_path)
    result = "family_kinds_socket" if socket_mode else "family_kinds"
    return report.add(Result(result, store, size, figures), lines)


def _answering(
    served: Served, peer: BenchSocketMode | None, slack: BenchSlack
) -> Callable[[Query, str, bool], Answer]:
    if peer is None:
        return lambda query, user, card: _answer(served, slack, query, user, card)
    return lambda query, user, card: _socket_answer(peer, slack, query, user, card)


# (label, from, to) as STEPS below, for every kind of answer: "answered" is the card's arrival
# at the fake Slack or the ack's body at the benchmark.
KIND_STEPS = (
    ("send -> listener", "sent", "listener_start"),
    ("search", "search_start", "search_end"),
    ("  name keys", "keys_start", "keys_end"),
    ("  name rows", "rows_start", "rows_end"),
    ("list labels", "labels_start", "labels_end"),
    ("list blocks", "choices_start", "choices_end"),
    ("ack()", "ack_start", "ack_end"),
    ("ack -> answered", "ack_end", "answered"),
    ("load_family", "load_start", "load_end"),
    ("card blocks", "card_start", "card_end"),
    ("post -> arrival", "post_start", "answered"),
    ("after post", "post_end", "listener_end"),
    ("answered", "sent", "answered"),
)


def kind_steps(answers: list[Answer], path: Path) -> list[str]:
    """Each step's median / p95 per query kind, from the bot's spans (bench/spans.py)."""
    spans: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        row = json.loads(line)
        spans[row["channel"]] = row
    steps: dict[str, dict[str, list[float]]] = {}
    for answer in answers:
        row = spans.get(answer.channel)
        if row is None:
            continue
        marks = {name: values for name, values in row.items() if name not in ("channel", "gc")}
        marks["sent"] = [answer.start]
        marks["answered"] = [answer.start + answer.seconds]
        mine = steps.setdefault(answer.kind, {})
        for label, begin, end in KIND_STEPS:
            if begin in marks and end in marks:
                mine.setdefault(label, []).append((max(marks[end]) - min(marks[begin])) * 1000)
    if not steps:
        return ["spans: none recorded"]
    kinds = sorted(steps)
    lines = [
        "where the time goes per kind (ms, median/p95 of the requests that have the step):",
        f"  {'step':<17}" + "".join(f"{kind[:13]:>15}" for kind in kinds),
    ]
    for label, _, _ in KIND_STEPS:
        cells = []
        for kind in kinds:
            values = sorted(steps[kind].get(label, []))
            cells.append(
                f"{statistics.median(values):7.2f}/{percentile(values, 95):<6.2f}"
                if values
                else f"{'-':>14}"
            )
        lines.append(f"  {label:<17}" + " ".join(cells))
    return lines


def _kind_figures(answers: list[Answer], floor: Summary) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {}
    for kind in sorted({a.kind for a in answers}):
        mine = [a for a in answers if a.kind == kind]
        summary = Summary.of(a.seconds for a in mine)
        kinds[kind] = {
            "answer": summary,
            "listed": sum(a.listed for a in mine) / len(mine),
            "ratio_p95": ratio(summary.p95, floor.p95),
        }
    return {
        "kinds": kinds,
        "listed": Summary.of(a.seconds for a in answers if a.listed),
        "card": Summary.of(a.seconds for a in answers if not a.listed),
    }


def _kind_lines(title: str, figures: dict[str, Any]) -> list[str]:
    listed, card = figures["listed"], figures["card"]
    lines = [
        f"{title}:",
        f"  card  {card.text()}",
        f"  list  {listed.text()}  (answer in the ack's body)",
        f"  list p50 - card p50: {listed.median - card.median:+.2f} ms (target <= 1.5)",
    ]
    for kind, row in figures["kinds"].items():
        summary = row["answer"]
        lines.append(
            f"  {kind:<13} p50 {summary.median:6.2f}  p95 {summary.p95:6.2f}  "
            f"max {summary.max:6.2f} ms  p95/floor p95 {row['ratio_p95']:.1f}x  "
            f"lists {row['listed']:4.0%}  (n={summary.count})"
        )
    return lines


# --- spans ------------------------------------------------------------------------------------

# (label, from, to): each a span name of bench/spans.py (first start, last end) or "sent" /
# "arrived" for the benchmark's own clock readings.
STEPS = (
    ("send -> wsgi", "sent", "wsgi"),
    ("bolt before mw", "wsgi", "admit_start"),
    ("admit (guest)", "admit_start", "admit_end"),
    ("mw -> listener", "admit_end", "listener_start"),
    ("search", "search_start", "search_end"),
    ("  name keys", "keys_start", "keys_end"),
    ("  name rows", "rows_start", "rows_end"),
    ("ack()", "ack_start", "ack_end"),
    ("load_family", "load_start", "load_end"),
    ("card blocks", "card_start", "card_end"),
    ("fallback text", "fallback_start", "fallback_end"),
    ("post -> arrival", "post_start", "arrived"),
    ("listener -> arrival", "listener_start", "arrived"),
    ("after post", "post_end", "listener_end"),
)


def where_time_goes(samples: list[Sample], path: Path) -> list[str]:
    spans: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            spans[row["channel"]] = row
    pauses = [pause for row in spans.values() for pause in row.get("gc", [])]
    rows = []
    for sample in samples:
        row = spans.get(sample.channel)
        if row is None:
            continue
        marks = {name: values for name, values in row.items() if name not in ("channel", "gc")}
        marks["sent"] = [sample.start]
        marks["arrived"] = [sample.start + sample.card]
        steps = {}
        for label, begin, end in STEPS:
            if begin in marks and end in marks:
                steps[label] = (max(marks[end]) - min(marks[begin])) * 1000
        begin, end = sample.start, sample.start + sample.card
        steps["gc pauses"] = 1000 * sum(
            min(stop, end) - max(start, begin)
            for _, start, stop in pauses
            if stop > begin and start < end
        )
        rows.append((sample, steps))
    if not rows:
        return ["spans: none recorded"]
    cards = sorted(s.card for s, _ in rows)
    cut = percentile(cards, 95)
    slow = [(s, steps) for s, steps in rows if s.card >= cut]
    lines = [
        f"where the time goes (ms; {len(rows)} requests with spans, slowest 5%: "
        f"{len(slow)} at >= {cut * 1000:.2f} ms, kinds "
        + ", ".join(f"{k} {n}" for k, n in _count(s.kind for s, _ in slow))
        + "):",
        f"  {'step':<20} {'median all':>10} {'mean slow':>10} {'max slow':>9}",
    ]
    for label in [label for label, _, _ in STEPS] + ["gc pauses"]:
        every = [steps[label] for _, steps in rows if label in steps]
        worst = [steps[label] for _, steps in slow if label in steps]
        if every:
            lines.append(
                f"  {label:<20} {statistics.median(every):10.2f} "
                f"{(statistics.mean(worst) if worst else float('nan')):10.2f} "
                f"{(max(worst) if worst else float('nan')):9.2f}"
            )
    return lines


def _count(kinds: Any) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])
