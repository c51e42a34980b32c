"""The synthetic practice in SQLite and PostgreSQL, loaded through the real import path
(`bot.importing.importer.import_families` / `import_appointments`) and cached between runs.

Cache (gitignored): bench/.cache/practice-<families>-v<version>/ holds the CSVs, the loaded
SQLite file and a JSON marker per store with the import figures of the load that built it.
The PostgreSQL base is the database pinbot_bench_<families>. Benchmarks never touch a base:
each run works on a copy (a file copy; CREATE DATABASE … TEMPLATE), so PINs and threads
written by one run never leak into the next.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bench.generate import Practice, Sizes, generate
from bot.db import Database, normalize_url, upgrade
from bot.importing.importer import import_appointments, import_families
from models import Patient
from tests.support.pg import scratch_database

CACHE_DIR = Path(os.environ.get("PINBOT_BENCH_CACHE", Path(__file__).resolve().parent / ".cache"))
PG_ADMIN_URL = os.environ.get(
    "PINBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
VERSION = 2  # bump when the generator changes: cached files and databases are rebuilt
STORES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Load:
    """How the base was built (figures of the import that created it)."""

    store: str
    sizes: Sizes
    family_rows_per_s: float
    family_seconds: float
    appointment_rows_per_s: float
    appointment_seconds: float
    loaded_at: float
    cached: bool = False


def practice(families: int) -> Practice:
    directory = CACHE_DIR / f"practice-{families}-v{VERSION}"
    marker = directory / "sizes.json"
    families_csv, appointments_csv = directory / "families.csv", directory / "appointments.csv"
    if marker.is_file() and families_csv.is_file() and appointments_csv.is_file():
        return Practice(families_csv, appointments_csv, Sizes(**json.loads(marker.read_text())))
    generated = generate(directory, families)
    marker.write_text(json.dumps(asdict(generated.sizes)))
    return generated


def postgres_available() -> str | None:
    """None when the benchmark PostgreSQL server answers, else why not."""
    try:
        engine = create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as error:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL} ({str(error.orig).strip()[:80]})"
    return None


def _admin() -> Engine:
    return create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return normalize_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _pg_exists(admin: Engine, name: str) -> bool:
    with admin.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
        )


def _drop(admin: Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _patients(url: str) -> int:
    database = Database(url)
    try:
        with database.read_session() as session:
            return int(session.exec(select(func.count()).select_from(Patient)).one())
    finally:
        database.dispose()


def _load(url: str, data: Practice, store: str) -> Load:
    database = Database(url)
    try:
        upgrade(database)
        start = time.perf_counter()
        report = import_families(database, data.families_csv, actor="bench")
        family_seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError("\n".join(report.summary_lines()[:20]))
        start = time.perf_counter()
        report = import_appointments(database, data.appointments_csv, actor="bench")
        appointment_seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError("\n".join(report.summary_lines()[:20]))
    finally:
        database.dispose()
    return Load(
        store,
        data.sizes,
        data.sizes.family_rows / family_seconds,
        family_seconds,
        data.sizes.appointments / appointment_seconds,
        appointment_seconds,
        time.time(),
    )


def base(store: str, families: int, *, reload: bool = False) -> tuple[str, Load]:
    """The loaded base database (URL) for `families` families, built once and cached."""
    data = practice(families)
    directory = data.families_csv.parent
    marker = directory / f"{store}.json"
    if store == "sqlite":
        path = directory / "base.sqlite"
        url = f"sqlite:///{path}"
        if not reload and marker.is_file() and path.is_file():
            return url, Load(**{**_read_load(marker), "cached": True})
        for stale in directory.glob("base.sqlite*"):
            stale.unlink()
    else:
        name = f"pinbot_bench_{families}_v{VERSION}"
        url = _pg_url(name)
        admin = _admin()
        try:
            if (
                not reload
                and marker.is_file()
                and _pg_exists(admin, name)
                and _patients(url) == data.sizes.patients
            ):
                return url, Load(**{**_read_load(marker), "cached": True})
            _drop(admin, name)
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
    load = _load(url, data, store)
    if store == "postgresql":
        analyze(url)
    marker.write_text(json.dumps(asdict(load)))
    return url, load


def _read_load(marker: Path) -> dict:  # type: ignore[type-arg]
    raw = json.loads(marker.read_text())
    raw["sizes"] = Sizes(**raw["sizes"])
    return raw  # type: ignore[no-any-return]


@contextmanager
def working_copy(store: str, base_url: str, label: str) -> Iterator[str]:
    """A throwaway copy of a base database, migrated to the current schema."""
    if store == "sqlite":
        source = Path(base_url.removeprefix("sqlite:///"))
        target = source.with_name(f"work-{label}.sqlite")
        for stale in source.parent.glob(f"work-{label}.sqlite*"):
            stale.unlink()
        shutil.copyfile(source, target)
        url = f"sqlite:///{target}"
        _migrate(url)
        try:
            yield url
        finally:
            for stale in source.parent.glob(f"work-{label}.sqlite*"):
                stale.unlink()
        return
    base_name = normalize_url(base_url).database
    name = f"{base_name}_work_{label}"
    admin = _admin()
    try:
        _drop(admin, name)
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{base_name}"'))
        url = _pg_url(name)
        _migrate(url)
        yield url
    finally:
        _drop(admin, name)
        admin.dispose()


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        upgrade(database)
    finally:
        database.dispose()


def analyze(url: str) -> None:
    """PostgreSQL's autovacuum analyzes a freshly imported table within a minute or so; do it
    now so the benchmarks see the plans a running practice gets. (SQLite is left as the bot
    leaves it: it never runs ANALYZE, so there are no statistics to lean on.) A no-op for
    SQLite, so a bench that loads rows of its own can call it for either store."""
    if normalize_url(url).get_backend_name() == "sqlite":
        return
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


@contextmanager
def empty_store(store: str, name: str) -> Iterator[str]:
    """A migrated, empty database for one run (a temporary SQLite file, or a scratch
    PostgreSQL database named after `name`), removed afterwards; yields its URL."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"pinbot-{name}-") as folder:
            url = f"sqlite:///{Path(folder) / f'{name}.db'}"
            database = Database(url)
            upgrade(database)
            database.dispose()
            yield url
        return
    with scratch_database(PG_ADMIN_URL, f"pinbot_bench_{name}", migrate=True) as url:
        yield url
