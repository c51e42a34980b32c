"""Ack under load, and the bot's memory after it.

20 simulated staff, each a thread of its own in this process, for 30 s against the running
bot (`pinbot run`, HTTP mode, its own process): /family with the mixed queries (60%), "Open"
on a search result (25%, posts a card) and "Issue PINs…" on a card (15%, opens the dialog).
Ack latency is the HTTP round trip of each signed request (Slack's 3-second clock).

Two pacings: "paced" — each person acts, waits 0.5-1.5 s (reading the card, talking to the
parent), acts again: about 20 actions a second in all, a very busy front desk; "saturated" —
no pause at all, 20 requests always in flight, to show where the 2-core machine tops out.

Memory: the bot process's peak resident set (VmHWM) after the loads; its resident set after
start-up and one warm-up search for comparison.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from bench.procs import STAFF_IDS, Served, serve, slack_and_smtp
from bench.queries import mixed_queries
from bench.stats import Report, Result, Summary
from bot.db import Database
from handlers.ids import FamilyIds, IssueIds
from handlers.payloads import FamilyRef
from tests.support.slack_requests import block_actions_payload

STAFF = 20
SLACK_LIMIT = 3.0
WARMUP = 20  # /family requests before the load: name-key cache, user look-ups, pools


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def add(self, kind: str, seconds: float, ok: bool) -> None:
        with self.lock:
            self.acks.setdefault(kind, []).append(seconds)
            self.errors += not ok


def _staff(
    served: Served,
    index: int,
    queries: list[str],
    family_ids: list[int],
    deadline: float,
    pause: tuple[float, float],
    tally: _Tally,
    response_url: object,
    seed: int,
) -> None:
    rng = random.Random(seed)
    user, channel = STAFF_IDS[index], f"CLOAD{index:02d}"
    sender = served.sender
    while time.perf_counter() < deadline:
        roll = rng.random()
        start = time.perf_counter()
        if roll < 0.60:
            kind = "/family"
            response = sender.command(
                "/family",
                rng.choice(queries),
                channel_id=channel,
                user_id=user,
                response_url=response_url(),
            )  # type: ignore[operator]
        else:
            kind = "open" if roll < 0.85 else "issue pins"
            action = FamilyIds.OPEN if kind == "open" else IssueIds.OPEN_DIALOG
            value = FamilyRef(family_id=rng.choice(family_ids)).dump()
            response = sender.block_action(
                block_actions_payload(
                    action,
                    value,
                    channel_id=channel,
                    user_id=user,
                    message_ts=f"1700000000.{rng.randrange(10**6):06d}",
                    response_url=response_url("actions"),
                )
            )  # type: ignore[operator]
        tally.add(kind, time.perf_counter() - start, response.status == 200)
        if pause[1]:
            time.sleep(rng.uniform(*pause))


def _load(
    served: Served,
    queries: list[str],
    family_ids: list[int],
    seconds: float,
    pause: tuple[float, float],
    response_url: object,
) -> _Tally:
    tally = _Tally()
    deadline = time.perf_counter() + seconds
    threads = [
        threading.Thread(
            target=_staff,
            args=(served, i, queries, family_ids, deadline, pause, tally, response_url, 100 + i),
        )
        for i in range(STAFF)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def run(
    report: Report,
    database_url: str,
    *,
    store: str,
    size: str,
    seconds: float = 30.0,
    saturated: bool = True,
    warmup: int = WARMUP,
) -> list[Result]:
    database = Database(database_url)
    try:
        with database.read_session() as session:
            drawn = mixed_queries(session, 400, seed=31)
    finally:
        database.dispose()
    queries = [q.text for q in drawn]
    family_ids = [q.family_id for q in drawn]
    results = []
    with (
        slack_and_smtp() as (slack, smtp),
        serve("bot", database_url, slack, smtp, f"load-{store}-{size}") as bot,
    ):
        for query in queries[:warmup]:  # warm up: name-key cache, user look-ups, pools
            bot.sender.command(
                "/family", query, channel_id="CLOADWARM", response_url=slack.response_url()
            )
        rss_start = bot.rss_kib()
        pacings = [("paced", (0.5, 1.5))] + ([("saturated", (0.0, 0.0))] if saturated else [])
        for name, pause in pacings:
            tally = _load(bot, queries, family_ids, seconds, pause, slack.response_url)
            all_acks = [s for values in tally.acks.values() for s in values]
            ack = Summary.of(all_acks)
            over = sum(1 for s in all_acks if s > SLACK_LIMIT)
            by_kind = {kind: Summary.of(values) for kind, values in tally.acks.items()}
            result = Result(
                f"ack_load_{name}",
                store,
                size,
                {
                    "ack": ack,
                    "over_3s": over,
                    "requests": len(all_acks),
                    "per_second": len(all_acks) / seconds,
                    "errors": tally.errors,
                    "by_kind": by_kind,
                    "seconds": seconds,
                    "staff": STAFF,
                },
            )
            results.append(
                report.add(
                    result,
                    [
                        f"ack     {ack.text()}",
                        f"over 3 s: {over}   errors: {tally.errors}   "
                        f"{len(all_acks) / seconds:.1f} requests/s "
                        f"from {STAFF} staff for {seconds:.0f} s",
                        "by kind (p99 ms): "
                        + "  ".join(
                            f"{kind} {s.p99:.0f} (n={s.count})"
                            for kind, s in sorted(by_kind.items())
                        ),
                    ],
                )
            )
        time.sleep(1)  # let the last listeners finish after their acks
        rss = bot.rss_kib()
    memory = Result(
        "memory",
        store,
        size,
        {
            "peak_rss_mib": rss["VmHWM"] / 1024,
            "rss_after_load_mib": rss["VmRSS"] / 1024,
            "rss_after_start_mib": rss_start["VmRSS"] / 1024,
        },
    )
    results.append(
        report.add(
            memory,
            [
                f"peak RSS of the bot process: {rss['VmHWM'] / 1024:.0f} MiB "
                f"(after start-up and warm-up {rss_start['VmRSS'] / 1024:.0f} MiB, "
                f"after the load {rss['VmRSS'] / 1024:.0f} MiB)",
            ],
        )
    )
    return results
