"""`pinbot demo`'s portal API lines: one synthetic demo child gets a fresh PIN (made by the
built-in gateway, lookup and all, in a print-only batch), printed with its date of birth and
the curl calls that verify and redeem it, so a newcomer sees the loop close in a terminal.
Demo data only: the child is one of `pinbot demo`'s invented families."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from bot.db import Database
from bot.importing.demo import build_practice
from bot.issuing.gateway import BuiltinGateway
from bot.issuing.issuance import new_pin, revoke_active_pins
from models import Delivery, IssueBatch, Patient, Pin, utcnow

DEMO_ROLE = "twins"  # the Peñaflor twins: the first twin's PIN is the one to try
DEMO_PIN_DAYS = 90


def issue_demo_pin(
    database: Database, gateway: BuiltinGateway, *, today: date, on_demo: str
) -> list[str]:
    """A fresh printed PIN for one demo child, and the lines that try it; `on_demo` is the
    environment prefix that points `pinbot` at the demo's database."""
    child = next(f for f in build_practice(today=today) if f.role == DEMO_ROLE).children[0]
    now = utcnow()
    with database.transaction() as session:
        patient = session.exec(select(Patient).where(Patient.chart_id == child.chart_id)).one()
        revoke_active_pins(session, patient.id or 0, gateway, reason="a new demo PIN", now=now)
        batch = IssueBatch(
            family_id=patient.family_id,
            idempotency_key=f"demo-portal:{now.isoformat()}",
            issued_by="cli",
            mode="print_only",
        )
        session.add(batch)
        session.flush()
        expires = now + timedelta(days=DEMO_PIN_DAYS)
        new = new_pin(session, gateway, patient, expires)
        session.add(
            Pin(
                patient_id=patient.id or 0,
                batch_id=batch.id or 0,
                pin_hash=new.pin_hash,
                lookup=new.lookup,
                delivery=Delivery.PRINTED,
                issued_by="cli",
                issued_at=now,
                expires_at=expires,
            )
        )
    pin = f"{new.plaintext[:4]}-{new.plaintext[4:]}"
    return _try_lines(f"{patient.first_name} {patient.last_name}", patient.dob, pin, on_demo)


def _try_lines(name: str, dob: date, pin: str, on_demo: str) -> list[str]:
    body = f'{{"pin": "{pin}", "dob": "{dob.isoformat()}"'
    redeem = body + ', "portal_account_id": "demo-account-1"}'
    call = 'curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: application/json"'
    url = "http://127.0.0.1:8080/portal/v1/pins"
    return [
        "The portal API, in a terminal (demo data only):",
        f"  {name}, born {dob.isoformat()}, has the PIN {pin}",
        f"  KEY=$({on_demo} .venv/bin/pinbot portal key create demo-portal | sed -n 2p)",
        f"  {on_demo} PORTAL_API_PORT=8080 .venv/bin/pinbot run   # in another terminal",
        f"  {call} -d '{body}}}' {url}/verify",
        f"  {call} -d '{redeem}' {url}/redeem",
        f'  {name.split()[0]}\'s family card then reads "registered", and its thread (if the card '
        "was posted in the last 30 days) says the PIN was used.",
    ]
