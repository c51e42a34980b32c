"""A family issuance as data: the request from the dialog, the policy of the moment (clock, PIN
lifetime, age limit, default language), the modes and dialog fields, and the result the
thread's summary is written from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum

from sqlmodel import Session, col, select

from bot.delivery.sealing import PinCipher
from models import (
    Pin,
    PinStatus,
)


class IssueMode(StrEnum):
    WELCOME = "welcome"  # one welcome email, siblings printed
    ADD_CHILD = "add_child"  # guardian has an account: everything printed, add-child steps
    PRINT_ONLY = "print_only"  # no email chosen: everything printed


class IssueField(StrEnum):
    """Dialog fields a validation error can point at (block ids in the Issue PINs modal)."""

    CHILDREN = "children"
    RECIPIENT = "recipient"
    EMAILED_CHILD = "emailed_child"
    LANGUAGE = "language"


@dataclass(frozen=True)
class IssueRequest:
    family_id: int
    patient_ids: tuple[int, ...]
    recipient_guardian_id: int | None  # None: no email, print every PIN
    emailed_patient_id: int | None  # None: the oldest selected child
    issued_by: str
    idempotency_key: str
    channel_id: str | None = None
    thread_ts: str | None = None
    # Active PIN ids the dialog showed; if they changed meanwhile someone else issued.
    seen_active_pin_ids: tuple[int, ...] | None = None
    # Letter language as the dialog offers it ("es", "es+en"); None: the receiving guardian's
    # when a locale file has its words, else the policy's default (SPEC §9).
    language: str | None = None


@dataclass(frozen=True)
class IssuePolicy:
    """The rules of one issuance, at one moment: `now` (UTC) and `today` (the practice's date)
    both come from the services' clock; `timezone` is the practice's (PRACTICE_TIMEZONE), in
    which a PIN works through the whole of its printed expiry day."""

    now: datetime
    today: date
    pin_ttl_days: int
    minor_age_limit: int
    # Seals the PINs the batch writes into its outgoing work (SPEC §12: never in plaintext).
    pin_cipher: PinCipher
    default_language: str = "en"  # DEFAULT_LANGUAGE
    timezone: tzinfo = UTC


@dataclass(frozen=True)
class IssuedChild:
    patient_id: int
    full_name: str
    delivery: str


@dataclass(frozen=True)
class IssueResult:
    batch_id: int
    family_id: int
    created: bool  # False: this submit was already processed (same idempotency key)
    mode: IssueMode
    children: tuple[IssuedChild, ...]
    recipient_name: str | None
    masked_email: str | None
    emailed_patient_id: int | None
    account_note: str | None  # why no welcome email went out, when the guardian has one
    language: str  # the letters' language choice: "es", or "es+en" for two pages per child
    replaced: int  # active PINs this batch revoked
    channel_id: str | None
    thread_ts: str | None


def active_pin_ids(session: Session, patient_ids: Sequence[int]) -> tuple[int, ...]:
    if not patient_ids:
        return ()
    rows = session.exec(
        select(Pin.id).where(col(Pin.patient_id).in_(patient_ids), Pin.status == PinStatus.ACTIVE)
    ).all()
    return tuple(sorted(i for i in rows if i is not None))
