"""Finding the PIN a parent typed, and judging an attempt against it (SPEC §11).

Every attempt does the same work whatever its fate: one HMAC of the normalized PIN, one index
seek on `pin.lookup`, and one look for pre-API PINs of children born that day. No attempt that
the seek answers runs scrypt, failure or success: the lookup is HMAC-SHA256 under a key that
is not in the database, and issuance never repeats a lookup already on record
(bot/issuing/issuance.py), so the row it finds IS the PIN typed — a second, slow check of the
same fact would prove nothing more. It would only cost 40 ms of CPU and 16 MiB per success,
and let anyone holding one valid PIN and date of birth make pinbot spend that at will (a
success clears the guessing counters). scrypt stays what protects the PINs at rest, in a copy
of the database without the key.

PINs issued before this release have no lookup value (their plaintext is gone). They keep
working: when the seek finds nothing, the active pre-API PINs of patients born on the typed
date (at most `LEGACY_CANDIDATES`, newest first) are checked with scrypt, and a match gets its
lookup written, so it is found by the seek from then on. That costs scrypt only while such PINs
remain — they expire within PIN_TTL_DAYS or are registered — and only for a date of birth that
has one; what the extra time can tell is "some child born that day has a pre-release PIN", never
anything about the PIN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Select,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    union_all,
    update,
)
from sqlalchemy import select as core_select
from sqlmodel import Session, col

from bot.db import table_of
from bot.issuing.gateway import verify_pin
from models import IssueBatch, Patient, Pin, PinStatus

LEGACY_CANDIDATES = 3
WRONG_DOBS_TO_LOCK = 5
NO_PIN = -1  # the id the wrong-DOB count is given when there is no PIN to count against


@dataclass(frozen=True)
class FoundPin:
    id: int
    status: str
    expires_at: datetime | None
    pin_hash: str
    portal_account_id: str | None
    patient_id: int
    family_id: int
    batch_id: int
    dob: date
    # The child, for a success's answer and the family thread's notice (read by the same seek).
    chart_id: str
    first_name: str
    middle_name: str
    last_name: str
    sex: str
    # A pre-API PIN found by the fallback (scrypt matched it): it gets its lookup on success.
    needs_lookup: bool = False


class Verdict(StrEnum):
    MATCH = "match"  # active, unexpired, right date of birth
    REGISTERED = "registered"  # right PIN and date of birth, redeemed by a portal account
    WRONG_DOB = "wrong_dob"
    UNKNOWN = "unknown"
    NOT_ACTIVE = "not_active"  # expired, revoked, locked, registered before the API


def _found_columns() -> Select[*tuple[Any, ...]]:
    return (
        core_select(
            col(Pin.id),
            col(Pin.status),
            col(Pin.expires_at),
            col(Pin.pin_hash),
            col(Pin.portal_account_id),
            col(Pin.patient_id),
            col(Patient.family_id),
            col(Pin.batch_id),
            col(Patient.dob),
            col(Patient.chart_id),
            col(Patient.first_name),
            col(Patient.middle_name),
            col(Patient.last_name),
            col(Patient.sex),
        )
        .select_from(Pin)
        .join(Patient, col(Patient.id) == col(Pin.patient_id))
    )


_BY_LOOKUP = _found_columns().where(col(Pin.lookup) == bindparam("lookup")).limit(1)
_LEGACY_ORDER = (col(Pin.issued_at).desc(),)


def _legacy(status: Any, no_lookup: Any) -> Select[*tuple[Any, ...]]:
    return (
        _found_columns()
        .where(col(Patient.dob) == bindparam("dob"), status == PinStatus.ACTIVE, no_lookup)
        .order_by(*_LEGACY_ORDER)
        .limit(LEGACY_CANDIDATES)
    )


def _both(legacy: Select[*tuple[Any, ...]]) -> CompoundSelect[*tuple[Any, ...]]:
    """The seek and the pre-API candidates in one statement (one round trip fewer on every
    attempt), each row saying which it came from. Each side is a subquery: SQLite allows no
    LIMIT on a bare member of a UNION."""
    return union_all(
        core_select(_BY_LOOKUP.add_columns(literal(True).label("by_lookup")).subquery()),
        core_select(legacy.add_columns(literal(False).label("by_lookup")).subquery()),
    )


# PostgreSQL plans from its statistics. SQLite has none (the bot never runs ANALYZE) and drove
# the pre-API look from the status index — every active PIN, 20 ms at 100k — so there
# `status || ''` and `coalesce(lookup, '')` take those indexes out of its choice and the date
# of birth leads (a few dozen children a day at 250k). The written-out form costs PostgreSQL
# its plan (a failure went from 9 to 30 ms), hence one statement per dialect. Built once:
# every attempt runs one.
_FIND = {
    "postgresql": _both(_legacy(col(Pin.status), col(Pin.lookup).is_(None))),
    "sqlite": _both(
        _legacy(
            col(Pin.status).op("||")(literal_column("''")),
            func.coalesce(col(Pin.lookup), "") == "",
        )
    ),
}


def find(dialect: str) -> CompoundSelect[*tuple[Any, ...]]:
    """The statement that looks for the PIN (parameters `lookup` and `dob`): its rows go to
    `pick`. The desk runs it inside its one read statement (bot/portal/desk.py)."""
    return _FIND[dialect]


FOUND_COLUMNS = len(fields(FoundPin)) - 1  # a row's FoundPin, then `by_lookup`


def pick(rows: Sequence[Sequence[Any]], typed: str) -> FoundPin | None:
    """The PIN typed, from `find`'s rows (each a FoundPin's columns, then `by_lookup`): the
    row the seek found, else a pre-API candidate whose scrypt hash matches."""
    found = [FoundPin(*row[:-1]) for row in rows if row[-1]]
    if found:
        return found[0]
    for candidate in (FoundPin(*row[:-1]) for row in rows if not row[-1]):
        if verify_pin(typed, candidate.pin_hash):
            return replace(candidate, needs_lookup=True)
    return None


def find_pin(connection: Connection, *, lookup: str, typed: str, dob: date) -> FoundPin | None:
    rows = connection.execute(find(connection.dialect.name), {"lookup": lookup, "dob": dob}).all()
    return pick(rows, typed)


def judge(found: FoundPin | None, dob: date, now: datetime) -> Verdict:
    if found is None:
        return Verdict.UNKNOWN
    if found.status == PinStatus.REGISTERED and found.portal_account_id is not None:
        return Verdict.REGISTERED if found.dob == dob else Verdict.WRONG_DOB
    if found.status != PinStatus.ACTIVE or (found.expires_at and found.expires_at <= now):
        return Verdict.NOT_ACTIVE
    return Verdict.MATCH if found.dob == dob else Verdict.WRONG_DOB


def backfill_lookup(session: Session, found: FoundPin, lookup: str) -> None:
    """A pre-API PIN found by the fallback gets its lookup: next time it is one seek."""
    if found.needs_lookup:
        session.execute(
            update(Pin).where(col(Pin.id) == found.id, col(Pin.lookup).is_(None)),
            {"lookup": lookup},
        )


_COUNT_WRONG_DOB = (
    update(table_of(Pin))
    .where(col(Pin.id) == bindparam("pin_id"), col(Pin.status) == PinStatus.ACTIVE)
    .values(
        wrong_dob_count=col(Pin.wrong_dob_count) + 1,
        status=case(
            (col(Pin.wrong_dob_count) + 1 >= WRONG_DOBS_TO_LOCK, literal(PinStatus.LOCKED.value)),
            else_=col(Pin.status),
        ),
        status_changed_at=case(
            (col(Pin.wrong_dob_count) + 1 >= WRONG_DOBS_TO_LOCK, bindparam("now")),
            else_=col(Pin.status_changed_at),
        ),
    )
    .returning(col(Pin.status))
)


def count_wrong_dob(session: Session, pin_id: int, now: datetime) -> bool:
    """Count a wrong date of birth against an active PIN; True when this one locked it. Every
    failed attempt runs this statement (with NO_PIN when there is nothing to count), so a
    wrong date of birth does the same work as any other failure."""
    status = session.connection().execute(_COUNT_WRONG_DOB, {"pin_id": pin_id, "now": now}).scalar()
    return status == PinStatus.LOCKED


_REGISTER = (
    update(table_of(Pin))
    .where(col(Pin.id) == bindparam("pin_id"), col(Pin.status) == PinStatus.ACTIVE)
    .values(
        status=PinStatus.REGISTERED,
        status_changed_at=bindparam("now"),
        portal_account_id=bindparam("account"),
    )
    .returning(col(Pin.id))
)


def register(session: Session, pin_id: int, portal_account_id: str, now: datetime) -> bool:
    """Mark an active PIN registered to the account; True for the one caller that did it
    (a conditional UPDATE: replicas racing on one PIN get one winner)."""
    result = session.connection().execute(
        _REGISTER, {"pin_id": pin_id, "now": now, "account": portal_account_id}
    )
    return result.first() is not None


def current_state(session: Session, pin_id: int) -> tuple[str, str | None]:
    """The PIN's status and portal account now, inside the recording transaction."""
    row = session.execute(
        core_select(col(Pin.status), col(Pin.portal_account_id)).where(col(Pin.id) == pin_id)
    ).one()
    return row[0], row[1]


def recipient_of(session: Session, batch_id: int) -> int | None:
    return session.execute(
        core_select(col(IssueBatch.recipient_guardian_id)).where(col(IssueBatch.id) == batch_id)
    ).scalar()
