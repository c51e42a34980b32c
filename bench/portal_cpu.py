"""What one failed portal attempt costs, measured without the noise of a loaded machine: the
statements and round trips it sends, and the CPU it takes in the API's process and in the
database's server processes (PostgreSQL), with one client sending one request at a time.

    .venv/bin/python -m bench.portal_cpu [--store sqlite|postgresql] [--pins 10000]
        [--attempts 2000] [--http]

Without `--http` the desk (bot/portal/desk.py) is called in this process: its CPU is this
process's. With `--http` the real API (FastAPI on uvicorn, PortalApiServer) serves in this
process and an httpx client in the main thread sends; the server's CPU is the process's minus
the client thread's own. The mix is the load bench's (bench/portal_load.py): 80 % unknown PINs,
20 % a wrong date of birth, verify and redeem half and half, each from its own client_ip.

Statements are what SQLAlchemy sends (SQLite's BEGIN included; psycopg's BEGIN and COMMIT
not). "waits" on PostgreSQL are psycopg's waits on its connection: each statement, BEGIN and
COMMIT, but also switching autocommit and the pool's rollback, which send nothing — an upper
bound on round trips; the server's own log (`ALTER DATABASE … SET log_statement = 'all'`)
gives the exact count.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import event, insert, text

from bench import stores
from bot.config import load_settings
from bot.db import Database, table_of
from bot.delivery.worker import Outbox
from bot.issuing.gateway import generate_pin, pin_lookup
from bot.portal.answers import Attempt, NoMatch
from bot.portal.clients import create_client
from bot.portal.desk import PortalDesk
from bot.secret import KeyPurpose
from bot.services import Services
from handlers.notices import render_notice
from models import Family, IssueBatch, Patient, Pin, PinStatus, utcnow
from tests.support.portal import serve_portal_api

WRONG_DOB_SHARE = 0.2


class Counting:
    """Statements SQLAlchemy sends, and psycopg's waits on its connection (PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.statements: Counter[str] = Counter()
        self.round_trips = 0
        self._lock = threading.Lock()

        def on_execute(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, many: bool) -> None:
            with self._lock:
                self.statements[statement.split()[0].upper() + (" (many)" if many else "")] += 1

        event.listen(database.engine, "before_cursor_execute", on_execute)
        self._unpatch: Callable[[], None] = lambda: None
        if not database.is_sqlite:
            import psycopg

            real_wait = psycopg.Connection.wait

            def wait(connection: Any, *args: Any, **kwargs: Any) -> Any:
                with self._lock:
                    self.round_trips += 1
                return real_wait(connection, *args, **kwargs)

            psycopg.Connection.wait = wait  # type: ignore[method-assign]

            def unpatch() -> None:
                psycopg.Connection.wait = real_wait  # type: ignore[method-assign]

            self._unpatch = unpatch

    def reset(self) -> None:
        with self._lock:
            self.statements.clear()
            self.round_trips = 0

    def close(self) -> None:
        self._unpatch()


def backends_cpu(database: Database) -> float:
    """CPU seconds used so far by the PostgreSQL server processes serving this database."""
    if database.is_sqlite:
        return 0.0
    with database.engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        total = 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total


def attempts(targets: list[tuple[str, date]], count: int) -> Iterator[tuple[str, Attempt]]:
    rng = random.Random(5)
    wrong = itertools.cycle(targets)
    for n in range(count):
        ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        call = "verify" if rng.random() < 0.5 else "redeem"
        if rng.random() < WRONG_DOB_SHARE:
            pin, dob = next(wrong)
            yield call, Attempt(pin=pin, dob=dob + timedelta(days=1), client_ip=ip)
        else:
            yield call, Attempt(pin="ZZZZ-ZZZZ", dob=date(2015, 5, 5), client_ip=ip)


def _load_pins(services: Services, pins: int, known: int) -> list[tuple[str, date]]:
    """`pins` children, one family, each with an active PIN (placeholder hash: a failure never
    runs scrypt); the plaintext and date of birth of the first `known` of them."""
    key = services.secret.derive(KeyPurpose.PIN_LOOKUP)
    rng = random.Random(7)
    now = utcnow()
    plaintexts = [generate_pin() for _ in range(pins)]
    dobs = [date(2010, 1, 1) + timedelta(days=rng.randrange(6000)) for _ in range(pins)]
    with services.database.transaction() as session:
        session.execute(insert(table_of(Family)), [{"account_number": "CPU-0"}])
        session.execute(
            insert(table_of(IssueBatch)),
            [{"family_id": 1, "idempotency_key": "cpu", "issued_by": "bench", "mode": "p"}],
        )
        session.execute(
            insert(table_of(Patient)),
            [
                {
                    "family_id": 1,
                    "chart_id": f"C{n}",
                    "first_name": "Cpu",
                    "last_name": f"C{n}",
                    "dob": dobs[n],
                }
                for n in range(pins)
            ],
        )
        session.execute(
            insert(table_of(Pin)),
            [
                {
                    "patient_id": n + 1,
                    "batch_id": 1,
                    "pin_hash": "scrypt$placeholder",
                    "lookup": pin_lookup(key, plaintexts[n]),
                    "delivery": "printed",
                    "issued_by": "bench",
                    "issued_at": now,
                    "expires_at": now + timedelta(days=90),
                    "status": PinStatus.ACTIVE,
                }
                for n in range(pins)
            ],
        )
    return list(zip(plaintexts[:known], dobs[:known], strict=True))


