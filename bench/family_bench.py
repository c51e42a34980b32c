"""/family end to end: a signed slash command into the running bot (`pinbot run`, HTTP mode,
its own process) until the family card reaches the fake Slack server. Floor: the bare Bolt app
of bench/floor_app.py on the same server setup, acking and posting a fixed message.

Requests go one at a time, each in a channel of its own so its card is recognised on arrival.
Queries are the mixed ones of the search benchmark that open one family (a card, not a list).
"""

from __future__ import annotations

import itertools
import random
import time

from bench.procs import STAFF_IDS, BenchSlack, Served, serve, slack_and_smtp
from bench.queries import mixed_queries
from bench.stats import Report, Result, Summary, ratio
from bot.db import Database
from bot.lookup.search import is_single_match, search_families

WARMUP = 20
_channels = itertools.count(1)


def card_queries(database_url: str, count: int) -> list[str]:
    """Queries that open exactly one family (checked with the real search)."""
    database = Database(database_url)
    try:
        with database.read_session() as session:
            found = []
            for query in mixed_queries(session, 3 * count + WARMUP, seed=23):
                if is_single_match(search_families(session, query.text)):
                    found.append(query.text)
    finally:
        database.dispose()
    return found


def _one(served: Served, slack: BenchSlack, text: str, user: str) -> tuple[float, float]:
    """(ack seconds, card seconds) for one /family."""
    channel = f"CE2E{next(_channels):07d}"
    waiter = slack.arrivals.expect("message", channel)
    start = time.perf_counter()
    response = served.sender.command(
        "/family", text, channel_id=channel, user_id=user, response_url=slack.response_url()
    )
    acked = time.perf_counter()
    if response.status != 200:
        raise RuntimeError(f"/family answered {response.status}: {response.text[:200]}")
    return acked - start, waiter.wait() - start


def measure(served: Served, slack: BenchSlack, texts: list[str]) -> tuple[list[float], list[float]]:
    rng = random.Random(3)
    users = STAFF_IDS[:10]
    for text in texts[:WARMUP]:
        _one(served, slack, text, rng.choice(users))
    acks, cards = [], []
    for text in texts[WARMUP:]:
        ack, card = _one(served, slack, text, rng.choice(users))
        acks.append(ack)
        cards.append(card)
    return acks, cards


def run(report: Report, database_url: str, *, store: str, size: str, count: int = 300) -> Result:
    texts = card_queries(database_url, count)[: count + WARMUP]
    with slack_and_smtp() as (slack, smtp):
        with serve("floor", database_url, slack, smtp, f"{store}-{size}") as floor_app:
            _, floor_cards = measure(floor_app, slack, texts)
        with serve("bot", database_url, slack, smtp, f"{store}-{size}") as bot:
            acks, cards = measure(bot, slack, texts)
    card, floor = Summary.of(cards), Summary.of(floor_cards)
    ack = Summary.of(acks)
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
        },
    )
    return report.add(
        result,
        [
            f"card    {card.text()}  (signed /family -> card at fake Slack)",
            f"floor   {floor.text()}  (bare Bolt app: ack + fixed message)",
            f"ratio to floor: median {result.figures['ratio_median']:.1f}x  "
            f"p95 {result.figures['ratio_p95']:.1f}x",
            f"ack     {ack.text()}",
        ],
    )
