"""`pinbot demo`'s PIN history: the last 12 weeks of synthetic PINs for the sample practice's
ordinary ("filler") families, so that `pinbot report adoption`, the Monday chart and the Home
tab have something to show.

PINs come from the built-in portal gateway (real PINs, real salted hashes; the plaintexts are
dropped at once: these letters were "printed" weeks ago). Each family is one issuance with the
family rule: one child's PIN emailed when a guardian has an email, every other one printed.
Some children had an earlier PIN revoked by a re-issue (a lost letter). Registrations then go
through `import registrations`, as a practice records them. A function of the seed and `now`;
loading it again adds nothing.
"""

from __future__ import annotations

import csv
import io
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot.clock import local_date, local_midnight
from bot.db import Database
from bot.importing.demo import DemoFamily
from bot.importing.importer import import_registrations
from bot.issuing.gateway import BuiltinGateway
from bot.reports.adoption import week_start
from models import Delivery, Guardian, IssueBatch, Patient, Pin, PinStatus

KEY_PREFIX = "demo-history:"
WEEKS = 12
SHARE_WITH_PINS = 0.9  # of the filler families; the rest show up as "no portal access"
REISSUED = 0.25  # children whose first letter was lost and re-issued
REGISTERS = {Delivery.EMAILED: 0.85, Delivery.PRINTED: 0.6}  # eventually, within ~6 weeks
DELAY_DAYS = (0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 13, 17, 22, 29, 38)
# A 90-day PIN works through its 90th local day: it expires at the midnight after it.
EXPIRES_AFTER = timedelta(days=90 + 1)


@dataclass(frozen=True)
class _Planned:
    chart_id: str
    batch: int  # index into the batches
    delivery: Delivery
    issued_at: datetime
    status: PinStatus
    changed_at: datetime | None = None


def _weekday_moment(rng: random.Random, day_offset: int, first: datetime, tz: ZoneInfo) -> datetime:
    day = (first + timedelta(days=day_offset)).date()
    while day.weekday() >= 5:  # the front desk issues on weekdays
        day -= timedelta(days=1)
    at = time(8 + rng.randrange(9), rng.choice((0, 15, 30, 45)))
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def plan_history(
    families: list[DemoFamily], *, seed: int, now: datetime, tz: ZoneInfo
) -> tuple[list[tuple[str, datetime]], list[_Planned], list[tuple[str, datetime]]]:
    """(batches as (family account, issued at), PINs, registrations as (chart id, when))."""
    rng = random.Random(seed + 12)
    local_now = now.astimezone(tz)
    first = datetime.combine(
        week_start(local_now.date()) - timedelta(weeks=WEEKS), time.min, tzinfo=tz
    )
    span = (local_now - first).days
    batches: list[tuple[str, datetime]] = []
    pins: list[_Planned] = []
    registrations: list[tuple[str, datetime]] = []
    issuing = [f for f in families if f.role == "filler" and rng.random() < SHARE_WITH_PINS]
    rng.shuffle(issuing)
    for n, family in enumerate(issuing):
        # Spread over the weeks (a couple of families a week), on a random day of its week.
        day = (n * span) // len(issuing) + rng.randrange(max(1, span // len(issuing)))
        issued = _weekday_moment(rng, min(day, span), first, tz)
        if issued >= now:
            continue
        emails = any(g.email and not g.has_account for g in family.guardians)
        oldest = max(family.children, key=lambda c: (-c.dob.toordinal(), c.chart_id))
        batches.append((family.account, issued))
        main = len(batches) - 1
        for child in family.children:
            mode = Delivery.EMAILED if emails and child is oldest else Delivery.PRINTED
            if rng.random() < REISSUED:  # the first letter was lost: re-issued, revoked
                earlier = issued - timedelta(days=rng.randrange(3, 15))
                batches.append((family.account, earlier))
                pins.append(_Planned(child.chart_id, len(batches) - 1, Delivery.PRINTED,
                                     earlier, PinStatus.REVOKED, issued))  # fmt: skip
            pins.append(_Planned(child.chart_id, main, mode, issued, PinStatus.ACTIVE))
            if rng.random() < REGISTERS[mode]:
                when = issued + timedelta(days=rng.choice(DELAY_DAYS), hours=rng.randrange(1, 9))
                if when < now:
                    registrations.append((child.chart_id, when))
    return batches, pins, registrations


def load_pin_history(
    database: Database,
    families: list[DemoFamily],
    *,
    seed: int,
    now: datetime,
    tz: ZoneInfo,
    actor: str = "cli",
) -> int:
    """Write the history (once); returns how many PINs it wrote."""
    with database.read_session() as session:
        if session.exec(
            select(IssueBatch.id).where(col(IssueBatch.idempotency_key).startswith(KEY_PREFIX))
        ).first():
            return 0
    batches, planned, registrations = plan_history(families, seed=seed, now=now, tz=tz)
    gateway = BuiltinGateway()
    with database.transaction() as session:
        charts = {p.chart_id for p in planned}
        patients = {
            p.chart_id: p
            for p in session.exec(select(Patient).where(col(Patient.chart_id).in_(charts)))
        }
        guardians = {
            g.family_id: g for g in session.exec(select(Guardian).order_by(col(Guardian.id)))
        }
        family_of = {p.chart_id: p.family_id for p in patients.values()}
        rows: list[IssueBatch] = []
        for n, (account, issued) in enumerate(batches):
            family_id = next(family_of[p.chart_id] for p in planned if p.batch == n)
            guardian = guardians.get(family_id)
            rows.append(IssueBatch(
                family_id=family_id, idempotency_key=f"{KEY_PREFIX}{account}:{n}",
                issued_by="demo", recipient_guardian_id=guardian.id if guardian else None,
                mode="welcome" if any(p.batch == n and p.delivery == Delivery.EMAILED
                                      for p in planned) else "print_only",
                language="en", created_at=issued,
            ))  # fmt: skip
        session.add_all(rows)
        session.flush()
        with ThreadPoolExecutor(max_workers=2) as pool:  # scrypt releases the GIL
            hashes = list(pool.map(lambda p: gateway.issue(patients[p.chart_id], None).pin_hash,
                                   planned))  # fmt: skip
        for plan, pin_hash in zip(planned, hashes, strict=True):
            session.add(Pin(
                patient_id=patients[plan.chart_id].id or 0, batch_id=rows[plan.batch].id or 0,
                pin_hash=pin_hash, recipient_guardian_id=rows[plan.batch].recipient_guardian_id,
                delivery=plan.delivery, issued_by="demo", issued_at=plan.issued_at,
                expires_at=local_midnight(local_date(plan.issued_at, tz) + EXPIRES_AFTER, tz),
                status=plan.status,
                status_changed_at=plan.changed_at,
            ))  # fmt: skip
    if registrations:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["patient_id", "registered_at"])
        for chart_id, when in registrations:
            writer.writerow([chart_id, when.astimezone(tz).strftime("%Y-%m-%dT%H:%M")])
        out.seek(0)
        import_registrations(database, out, timezone=tz, actor=actor)
    return len(planned)
