"""The portal API's front desk (SPEC §11): verify and redeem a PIN + date of birth for an
authenticated client, with the guessing limits, the audit and what staff are told.

Each attempt runs in two steps. First, one read statement, outside any transaction: whose key,
is the source or client blocked, the PIN's rows (bot/portal/pins.py) — then, the connection
given back, the attempt is judged, so the scrypt a pre-API PIN still needs never holds a
connection nor SQLite's write lock while staff work. Second, one short write transaction
records the outcome: under the throttle rows' lock it may still refuse (429), then counts the
failure (or clears the counters), counts a wrong date of birth (locking the PIN at 5),
registers a redeemed PIN with its conditional UPDATE, queues the thread notices and writes
the audit row (a failure's writes after the lock are one statement on PostgreSQL:
bot/portal/failures.py). Every failure takes the same statements in the same order, whatever
its kind, and ends in the one `NoMatch`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, text, true
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from bot import audit
from bot.delivery.outbox import queued_work
from bot.issuing.gateway import pin_lookup
from bot.portal import clients, failures, pins, telling, throttle
from bot.portal.answers import (
    AlreadyRegistered,
    Attempt,
    Client,
    GuardianFacts,
    NoMatch,
    PatientFacts,
    PortalRefusal,
    Redeemed,
    TooManyAttempts,
    Unauthorized,
    Verified,
)
from bot.portal.pins import FoundPin, Verdict
from bot.secret import KeyPurpose
from bot.services import Services
from models import Family, Guardian, IssueBatch, Pin, PinStatus

log = logging.getLogger(__name__)
AnswerT = TypeVar("AnswerT", Verified, Redeemed)


@dataclass(frozen=True)
class _Call:
    """One verify or redeem: who asks, what they sent, when, and the counters it belongs to."""

    name: str  # "verify" | "redeem"
    client: Client
    attempt: Attempt
    now: datetime

    @property
    def subjects(self) -> throttle.Subjects:
        return throttle.Subjects.of(client_id=self.client.id, client_ip=self.attempt.client_ip)

    @property
    def succeeds_on(self) -> frozenset[Verdict]:
        """The verdicts this call can answer with a success: a redeem also answers the
        account that already redeemed the PIN; a verify only an active PIN."""
        if self.name == "redeem":
            return frozenset({Verdict.MATCH, Verdict.REGISTERED})
        return frozenset({Verdict.MATCH})


@dataclass(frozen=True)
class _Judged:
    found: FoundPin | None
    verdict: Verdict
    lookup: str
    succeeds_on: frozenset[Verdict]

    @property
    def hopeful(self) -> bool:
        """Right PIN and date of birth, in a state this call can succeed on. Anything else is
        a failure and does a failure's work: the counters are not cleared (a parent's own
        redeemed PIN must not reset the guessing limits)."""
        return self.found is not None and self.verdict in self.succeeds_on


def _read_statement(dialect: str) -> Select[*tuple[Any, ...]]:
    """An attempt's whole read phase in one statement, one round trip: the live client of the
    key, the later running block of its source and of itself, and the PIN's rows
    (`pins.find`, none to many) beside it — no rows at all for an unknown or revoked key.
    Every attempt runs it whole, whatever it finds."""
    client_query = clients.by_key()
    blocked = throttle.latest_block(client_query.selected_columns[0])
    client = client_query.add_columns(blocked.label("blocked_until")).subquery("client")
    found = pins.find(dialect).subquery("found")
    return core_select(client, found).select_from(client.outerjoin(found, true()))


# A row of `_READ`: the client's id, name and last use, its block, then the PIN's columns.
_BLOCKED, _FOUND = 3, 4
_READ = {dialect: _read_statement(dialect) for dialect in ("postgresql", "sqlite")}


class PortalDesk:
    """Built once per process from the services; thread-safe (each call owns its sessions)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.pin_key = services.secret.derive(KeyPurpose.PIN_LOOKUP)
        self.client_key = services.secret.derive(KeyPurpose.API_KEY_LOOKUP)

    def healthy(self) -> bool:
        try:
            with self.services.database.read_session() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # any failure to answer is "not healthy", never a 500
            log.warning("portal health: database did not answer")
            return False
        return True

    # -- the two calls -------------------------------------------------------------------

    def verify(self, key: str, attempt: Attempt) -> Verified:
        """`key`: the API key the request presented (Unauthorized unless a live client's)."""
        call, judged = self._judge("verify", key, attempt)
        answer: Verified | None = None
        with self.services.database.transaction() as session:
            outcome = self._admit(session, call, judged)
            found = judged.found
            if outcome is None and judged.verdict == Verdict.MATCH and found is not None:
                pin = session.get(Pin, found.id)
                if pin is not None and pin.status == found.status:  # not changed meanwhile
                    pins.backfill_lookup(session, found, judged.lookup)
                    answer = _verified(session, found, pin)
                    self._audit(session, call, "ok", found)
            if outcome is None and answer is None:
                outcome = self._failed(session, call, judged)
        return self._answer(session, outcome, answer)

    def redeem(self, key: str, attempt: Attempt, portal_account_id: str) -> Redeemed:
        call, judged = self._judge("redeem", key, attempt)
        answer: Redeemed | None = None
        with self.services.database.transaction() as session:
            outcome = self._admit(session, call, judged)
            if outcome is None and judged.hopeful and judged.found is not None:
                answer, outcome = self._register(session, judged, portal_account_id, call.now)
                if answer is not None:
                    first = "registered" if answer.first_use else "already_yours"
                    self._audit(session, call, first, judged.found)
                elif outcome is not None:
                    self._audit(session, call, "already_registered", judged.found)
            if outcome is None and answer is None:
                outcome = self._failed(session, call, judged)
        return self._answer(session, outcome, answer)

    # -- the steps -----------------------------------------------------------------------

    def _judge(self, name: str, key: str, attempt: Attempt) -> tuple[_Call, _Judged]:
        """Read only, outside any write transaction, in one statement (`_READ`): whose key,
        blocked already? which PIN — then, the connection given back, is the attempt right?"""
        if not key:
            raise Unauthorized()
        lookup = pin_lookup(self.pin_key, attempt.pin)
        now = self.services.clock()
        with self.services.database.read_connection() as connection:
            rows = connection.execute(
                _READ[connection.dialect.name],
                {
                    "key_hash": clients.key_hash(self.client_key, key),
                    "source": throttle.source_param(attempt.client_ip),
                    "now": now,
                    "lookup": lookup,
                    "dob": attempt.dob,
                },
            ).all()
        if not rows:
            raise Unauthorized()
        call = _Call(name, clients.client_of(rows[0]), attempt, now)
        wait = throttle.seconds_until(rows[0][_BLOCKED], now)
        if wait:
            with self.services.database.transaction() as session:
                self._audit(session, call, "too_many_attempts")
            raise TooManyAttempts(wait)
        found = pins.pick([row[_FOUND:] for row in rows if row[_FOUND] is not None], attempt.pin)
        verdict = pins.judge(found, call.attempt.dob, call.now)
        return call, _Judged(found, verdict, lookup, call.succeeds_on)

    def _admit(self, session: Session, call: _Call, judged: _Judged) -> PortalRefusal | None:
        """A success checks the blocks with a plain read and clears the counters now, before
        it touches the PIN's row; a failure decides under the counters' lock, in `_failed`,
        also before the PIN's row. One order of locks on every path: no deadlock between a
        redemption and a wrong date of birth for the same PIN (PostgreSQL)."""
        clients.mark_used(session, call.client, call.now)
        if not judged.hopeful:
            return None
        wait = throttle.blocked_for(session.connection(), call.subjects, call.now)
        if wait is None:
            throttle.clear(session, call.subjects)
            return None
        self._audit(session, call, "too_many_attempts")
        return TooManyAttempts(wait)

    def _register(
        self, session: Session, judged: _Judged, portal_account_id: str, now: datetime
    ) -> tuple[Redeemed | None, AlreadyRegistered | None]:
        """(the answer, None) on success; (None, 409) for another account; (None, None)
        when the PIN is no longer the parent's to redeem (a failure)."""
        found = judged.found
        assert found is not None
        if judged.verdict == Verdict.MATCH and pins.register(
            session, found.id, portal_account_id, now
        ):
            pins.backfill_lookup(session, found, judged.lookup)
            pin = session.get(Pin, found.id)
            assert pin is not None
            self.services.gateway.mark_registered(pin)
            telling.mark_has_account(session, pins.recipient_of(session, found.batch_id), now)
            telling.tell_family_about(session, found, "registered", now)
            return _redeemed(found, first_use=True), None
        # Registered already (before this attempt, or by a racing one just now).
        state, account = pins.current_state(session, found.id)
        if state != PinStatus.REGISTERED or account is None:
            return None, None
        if account == portal_account_id:
            return _redeemed(found, first_use=False), None
        return None, AlreadyRegistered()

    def _failed(self, session: Session, call: _Call, judged: _Judged) -> NoMatch | TooManyAttempts:
        """Every failure kind runs exactly these statements."""
        subjects = call.subjects
        counters = throttle.locked_counters(session, subjects, call.now)
        wait = throttle.refused_for(counters, call.now)
        if wait is not None:
            self._audit(session, call, "too_many_attempts")
            return TooManyAttempts(wait)
        for counter in counters:
            blocked = throttle.count_failure(counter, subjects.rule(counter.subject), call.now)
            if (
                blocked
                and counter.subject == subjects.client
                and throttle.should_tell_staff(counter, call.now)
            ):
                telling.tell_client_slowed(
                    session,
                    self.services.settings,
                    call.client,
                    failures=counter.failures,
                    retry_after_seconds=throttle.refused_for([counter], call.now) or 0,
                    now=call.now,
                )
        found = judged.found
        wrong_dob = found.id if found and judged.verdict == Verdict.WRONG_DOB else pins.NO_PIN
        locked = failures.record_failure(
            session,
            counters,
            pin_id=wrong_dob,
            audit_row=self._audit_row(call, "no_match", found, reason=judged.verdict),
            now=call.now,
        )
        if locked and found is not None:
            telling.tell_family_about(session, found, "locked", call.now)
            audit.record(
                session,
                actor=call.client.actor,
                action="portal.pin_locked",
                family_id=found.family_id,
                patient_id=found.patient_id,
                pin_id=found.id,
            )
        return NoMatch()

    def _audit(
        self,
        session: Session,
        call: _Call,
        outcome: str,
        found: FoundPin | None = None,
        reason: str | None = None,
    ) -> None:
        session.connection().execute(audit.INSERT, self._audit_row(call, outcome, found, reason))

    def _audit_row(
        self, call: _Call, outcome: str, found: FoundPin | None = None, reason: str | None = None
    ) -> dict[str, object]:
        """Who, what, the outcome and the source; never the PIN, a name or a date of birth.
        The reason of a no_match is kept for staff; the portal only ever sees no_match."""
        details: dict[str, object] = {"outcome": outcome, "source": call.attempt.client_ip or "key"}
        if reason is not None:
            details["reason"] = str(reason)
        if found is not None:
            details["pin_id"] = found.id
        log.info("portal %s", call.name, extra={"client": call.client.id, "outcome": outcome})
        return audit.row(
            actor=call.client.actor,
            action=f"portal.{call.name}",
            family_id=found.family_id if found else None,
            patient_id=found.patient_id if found else None,
            **details,
        )

    def _answer(
        self, session: Session, outcome: PortalRefusal | None, answer: AnswerT | None
    ) -> AnswerT:
        """After commit: wake the delivery worker for queued notices, then answer."""
        if queued_work(session):
            self.services.kick()
        if outcome is not None:
            raise outcome
        assert answer is not None
        return answer


def _patient(found: FoundPin) -> PatientFacts:
    return PatientFacts(
        chart_id=found.chart_id,
        first_name=found.first_name,
        middle_name=found.middle_name,
        last_name=found.last_name,
        dob=found.dob,
        sex=found.sex,
    )


def _verified(session: Session, found: FoundPin, pin: Pin) -> Verified:
    account_number = session.exec(
        select(Family.account_number).where(Family.id == found.family_id)
    ).one()
    batch = session.get(IssueBatch, found.batch_id)
    recipient = (
        session.get(Guardian, batch.recipient_guardian_id)
        if batch and batch.recipient_guardian_id
        else None
    )
    guardian = (
        GuardianFacts(
            first_name=recipient.first_name,
            last_name=recipient.last_name,
            email=recipient.email,
            has_portal_account=recipient.has_portal_account,
        )
        if recipient
        else None
    )
    return Verified(
        pin_id=str(found.id),
        expires_at=found.expires_at,
        patient=_patient(found),
        account_number=account_number,
        guardian=guardian,
        delivery=pin.delivery,
    )


def _redeemed(found: FoundPin, *, first_use: bool) -> Redeemed:
    return Redeemed(pin_id=str(found.id), patient=_patient(found), first_use=first_use)
