"""Mutated messages through the FeedApplier on a real database: every one is answered AA, AE
or AR without an exception, and a message not answered AA writes nothing but its log row —
never a partial write."""

from __future__ import annotations

from collections.abc import Iterator

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from bot.config import load_settings
from bot.db import Database
from bot.feed.apply import FeedApplier
from models import Appointment, AuditEvent, Family, FeedMessage, Guardian, NameFix, Patient
from tests.core.feed.test_fuzz import frames

TABLES = (Family, Patient, Guardian, Appointment, NameFix, AuditEvent)


@pytest.fixture
def applier(database: Database, database_url: str) -> Iterator[FeedApplier]:
    yield FeedApplier(database, load_settings({"DATABASE_URL": database_url, "HL7_PORT": "1"}))


def _counts(database: Database) -> tuple[int, ...]:
    with database.read_session() as session:
        return tuple(
            int(session.exec(select(func.count()).select_from(table)).one()) for table in TABLES
        )


def _logged(database: Database) -> int:
    with database.read_session() as session:
        return int(session.exec(select(func.count()).select_from(FeedMessage)).one())


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(frames, min_size=1, max_size=3))
def test_mutated_messages_apply_whole_or_not_at_all(
    applier: FeedApplier, batch: list[bytes]
) -> None:
    database = applier.database
    for raw in batch:
        before, logged = _counts(database), _logged(database)
        receipt = applier.receive(raw)
        ack = hl7.parse(receipt.ack.decode("latin-1"))
        assert str(ack["MSA.1"]) == receipt.code.value
        if receipt.code.value != "AA":
            assert _counts(database) == before
            assert _logged(database) == logged + 1
        elif receipt.duplicate:
            assert (_counts(database), _logged(database)) == (before, logged)