def run(url: str, pins: int, count: int, http: bool) -> None:
    settings = load_settings({"DATABASE_URL": url})
    database = Database(url)
    outbox = Outbox(database, settings, slack=None, render_notice=render_notice)  # type: ignore[arg-type]
    services = Services(settings=settings, database=database, outbox=outbox)
    # Wrong dates of birth: 4 per PIN at most (the fifth locks), so enough PINs for the run.
    targets = _load_pins(services, pins, known=count // 4 + 60)
    stores.analyze(url)
    # Each key sees fewer than its limit of failures in a row (throttle.CLIENT_RULE).
    with database.transaction() as session:
        keys = [
            create_client(
                session,
                name=f"cpu-{n}",
                lookup_key=services.secret.derive(KeyPurpose.API_KEY_LOOKUP),
                now=utcnow(),
            )
            for n in range((count + 200) // 90 + 1)
        ]
    rotation = itertools.cycle(keys)
    desk = PortalDesk(services)
    counting = Counting(database)

    def one(call: str, attempt: Attempt) -> None:
        key = next(rotation)
        try:
            if call == "verify":
                desk.verify(key, attempt)
            else:
                desk.redeem(key, attempt, "cpu-account")
        except NoMatch:
            return
        raise AssertionError("a failure was answered otherwise")

    with serve_portal_api(services) if http else nullcontext(None) as base:
        client = httpx.Client(base_url=base or "", timeout=30)

        def send(call: str, attempt: Attempt) -> None:
            body: dict[str, str] = {
                "pin": attempt.pin,
                "dob": attempt.dob.isoformat(),
                "client_ip": attempt.client_ip or "",
            }
            if call == "redeem":
                body["portal_account_id"] = "cpu-account"
            response = client.post(
                f"/portal/v1/pins/{call}",
                json=body,
                headers={"Authorization": f"Bearer {next(rotation)}"},
            )
            assert response.status_code == 404, response.text

        act = send if http else one
        warm = list(attempts(targets[-10:], 200))
        for call, attempt in warm:  # statements prepared, caches warm
            act(
                call,
                Attempt(
                    attempt.pin,
                    attempt.dob,
                    client_ip=f"11{attempt.client_ip[2:]}" if attempt.client_ip else None,
                ),
            )
        counting.reset()
        work = list(attempts(targets[:-10], count))
        server_before, process_before, own_before = (
            backends_cpu(database),
            time.process_time(),
            time.thread_time(),
        )
        started = time.perf_counter()
        for call, attempt in work:
            act(call, attempt)
        wall = time.perf_counter() - started
        process = time.process_time() - process_before
        own = time.thread_time() - own_before
        server = backends_cpu(database) - server_before
        client.close()
    counting.close()
    api = process - own if http else process
    print(
        f"portal_cpu, {database.engine.dialect.name}, {pins} PINs, {count} failed attempts"
        f"{' over HTTP' if http else ' (desk, in process)'}: {wall / count * 1000:.2f} ms each"
        f" end to end; API process CPU {api / count * 1000:.2f} ms"
        + (f" (client {own / count * 1000:.2f} ms)" if http else "")
        + (
            f"; PostgreSQL backends {server / count * 1000:.2f} ms"
            if not database.is_sqlite
            else ""
        )
    )
    statements = sum(counting.statements.values())
    print(
        f"  per failure: {statements / count:.2f} statements"
        + (f", {counting.round_trips / count:.2f} psycopg waits" if not database.is_sqlite else "")
        + "  ("
        + ", ".join(f"{k} {n / count:.2f}" for k, n in sorted(counting.statements.items()))
        + ")"
    )
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=stores.STORES, default="sqlite")
    parser.add_argument("--pins", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--http", action="store_true", help="through the served API")
    args = parser.parse_args()
    with stores.empty_store(args.store, "portal_cpu") as url:
        run(url, args.pins, args.attempts, args.http)


if __name__ == "__main__":
    main()
