"""What the core tells a family's thread, as typed data. Outgoing Slack messages carry one of
these; the Slack adapter renders it (words, mentions, buttons) when the message is posted,
so the core never writes Slack formatting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from models import WorkKind


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True)


class EmailDelivered(_Notice):
    kind: Literal["email_delivered"] = "email_delivered"
    child_first_name: str
    masked_address: str


class LettersRemoved(_Notice):
    kind: Literal["letters_removed"] = "letters_removed"
    ttl_hours: int


class LettersNotRemoved(_Notice):
    """Deleting an uploaded letter has failed for a day; pinbot keeps trying."""

    kind: Literal["letters_not_removed"] = "letters_not_removed"
    failing_hours: int
    error: str


class DeliveryFailed(_Notice):
    """A delivery finally failed; a letters upload whose letters are kept can be retried."""

    kind: Literal["delivery_failed"] = "delivery_failed"
    work_id: int
    work_kind: WorkKind
    attempts: int
    error: str
    retry_until: datetime | None = None  # local time (PRACTICE_TIMEZONE)


class NameFixWaiting(_Notice):
    kind: Literal["name_fix_waiting"] = "name_fix_waiting"
    requested_at: datetime  # local time (PRACTICE_TIMEZONE)
    supervisor_ids: tuple[str, ...]


class NameFixClosedByImport(_Notice):
    kind: Literal["name_fix_closed_by_import"] = "name_fix_closed_by_import"
    name: str
    requested_by: str


class EhrRenamed(_Notice):
    """The EHR gave a flagged child a real name: PINs can be issued now."""

    kind: Literal["ehr_renamed"] = "ehr_renamed"
    family_id: int
    patient_id: int
    new_name: str
    old_name: str


class ChartsMerged(_Notice):
    kind: Literal["chart_merged"] = "chart_merged"
    merged_chart_id: str
    survivor_chart_id: str
    revoked_pins: int
    moved_name_fixes: int


class PinRegistered(_Notice):
    """The portal redeemed a child's PIN (SPEC §11)."""

    kind: Literal["pin_registered"] = "pin_registered"
    child_first_name: str


class PinLocked(_Notice):
    """Five wrong dates of birth through the portal API locked a child's PIN."""

    kind: Literal["pin_locked"] = "pin_locked"
    child_first_name: str
    wrong_dobs: int


class PortalClientSlowed(_Notice):
    """An API client failed too often in a row: a portal bug or someone guessing (to the staff
    channel, not a thread)."""

    kind: Literal["portal_client_slowed"] = "portal_client_slowed"
    client_name: str
    failures: int
    retry_after_seconds: int


ThreadNotice = Annotated[
    EmailDelivered
    | LettersRemoved
    | LettersNotRemoved
    | DeliveryFailed
    | NameFixWaiting
    | NameFixClosedByImport
    | EhrRenamed
    | ChartsMerged
    | PinRegistered
    | PinLocked
    | PortalClientSlowed,
    Field(discriminator="kind"),
]
NOTICES: TypeAdapter[ThreadNotice] = TypeAdapter(ThreadNotice)

# Turns a notice into a Slack message {"text": ..., "blocks": [...]}: handlers/notices.py.
NoticeRenderer = Callable[[ThreadNotice], dict[str, Any]]


def as_payload(notice: ThreadNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json")


def from_payload(raw: object) -> ThreadNotice:
    return NOTICES.validate_python(raw)
