"""Applying feed messages (SPEC §8): one transaction per message, the ACK only after it.

`FeedApplier.receive(raw)` parses the message, and in ONE transaction writes its row in the
message log (AA) and the changes it makes (bot/feed/changes.py, appointments.py), then
answers AA. The log row is written first: the partial unique index
`uq_feedmessage_applied_content` (MSH-3 + MSH-4 + MSH-10 + the content digest, among AA rows)
refuses a second applied copy of a message at once, also when two copies race on two
connections (the second waits for the first to commit, then fails), and that copy is answered
AA with nothing applied. The digest (sha256 of the segments with MSH-7 blanked, never the
text) lets a sender that reuses control ids send another message under one: it is applied.
A message sent under a chart id an A40 merged away is applied to the survivor
(`on_surviving_charts`, bot/feed/changes.py), whatever its type.
A guardian's malformed phone or email is left out and named in an ERR of severity W. A
message that cannot be applied (AE) or is refused (AR) rolls back and is logged in a
transaction of its own. After commit the name keys of this process learn the message's names
(bot/lookup/name_keys.py) and the delivery worker is woken for any thread message the change
queued.

The message log and the log lines keep ids, types, ACK codes and field names, never text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.config import Settings
from bot.db import Database, table_of
from bot.delivery import outbox
from bot.feed.ack import AckCode, build_ack, code_for
from bot.feed.appointments import apply_appointment
from bot.feed.changes import Changes, apply_merge, apply_patient, on_surviving_charts
from bot.feed.errors import FeedError
from bot.feed.message import AccountField, parse_message
from bot.feed.records import AdtMerge, AdtPatient, FeedMessage, Header
from bot.issuing.gateway import BuiltinGateway, PortalGateway
from bot.lookup.name_keys import add_name_keys
from bot.text import clean
from models import FeedMessage as FeedMessageRow
from models import utcnow

log = logging.getLogger(__name__)
_LOG = insert(table_of(FeedMessageRow))  # built once: every message writes one


@dataclass(frozen=True)
class Receipt:
    """How one message was answered: the ACK's bytes and, for the CLI, what it says."""

    ack: bytes
    code: AckCode
    header: Header | None
    error: FeedError | None = None
    duplicate: bool = False
    warnings: tuple[FeedError, ...] = ()  # details left out of an AA

    @property
    def message_type(self) -> str:
        if self.header is None:
            return "non-HL7"
        return (
            f"{self.header.type}^{self.header.trigger}" if self.header.trigger else self.header.type
        )


class _Duplicate(Exception):
    """This message was already applied (its AA row exists)."""


class FeedApplier:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        gateway: PortalGateway | None = None,
        clock: Callable[[], datetime] = utcnow,
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.database, self.settings = database, settings
        self.gateway = gateway or BuiltinGateway()
        self.clock, self.kick = clock, kick
        account = settings.feed.account_field
        self._account_field: AccountField = "GT1-2" if account == "GT1-2" else "PID-18"

    def handle(self, raw: bytes, peer: str) -> bytes:  # noqa: ARG002 - the MLLP server's Handle
        return self.receive(raw).ack

    def receive(self, raw: bytes) -> Receipt:
        now = self.clock()
        try:
            message = parse_message(
                raw,
                chart_id_type=self.settings.feed.chart_id_type,
                account_field=self._account_field,
                today=now.astimezone(self.settings.timezone).date(),
            )
        except FeedError as error:
            return self._refused(error.header, error, now)
        header = message.header
        try:
            changes = self._commit(message, now)
        except FeedError as error:
            return self._refused(header, error, now)
        except _Duplicate:
            log.info("hl7 %s already applied: answered AA again", header.control_id[:40])
            return Receipt(build_ack(header, AckCode.AA, now=now), AckCode.AA, header, None, True)
        if changes.name_keys:
            add_name_keys(self.database, changes.name_keys)
        if changes.queued_work:
            self.kick()
        warnings = tuple(changes.warnings)
        ack = build_ack(header, AckCode.AA, warnings=warnings, now=now)
        return Receipt(ack, AckCode.AA, header, warnings=warnings)

    def _commit(self, message: FeedMessage, now: datetime) -> Changes:
        for attempt in (1, 2):
            try:
                with self.database.transaction() as session:
                    try:
                        session.execute(_LOG, _log_row(message.header, AckCode.AA, None, now))
                    except IntegrityError:
                        raise _Duplicate from None
                    changes = self._apply(session, message, now)
                    changes.queued_work = outbox.queued_work(session)
                    return changes
            except IntegrityError:
                # Two messages creating the same new family (or guardian) at once on two
                # connections: the loser's transaction rolled back; once more sees the row.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _apply(self, session: Session, message: FeedMessage, now: datetime) -> Changes:
        header, zone = message.header, self.settings.timezone
        # After an A40 the old chart id means the survivor, for every kind of message.
        body = on_surviving_charts(session, message.body)
        if isinstance(body, AdtPatient):
            return apply_patient(
                session,
                body,
                header=header,
                today=now.astimezone(zone).date(),
                now=now,
                account_field=self._account_field,
            )
        if isinstance(body, AdtMerge):
            return apply_merge(session, body, header=header, gateway=self.gateway, now=now)
        return apply_appointment(session, body, header=header, zone=zone)

    def _refused(self, header: Header | None, error: FeedError, now: datetime) -> Receipt:
        code = code_for(error)
        with self.database.transaction() as session:
            session.execute(_LOG, _log_row(header, code, error.field, now))
        log.info(
            "hl7 %s %s: %s %s",
            (header.control_id if header else "-")[:40],
            f"{header.type}^{header.trigger}" if header else "non-HL7",
            code.value,
            error.field or "-",
        )
        return Receipt(build_ack(header, code, error=error, now=now), code, header, error)


def _log_row(
    header: Header | None, code: AckCode, error_field: str | None, now: datetime
) -> dict[str, Any]:
    """The log row: header values cleaned of control characters (PostgreSQL refuses NUL in
    text, and a mangled MSH must still be logged) and cut to the columns' lengths."""
    kind = "non-HL7"
    if header is not None:
        kind = f"{header.type}^{header.trigger}" if header.trigger else header.type
    return {
        "sending_application": clean(header.sending_app, 180) if header else "",
        "sending_facility": clean(header.sending_facility, 180) if header else "",
        "control_id": clean(header.control_id, 199) if header else "",
        "content_digest": header.content_digest if header else "",
        "message_type": clean(kind, 20),
        "ack_code": code.value,
        "error_field": (error_field or None) and error_field[:20],
        "received_at": now,
    }
