"""Portal API latency: verify and redeem p50/p99 per outcome (a success, and each failure kind
of the one no_match answer), beside the floor — the same framework and server (FastAPI on
uvicorn, in this process) answering a constant — measured in the same run, requests of every
kind interleaved so drift hits them alike.

    .venv/bin/python -m bench.portal_bench [--patients 5000] [--pins N] [--rounds 40]
        [--database URL]

`--pins`: how many of the patients hold an active filler PIN (default: every one). Filler PINs
carry a placeholder hash (failures never run scrypt; only the targets' hashes are real), so the
table loads in seconds. Each request comes from its own client_ip and a success
comes every round, so neither the source nor the key throttle steps in. Not a timed test:
figures on a shared machine are noise; run it alone and compare against the floor.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from bench import stores
from bench.stats import Summary, timed
from bot.config import PortalApiSettings, load_settings
from bot.db import Database, table_of, upgrade
from bot.delivery.worker import Outbox
from bot.issuing.gateway import generate_pin, hash_pin, pin_lookup
from bot.portal.clients import create_client
from bot.secret import KeyPurpose
from bot.services import Services
from handlers.notices import render_notice
from models import Family, IssueBatch, Patient, Pin, PinStatus, utcnow
from portal_api.app import create_api
from portal_api.serving import PortalApiServer

LOOPBACK = PortalApiSettings(port=0, bind="127.0.0.1", tls_cert=None, tls_key=None)
KINDS = ("success", "unknown", "wrong_dob", "expired", "revoked", "locked")


def _load(
    services: Services, patients: int, pins: int, targets: int
) -> dict[str, list[tuple[str, date]]]:
    """`patients` children, the first `pins` of them with an active filler PIN, and `targets`
    real PINs per kind."""
    key = services.secret.derive(KeyPurpose.PIN_LOOKUP)
    rng = random.Random(7)
    now = utcnow()
    with services.database.transaction() as session:
        session.execute(insert(table_of(Family)), [{"account_number": "BENCH-0"}])
        session.execute(
            insert(table_of(IssueBatch)),
            [{"family_id": 1, "idempotency_key": "bench", "issued_by": "bench", "mode": "p"}],
        )
        rows = [
            {
                "family_id": 1,
                "chart_id": f"B{n}",
                "first_name": "Bench",
                "last_name": f"Child{n}",
                "dob": date(2010, 1, 1) + timedelta(days=rng.randrange(6000)),
            }
            for n in range(patients + targets * len(KINDS))
        ]
        session.execute(insert(table_of(Patient)), rows)
        filler = [
            {
                "patient_id": n + 1,
                "batch_id": 1,
                "pin_hash": "scrypt$placeholder",
                "lookup": pin_lookup(key, generate_pin()),
                "delivery": "printed",
                "issued_by": "bench",
                "issued_at": now,
                "expires_at": now + timedelta(days=90),
                "status": PinStatus.ACTIVE,
            }
            for n in range(min(pins, patients))
        ]
        session.execute(insert(table_of(Pin)), filler)
        targets_by_kind: dict[str, list[tuple[str, date]]] = defaultdict(list)
        patient_id = patients
        for kind in (*KINDS[2:], "success"):
            for _ in range(targets):
                patient_id += 1
                plaintext = generate_pin()
                expired = kind == "expired"
                status = {"revoked": PinStatus.REVOKED, "locked": PinStatus.LOCKED}.get(
                    kind, PinStatus.ACTIVE
                )
                session.execute(
                    insert(table_of(Pin)),
                    [
                        {
                            "patient_id": patient_id,
                            "batch_id": 1,
                            "pin_hash": hash_pin(plaintext) if kind == "success" else "x",
                            "lookup": pin_lookup(key, plaintext),
                            "delivery": "printed",
                            "issued_by": "bench",
                            "issued_at": now,
                            "expires_at": now + timedelta(days=-1 if expired else 90),
                            "status": status,
                        }
                    ],
                )
                targets_by_kind[kind].append((plaintext, rows[patient_id - 1]["dob"]))
    return targets_by_kind


def _floor_app() -> FastAPI:
    floor = FastAPI()

    @floor.post("/portal/v1/pins/verify")
    def constant() -> dict[str, str]:
        return {"error": "no_match"}

    return floor


def _serve(app: FastAPI) -> PortalApiServer:
    server = PortalApiServer(app, LOOPBACK)
    server.start()
    return server


def run(database_url: str, patients: int, rounds: int, pins: int | None = None) -> None:
    pins = patients if pins is None else pins
    settings = load_settings({"DATABASE_URL": database_url})
    database = Database(database_url)
    upgrade(database)
    outbox = Outbox(database, settings, slack=None, render_notice=render_notice)  # type: ignore[arg-type]
    services = Services(settings=settings, database=database, outbox=outbox)
    targets = _load(services, patients, pins, rounds)
    stores.analyze(database_url)  # as autovacuum would have (bench/portal_load.py says why)
    with database.transaction() as session:
        key = create_client(
            session,
            name="bench",
            lookup_key=services.secret.derive(KeyPurpose.API_KEY_LOOKUP),
            now=utcnow(),
        )
    bot, floor = _serve(create_api(services)), _serve(_floor_app())
    headers = {"Authorization": f"Bearer {key}"}
    times: dict[str, list[float]] = defaultdict(list)
    ips = (f"10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(10**7))
    with httpx.Client(headers=headers, timeout=30) as http:

        def post(url: str, body: dict[str, str]) -> Callable[[], object]:
            return lambda: http.post(url, json={**body, "client_ip": next(ips)})

        verify, redeem = bot.url + "/portal/v1/pins/verify", bot.url + "/portal/v1/pins/redeem"
        wrong = iter(targets["wrong_dob"] * 4)  # four wrong DOBs each: never the locking fifth
        for n in range(rounds):
            calls = {
                "floor": post(floor.url + "/portal/v1/pins/verify", {"pin": "x", "dob": "y"}),
                "verify success": post(verify, _body(targets["success"][n])),
                "verify unknown": post(verify, {"pin": generate_pin(), "dob": "2015-05-05"}),
                "verify wrong_dob": post(verify, _body(next(wrong), wrong_dob=True)),
                "verify expired": post(verify, _body(targets["expired"][n])),
                "verify revoked": post(verify, _body(targets["revoked"][n])),
                "verify locked": post(verify, _body(targets["locked"][n])),
                "redeem success": post(
                    redeem, {**_body(targets["success"][n]), "portal_account_id": f"a{n}"}
                ),
                "redeem unknown": post(
                    redeem, {"pin": generate_pin(), "dob": "2015-05-05", "portal_account_id": "a"}
                ),
            }
            for name, call in random.sample(list(calls.items()), len(calls)):
                times[name].append(timed(call))
    bot.stop()
    floor.stop()
    print(
        f"portal API, {database.engine.dialect.name}, {patients} patients, "
        f"{pins} active filler PINs, {rounds} rounds"
    )
    for name, seconds in sorted(times.items()):
        print(f"  {name:<18} {Summary.of(seconds).text()}")
    database.dispose()


def _body(target: tuple[str, date], *, wrong_dob: bool = False) -> dict[str, str]:
    pin, dob = target
    return {"pin": pin, "dob": (dob + timedelta(days=1 if wrong_dob else 0)).isoformat()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--pins", type=int, help="active filler PINs (default: one a patient)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
        run(url, args.patients, args.rounds, args.pins)


if __name__ == "__main__":
    main()
