"""Alembic environment: runs on the connection bot.db.upgrade hands in, or on the URL from
alembic.ini / DATABASE_URL when a developer runs `alembic` directly."""

import os

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from bot.db import make_engine

target_metadata = SQLModel.metadata
config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    with make_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
