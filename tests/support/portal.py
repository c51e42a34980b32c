"""The portal API as the portal sees it: the real FastAPI app served by uvicorn on loopback
(PortalApiServer, as `pinbot run` serves it), an API key, and synthetic PINs with their
lookup, so tests talk to it with a real HTTP client only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import Session, select

from bot.config import PortalApiSettings
from bot.issuing.gateway import generate_pin, hash_pin, pin_lookup
from bot.portal.clients import create_client
from bot.secret import KeyPurpose
from bot.services import Services
from models import Family, Patient, PinStatus, utcnow
from portal_api.app import create_api
from portal_api.serving import PortalApiServer
from tests.support.factories import make_family, make_patient, make_pin

VERIFY, REDEEM, HEALTH = "/portal/v1/pins/verify", "/portal/v1/pins/redeem", "/portal/v1/health"


@contextmanager
def serve_portal_api(services: Services) -> Iterator[str]:
    loopback = PortalApiSettings(port=0, bind="127.0.0.1", tls_cert=None, tls_key=None)
    server = PortalApiServer(create_api(services), loopback)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def new_key(services: Services, name: str = "portal") -> str:
    with services.database.transaction() as session:
        return create_client(
            session,
            name=name,
            lookup_key=services.secret.derive(KeyPurpose.API_KEY_LOOKUP),
            now=utcnow(),
        )


@dataclass
class PortalClient:
    """httpx against the served API, with the key in the Authorization header."""

    http: httpx.Client

    def verify(self, pin: str, dob: str, **fields: str) -> httpx.Response:
        return self.http.post(VERIFY, json={"pin": pin, "dob": dob, **fields})

    def redeem(self, pin: str, dob: str, account: str, **fields: str) -> httpx.Response:
        return self.http.post(
            REDEEM, json={"pin": pin, "dob": dob, "portal_account_id": account, **fields}
        )


@contextmanager
def portal_client(base_url: str, key: str | None) -> Iterator[PortalClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        yield PortalClient(http)


class SettableClock:
    """The services' clock, moved by hand to step past a throttle's block."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def thread_texts(messages: list[dict[str, Any]], thread_ts: str, words: str) -> list[str]:
    """The texts of a thread's messages that contain `words`."""
    return [
        m.get("text", "")
        for m in messages
        if m.get("thread_ts") == thread_ts and words in m.get("text", "")
    ]


@dataclass(frozen=True)
class IssuedPin:
    pin: str  # as printed, XXXX-XXXX
    pin_id: int
    patient_id: int
    family_id: int
    dob: date


def add_pin(
    session: Session,
    services: Services,
    patient: Patient,
    *,
    status: str = PinStatus.ACTIVE,
    expires_at: datetime | None = None,
    issued_at: datetime | None = None,
    with_lookup: bool = True,
    portal_account_id: str | None = None,
) -> IssuedPin:
    """A PIN as the built-in gateway makes it (scrypt hash and keyed lookup), printed."""
    plaintext = generate_pin()
    key = services.secret.derive(KeyPurpose.PIN_LOOKUP)
    pin = make_pin(
        session,
        patient,
        issued_at or utcnow(),
        expires_at=expires_at if expires_at is not None else utcnow() + timedelta(days=90),
        status=status,
        pin_hash=hash_pin(plaintext),
        lookup=pin_lookup(key, plaintext) if with_lookup else None,
    )
    pin.portal_account_id = portal_account_id
    session.flush()
    return IssuedPin(
        pin=f"{plaintext[:4]}-{plaintext[4:]}",
        pin_id=pin.id or 0,
        patient_id=patient.id or 0,
        family_id=patient.family_id,
        dob=patient.dob,
    )


def child_with_pin(
    services: Services, account: str, first: str, dob: date, **pin_options: object
) -> IssuedPin:
    with services.database.transaction() as session:
        family = session.exec(
            select(Family).where(Family.account_number == account)
        ).first() or make_family(session, account)
        patient = make_patient(session, family, first, dob)
        return add_pin(session, services, patient, **pin_options)  # type: ignore[arg-type]
