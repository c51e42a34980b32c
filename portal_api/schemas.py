"""The portal API's request and response bodies: the OpenAPI contract the portal vendor
builds against. Named, documented fields with examples; never a table model."""

from __future__ import annotations

import re
from datetime import date, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.portal.answers import PatientFacts, Redeemed, Verified

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NO_MATCH_MESSAGE = (
    "No active PIN matches this PIN and date of birth. Check both, or ask the practice for "
    "a new PIN."
)


def _iso_date_only(value: object) -> object:
    """YYYY-MM-DD only: a number or another layout is refused, not guessed."""
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date_only),
    Field(description="The child's date of birth, YYYY-MM-DD.", examples=["2023-11-02"]),
]
TypedPin = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description=(
            "The PIN as the parent typed it. Case, spaces and dashes do not matter, and I, L, "
            "O and U are read as 1, 1, 0 and V."
        ),
        examples=["X941-XHVJ"],
    ),
]
ClientIp = Annotated[
    IPv4Address | IPv6Address | None,
    Field(
        description=(
            "The parent's IP address as the portal saw it. Guessing is limited per address; "
            "without it, per API key."
        ),
        examples=["203.0.113.7"],
    ),
]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"pin": "X941-XHVJ", "dob": "2023-11-02", "client_ip": "203.0.113.7"}]
        }
    )

    pin: TypedPin
    dob: IsoDate
    client_ip: ClientIp = None


class RedeemRequest(VerifyRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "pin": "X941-XHVJ",
                    "dob": "2023-11-02",
                    "portal_account_id": "acct-48213",
                    "client_ip": "203.0.113.7",
                }
            ]
        }
    )

    portal_account_id: str = Field(
        min_length=1,
        max_length=200,
        description=(
            "The portal account the PIN was used for: the new account (first child) or the "
            "account the child was added to."
        ),
        examples=["acct-48213"],
    )


class PatientOut(BaseModel):
    chart_id: str = Field(description="The child's chart id in the EHR.", examples=["C10442"])
    first_name: str = Field(examples=["Maya"])
    middle_name: str = Field(description="Empty when none.", examples=[""])
    last_name: str = Field(examples=["Quilfeather"])
    dob: date = Field(examples=["2023-11-02"])
    sex: str = Field(description="As the EHR exports it (F, M, U…).", examples=["F"])

    @classmethod
    def of(cls, patient: PatientFacts) -> PatientOut:
        return cls(**vars(patient))


class FamilyOut(BaseModel):
    account_number: str = Field(
        description="The practice's family (guarantor) account number.", examples=["A20931"]
    )


class GuardianOut(BaseModel):
    first_name: str = Field(examples=["Rosa"])
    last_name: str = Field(examples=["Quilfeather"])
    email: str | None = Field(examples=["rosa.q@example.org"])
    has_portal_account: bool = Field(
        description="True when the guardian already has a portal account (add the child to it)."
    )


class VerifyResponse(BaseModel):
    pin_id: str = Field(description="pinbot's id of this PIN.", examples=["1842"])
    expires_at: datetime | None = Field(
        description="When the PIN stops working (UTC); null when it never expires.",
        examples=["2027-03-01T15:04:05Z"],
    )
    patient: PatientOut
    family: FamilyOut
    guardian: GuardianOut | None = Field(
        description="Who the practice sent the welcome email to; null when every PIN was printed."
    )
    delivery: Literal["emailed", "printed"] = Field(description="How this PIN reached the family.")

    @classmethod
    def of(cls, answer: Verified) -> VerifyResponse:
        guardian = GuardianOut(**vars(answer.guardian)) if answer.guardian else None
        return cls(
            pin_id=answer.pin_id,
            expires_at=answer.expires_at,
            patient=PatientOut.of(answer.patient),
            family=FamilyOut(account_number=answer.account_number),
            guardian=guardian,
            delivery="emailed" if answer.delivery == "emailed" else "printed",
        )


class RedeemResponse(BaseModel):
    status: Literal["registered"] = "registered"
    pin_id: str = Field(examples=["1842"])
    patient: PatientOut
    first_use: bool = Field(
        description=(
            "True for the call that registered the PIN; false when this same account had "
            "already redeemed it (a retry)."
        )
    )

    @classmethod
    def of(cls, answer: Redeemed) -> RedeemResponse:
        return cls(
            pin_id=answer.pin_id, patient=PatientOut.of(answer.patient), first_use=answer.first_use
        )


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"] = Field(description="ok when pinbot's database answers.")


class ErrorBody(BaseModel):
    error: str = Field(
        description=(
            "unauthorized, no_match, already_registered, too_many_attempts, bad_request or "
            "too_large."
        ),
        examples=["no_match"],
    )
    message: str | None = Field(default=None, examples=[NO_MATCH_MESSAGE])
    field: str | None = Field(
        default=None, description="The request field a 400 is about.", examples=["dob"]
    )
