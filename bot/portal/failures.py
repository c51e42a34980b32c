"""Recording a failed attempt once its counters are decided (bot/portal/desk.py `_failed`): the
two guessing counters written back, a wrong date of birth counted against the PIN (locking
it at the fifth), the audit row.

On PostgreSQL that is one statement (data-modifying CTEs), where it was three round trips on
a path that runs 200 times a second under a guessing load; SQLite, in process, runs the three
plain statements (it has no DML in a WITH). The same rows either way.

Durability, PostgreSQL: the statement also sets `synchronous_commit = off` for its own
transaction only (`set_config(..., true)`, as SET LOCAL), so the commit of a plain failure
does not wait for the WAL to reach the disk — the guarantee SQLite gives every commit here
(WAL with synchronous=NORMAL, bot/db.py): a crash of the machine (not of pinbot or of
PostgreSQL) may lose the last fraction of a second of failure counters and audit rows, and
the database stays consistent. A failure that tells staff something (a client slowed, a PIN
locked) commits durably, as every other write of pinbot does: issuance, imports, staff
actions and successful redemptions never take this path."""

from __future__ import annotations

from collections.abc import Sequence
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


# PostgreSQL: the three writes in one statement (written out: SQLAlchemy's DML CTEs would not
# run it); it answers the PIN's status when a wrong date of birth counted against it. The
# count is pins.COUNT_WRONG_DOB's, the audit row audit.row's.
_RECORD = text(
    f"WITH saved1 AS ({_save(1)}), saved2 AS ({_save(2)}),"
    f" audited AS (INSERT INTO {_AUDIT.name} ({', '.join(_AUDIT_FIELDS)})"
    f" VALUES ({', '.join(':' + name for name in _AUDIT_FIELDS)})),"
    f" counted AS (UPDATE {_PIN.name} SET wrong_dob_count = wrong_dob_count + 1,"
    "   status = CASE WHEN wrong_dob_count + 1 >= :to_lock THEN :locked ELSE status END,"
    "   status_changed_at = CASE WHEN wrong_dob_count + 1 >= :to_lock THEN :now"
    "     ELSE status_changed_at END"
    "   WHERE id = :pin_id AND status = :active RETURNING status)"
    " SELECT (SELECT status FROM counted), set_config('synchronous_commit', :commit_mode, true)"
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
_DURABLE = text("SELECT set_config('synchronous_commit', 'on', true)")


def record_failure(
    session: Session,
    counters: Sequence[throttle.Counter],
    *,
    pin_id: int,
    audit_row: dict[str, Any],
    now: Any,
    durable: bool,
) -> bool:
    """Write it all in the session's transaction; True when this failure locked the PIN
    (`pin_id`: the PIN a wrong date of birth counts against, else pins.NO_PIN). `durable`:
    the transaction has queued something for staff, so its commit waits for the disk."""
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
        "commit_mode": "on" if durable else "off",
    }
    status = connection.execute(_RECORD, params).scalar()
    locked = status == PinStatus.LOCKED
    if locked and not durable:
        connection.execute(_DURABLE)  # the family's thread is told: that commit waits for the disk
    return locked
