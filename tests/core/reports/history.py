"""A synthetic PIN history for the adoption query, the CLI, the weekly post and the Home tab:
issued, registered, expired and revoked PINs across the weeks of 7 Sep - 30 Nov 2026 and the
end of US daylight saving time (Sunday 1 Nov 2026, 02:00 EDT -> 01:00 EST), seen on Wednesday
2 Dec 2026 at 14:00 in New York. The expected figures below are worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.db import Database
from models import Guardian, IssueBatch, Pin, PinStatus
from tests.support.factories import make_family, make_guardian, make_patient

TZ = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 2, 14, 0, tzinfo=TZ).astimezone(UTC)
FIRST_MONDAY = date(2026, 9, 7)  # 12 full weeks before the week of 30 Nov
SURNAME, GUARDIAN_EMAIL = "Quillhaven", "morwenna.quillhaven@example.org"


def local(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


@dataclass(frozen=True)
class HistoryPin:
    issued: datetime
    delivery: str
    language: str | None
    status: str = PinStatus.ACTIVE
    changed: datetime | None = None


def registered(issued: datetime, after: timedelta, delivery: str, lang: str | None) -> HistoryPin:
    return HistoryPin(issued, delivery, lang, PinStatus.REGISTERED, issued + after)


E, P = "emailed", "printed"
THIRTY = timedelta(days=30)
HISTORY = (
    # Week of 7 Sep: 2 emailed (1 registered), 2 printed (1 registered: exactly on day 30).
    registered(local(2026, 9, 8), timedelta(days=12), E, None),  # before languages: "en"
    registered(local(2026, 9, 9), THIRTY, P, "es"),
    registered(local(2026, 9, 10), THIRTY + timedelta(minutes=1), P, "es"),  # too late
    HistoryPin(local(2026, 9, 11), E, "en", PinStatus.REVOKED, local(2026, 9, 12)),
    # Sunday 6 Sep 23:00 EDT is the week before the report: left out.
    registered(local(2026, 9, 6, 23), timedelta(days=1), E, "en"),
    # Week of 26 Oct (the DST week, 169 hours): Monday 00:30 EDT (04:30 UTC: a fixed -5 h
    # offset would put it a week early) and Sunday 1 Nov 23:30 EST (04:30 UTC on Monday).
    registered(local(2026, 10, 26, 0, 30), timedelta(days=8), E, "en"),
    HistoryPin(local(2026, 11, 1, 23, 30), P, "es+en", PinStatus.EXPIRED, local(2026, 11, 30)),
    # Week of 2 Nov: Monday 00:30 EST; still active; a Spanish email registered next day.
    HistoryPin(local(2026, 11, 2, 0, 30), P, "en"),
    registered(local(2026, 11, 4), timedelta(days=1), E, "es"),
    # Week of 23 Nov: registered the next day. This week (30 Nov, so far): one printed.
    registered(local(2026, 11, 24), timedelta(days=1), E, "en"),
    HistoryPin(local(2026, 12, 1), P, "en"),
)

# week index -> (emailed, printed, registered emailed, registered printed, by_language)
EXPECTED = {
    0: (2, 2, 1, 1, {"en": (2, 1), "es": (2, 1)}),
    7: (1, 1, 1, 0, {"en": (1, 1), "es+en": (1, 0)}),
    8: (1, 1, 1, 0, {"en": (1, 0), "es": (1, 1)}),
    11: (1, 0, 1, 0, {"en": (1, 1)}),
    12: (0, 1, 0, 0, {"en": (1, 0)}),
}
EMPTY: tuple[int, int, int, int, dict[str, tuple[int, int]]] = (0, 0, 0, 0, {})


def seed_history(database: Database) -> list[str]:
    """Write HISTORY, one child per PIN in one family; returns the PHI the fixture holds
    (names, chart ids, DOBs, the guardian's email) for the no-PHI scans."""
    phi = [SURNAME, GUARDIAN_EMAIL]
    with database.transaction() as session:
        family = make_family(session, "A7001")
        guardian: Guardian = make_guardian(session, family, "Morwenna", SURNAME,
                                           email=GUARDIAN_EMAIL)  # fmt: skip
        phi += ["Morwenna", family.account_number]
        for n, item in enumerate(HISTORY):
            first = f"Tamsin{chr(65 + n)}"
            dob = date(2019, 1, 1) + timedelta(days=37 * n)
            child = make_patient(session, family, first, dob, last=SURNAME, chart=f"MRN90{n:03d}")
            phi += [first, child.chart_id, dob.isoformat(), f"{dob:%m/%d/%Y}"]
            batch = IssueBatch(
                family_id=family.id or 0,
                idempotency_key=f"history:{n}",
                issued_by="U0STAFF01",
                recipient_guardian_id=guardian.id,
                mode="welcome" if item.delivery == E else "print_only",
                language=item.language,
                created_at=item.issued,
            )
            session.add(batch)
            session.flush()
            session.add(
                Pin(
                    patient_id=child.id or 0,
                    batch_id=batch.id or 0,
                    pin_hash="scrypt$history",
                    recipient_guardian_id=guardian.id,
                    delivery=item.delivery,
                    issued_by="U0STAFF01",
                    issued_at=item.issued,
                    status=item.status,
                    status_changed_at=item.changed,
                )
            )
    return phi
