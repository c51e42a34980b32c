"""Latency summaries and the results every benchmark reports (printed as they come, and
collected for the final table and bench/.cache/results/)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Milliseconds."""

    count: int
    median: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Summary:
        values = sorted(s * 1000 for s in seconds)
        if not values:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        return cls(
            len(values),
            statistics.median(values),
            percentile(values, 95),
            percentile(values, 99),
            values[-1],
        )

    def text(self) -> str:
        return (
            f"median {self.median:7.2f} ms  p95 {self.p95:7.2f} ms  p99 {self.p99:7.2f} ms"
            f"  (n={self.count})"
        )


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(value: float, floor: float) -> float:
    return value / floor if floor > 0 else float("inf")


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@dataclass
class Result:
    bench: str
    store: str  # "sqlite" | "postgresql" | "-"
    size: str  # "10k" | "250k" | ...
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Report:
    """Collects results; each `add` prints its block at once so a long run shows progress."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.results: list[Result] = []
        self.started = time.time()

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def add(self, result: Result, lines: list[str]) -> Result:
        self.results.append(result)
        self.say(f"[{result.bench} · {result.store} · {result.size}]")
        for line in lines:
            self.say(f"  {line}")
        for note in result.notes:
            self.say(f"  note: {note}")
        return result

    def find(self, bench: str, store: str, size: str) -> Result | None:
        return next(
            (r for r in self.results if (r.bench, r.store, r.size) == (bench, store, size)), None
        )

    def save(self, path: Path, machine: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": machine,
            "started": self.started,
            "seconds": round(time.time() - self.started, 1),
            "results": [asdict(r) for r in self.results],
        }
        path.write_text(json.dumps(payload, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
