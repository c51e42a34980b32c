"""Recording a failed attempt once its counters are decided (bot/portal/desk.py `_failed`): the
two guessing counters written back, a wrong date of birth counted against the PIN (locking
it at the fifth), the audit row.

On PostgreSQL that is one statement (data-modifying CTEs), where it was three round trips on
a path that runs 200 times a second under a guessing load; SQLite, in process, runs the three
plain statements (it has no DML in a WITH). The same rows either way.

Durability is unchanged: the commit waits for the WAL flush as every commit of pinbot on
PostgreSQL does. (`synchronous_commit = off` for this transaction was tried and measured, and
not kept: bench/RESULTS.md, issue 18, third pass.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

from bot import audit
from bot.db import table_of
from bot.portal import pins, throttle
from models import AuditEvent, Pin, PinStatus, PortalThrottle

_COUNTER_FIELDS = ("failures", "window_started_at", "blocked_until", "strikes", "told_at")
_AUDIT_FIELDS = ("at", "actor", "action", "family_id", "patient_id", "details")
_THROTTLE, _PIN, _AUDIT = table_of(PortalThrottle), table_of(Pin), table_of(AuditEvent)


def _save(n: int) -> str:
    assignments = ", ".join(f"{name} = :{name}{n}" for name in _COUNTER_FIELDS)
    return f"UPDATE {_THROTTLE.name} SET {assignments} WHERE subject = :subject{n}"


# PostgreSQL: the three writes in one statement, written out (SQLAlchemy's own DML CTEs left
# one of the reused statement's literal parameters unbound). It answers the PIN's status when
# a wrong date of birth counted against it: the count is pins.count_wrong_dob's statement,
# the row audit.row's. Every CTE runs once and to completion whether or not it is read.
_RECORD = text(
    f"WITH saved1 AS ({_save(1)}), saved2 AS ({_save(2)}),"
    f" audited AS (INSERT INTO {_AUDIT.name} ({', '.join(_AUDIT_FIELDS)})"
    f" VALUES ({', '.join(':' + name for name in _AUDIT_FIELDS)})),"
    f" counted AS (UPDATE {_PIN.name} SET wrong_dob_count = wrong_dob_count + 1,"
    "   status = CASE WHEN wrong_dob_count + 1 >= :to_lock THEN :locked ELSE status END,"
    "   status_changed_at = CASE WHEN wrong_dob_count + 1 >= :to_lock THEN :now"
    "     ELSE status_changed_at END"
    "   WHERE id = :pin_id AND status = :active RETURNING status)"
    " SELECT status FROM counted"
).bindparams(
    *(
        bindparam(f"{name}{n}", type_=_THROTTLE.c[name].type)
        for n in (1, 2)
        for name in ("subject", *_COUNTER_FIELDS)
    ),
    *(bindparam(name, type_=_AUDIT.c[name].type) for name in _AUDIT_FIELDS),
    bindparam("now", type_=_PIN.c.status_changed_at.type),
    bindparam("to_lock", value=pins.WRONG_DOBS_TO_LOCK),
    bindparam("locked", value=PinStatus.LOCKED.value),
    bindparam("active", value=PinStatus.ACTIVE.value),
)


def record_failure(
    session: Session,
    counters: Sequence[throttle.Counter],
    *,
    pin_id: int,
    audit_row: dict[str, Any],
    now: datetime,
) -> bool:
    """Write it all in the session's transaction; True when this failure locked the PIN
    (`pin_id`: the PIN a wrong date of birth counts against, else pins.NO_PIN)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        throttle.save(session, counters)
        locked = pins.count_wrong_dob(session, pin_id, now)
        connection.execute(audit.INSERT, audit_row)
        return locked
    first, second = counters
    params: dict[str, Any] = {
        **{f"{name}1": getattr(first, name) for name in ("subject", *_COUNTER_FIELDS)},
        **{f"{name}2": getattr(second, name) for name in ("subject", *_COUNTER_FIELDS)},
        **audit_row,
        "pin_id": pin_id,
        "now": now,
    }
    return connection.execute(_RECORD, params).scalar() == PinStatus.LOCKED
