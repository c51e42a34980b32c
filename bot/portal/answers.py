"""What the portal API's core answers: the facts a success returns, and the refusals. Every
failure of a well-formed attempt is the one `NoMatch`, so no caller can tell the kinds apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


class PortalRefusal(Exception):
    """An attempt the portal API answers with an error body."""


class Unauthorized(PortalRefusal):
    """No API key, an unknown one, or a revoked one."""


class NoMatch(PortalRefusal):
    """Unknown PIN, wrong date of birth, expired, revoked, locked, registered before the API
    existed: one answer for all, so the answer tells a guesser nothing."""


class AlreadyRegistered(PortalRefusal):
    """The PIN and date of birth are right, but another portal account redeemed the PIN."""


class TooManyAttempts(PortalRefusal):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"retry after {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Attempt:
    """What the portal sends: the PIN as the parent typed it, the date of birth, and the
    parent's address as the portal saw it (None: the portal did not say)."""

    pin: str
    dob: date
    client_ip: str | None = None


@dataclass(frozen=True)
class Client:
    """An authenticated API client."""

    id: int
    name: str
    last_used_at: datetime | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        return f"portal:{self.name}"


@dataclass(frozen=True)
class PatientFacts:
    chart_id: str
    first_name: str
    middle_name: str
    last_name: str
    dob: date
    sex: str


@dataclass(frozen=True)
class GuardianFacts:
    first_name: str
    last_name: str
    email: str | None
    has_portal_account: bool


@dataclass(frozen=True)
class Verified:
    pin_id: str
    expires_at: datetime | None
    patient: PatientFacts
    account_number: str
    guardian: GuardianFacts | None  # the batch's recipient; None when every PIN was printed
    delivery: str  # "emailed" | "printed"


@dataclass(frozen=True)
class Redeemed:
    pin_id: str
    patient: PatientFacts
    first_use: bool
