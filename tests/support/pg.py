"""Scratch PostgreSQL databases for tests and benchmarks: created on the server an admin URL
points at, dropped (with any connection left) when done."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from bot.db import Database, normalize_url, upgrade


@contextmanager
def scratch_database(admin_url: str, prefix: str, *, migrate: bool = False) -> Iterator[str]:
    """Yield the URL of a new database named `<prefix>_<random>`; migrated when asked."""
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            database = Database(url)
            upgrade(database)
            database.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
