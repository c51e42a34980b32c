"""`pinbot demo`: a synthetic sample practice, loaded through the real importers.

Every name is invented, every email is at example.com / example.org and every phone number is
in the 555-01xx range reserved for fiction. The data is a pure function of the seed and today's
date, so `demo_hints()` can name the very families `load_demo()` wrote.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.importing.demo_names import (
    BOYS,
    FATHERS,
    GIRLS,
    MOTHERS,
    PHONE_FORMATS,
    PROVIDERS,
    SURNAMES,
)
from bot.importing.importer import (
    APPOINTMENT_COLUMNS,
    FAMILY_COLUMNS,
    FAMILY_OPTIONAL_COLUMNS,
    ImportReport,
    import_appointments,
    import_families,
)
from bot.text import fold
from models import Family

DEFAULT_SEED = 20240914
# The demo's own database, beside the default pinbot.db, so it never lands in a practice's.
DEMO_DATABASE_URL = "sqlite:///pinbot-demo.db"
DEMO_ACCOUNT_PREFIX = "DEMO-"  # every demo family's account number starts with this
DEFAULT_TZ = ZoneInfo("America/New_York")  # PRACTICE_TIMEZONE's default
FILLER_FAMILIES = 30
APPOINTMENT_DAYS = 4  # today and the next three weekdays


@dataclass
class DemoChild:
    chart_id: str
    first: str
    last: str
    dob: date
    sex: str
    middle: str = ""
    name_type: str = ""


@dataclass
class DemoGuardian:
    first: str
    last: str
    relationship: str
    email: str
    phone: str
    has_account: bool = False
    language: str = ""  # guardian_language as an EHR writes it ("Spanish", "spa", "es")


@dataclass
class DemoFamily:
    account: str
    surname: str
    role: str  # what the family demonstrates ("filler" for the rest)
    children: list[DemoChild] = field(default_factory=list)
    guardians: list[DemoGuardian] = field(default_factory=list)


class _Builder:
    """Draws names, numbers and birthdays from one seeded generator, never repeating a surname,
    chart id or phone number."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng, self.today = random.Random(seed), today
        self.surnames = self.rng.sample(SURNAMES, len(SURNAMES))
        self.phones = [f"01{n:02d}" for n in self.rng.sample(range(100), 100)]
        self.families: list[DemoFamily] = []
        self._charts = 0

    def family(self, role: str, surname: str | None = None) -> DemoFamily:
        surname = surname or self.surnames.pop()
        family = DemoFamily(f"{DEMO_ACCOUNT_PREFIX}{1001 + len(self.families)}", surname, role)
        self.families.append(family)
        return family

    def child(
        self,
        family: DemoFamily,
        age: int,
        *,
        dob: date | None = None,
        first: str | None = None,
        sex: str | None = None,
    ) -> DemoChild:
        self._charts += 1
        sex = sex or self.rng.choice("FM")
        first = first or self.rng.choice(GIRLS if sex == "F" else BOYS)
        middle = self.rng.choice(["", "", "Mae", "Lee", "Jo"])
        dob = dob or self.today - timedelta(days=int(age * 365.25) + self.rng.randint(10, 300))
        child = DemoChild(f"DEMO-C{self._charts:04d}", first, family.surname, dob, sex, middle)
        family.children.append(child)
        return child

    def guardian(
        self,
        family: DemoFamily,
        relationship: str,
        *,
        email: bool = True,
        has_account: bool = False,
        first: str | None = None,
        language: str = "",
    ) -> DemoGuardian:
        mothers = relationship in ("Mother", "Grandmother")
        first = first or self.rng.choice(MOTHERS if mothers else FATHERS)
        domain = self.rng.choice(["example.com", "example.org"])
        address = f"{fold(first)}.{fold(family.surname)}@{domain}" if email else ""
        phone = self.rng.choice(PHONE_FORMATS).format(n=self.phones.pop())
        guardian = DemoGuardian(
            first, family.surname, relationship, address, phone, has_account, language
        )
        family.guardians.append(guardian)
        return guardian


def build_practice(seed: int = DEFAULT_SEED, today: date | None = None) -> list[DemoFamily]:
    """The sample practice: one family per case worth trying, then ordinary filler families."""
    b = _Builder(seed, today or Clock().today())
    siblings = b.family("siblings")
    for age in (11, 8, 4):
        b.child(siblings, age)
    b.guardian(siblings, "Mother")
    b.guardian(siblings, "Father")

    twins = b.family("twins")
    older = b.child(twins, 9)
    birthday = older.dob + timedelta(days=3 * 365 + 40)
    b.child(twins, 0, dob=birthday, sex="F")
    b.child(twins, 0, dob=birthday, sex="M")
    b.guardian(twins, "Mother")

    newborn = b.family("newborn")
    b.child(newborn, 3)
    baby = b.child(newborn, 0, dob=b.today - timedelta(days=4), first="Baby Girl", sex="F")
    baby.middle, baby.name_type = "", "NB"
    b.guardian(newborn, "Mother")
    b.guardian(newborn, "Father")

    portal = b.family("portal account")
    for age in (7, 5):
        b.child(portal, age)
    b.guardian(portal, "Mother", has_account=True)

    no_email = b.family("no email")
    for age in (10, 6):
        b.child(no_email, age)
    b.guardian(no_email, "Grandmother", email=False)

    adult = b.family("adult patient")
    b.child(adult, 18)
    b.child(adult, 14)
    b.guardian(adult, "Father")

    # The siblings' father also has a child in another household (SPEC §1, across families).
    second = b.family("second household")
    b.child(second, 2)
    b.guardian(second, "Mother")
    father = siblings.guardians[1]
    second.guardians.append(
        DemoGuardian(father.first, father.last, "Father", father.email, father.phone)
    )

    # Prefers Spanish (SPEC §9): the dialog preselects Spanish letters and a Spanish email.
    spanish = b.family("spanish", surname="Girasol-Peña")
    b.child(spanish, 6, first="Lucía", sex="F")
    b.child(spanish, 2, first="Mateo", sex="M")
    b.guardian(spanish, "Mother", first="Rocío", language="Spanish")
    b.guardian(spanish, "Father", first="Tomás", email=False, language="spa")

    for _ in range(FILLER_FAMILIES):
        filler = b.family("filler")
        for _ in range(b.rng.choice([1, 1, 2, 2, 3])):
            b.child(filler, b.rng.randint(0, 16))
        b.guardian(filler, b.rng.choice(["Mother", "Father"]), email=b.rng.random() > 0.1)
        if b.rng.random() < 0.4:
            b.guardian(
                filler, "Father" if filler.guardians[0].relationship == "Mother" else "Mother"
            )
    return b.families


def appointments(
    families: list[DemoFamily], seed: int = DEFAULT_SEED, today: date | None = None
) -> list[tuple[str, datetime, str]]:
    """(chart id, local start, provider): today and the next weekdays, with the newborn and the
    no-email family booked so `/pinbot today` and the reminders have something to say."""
    rng, today = random.Random(seed + 1), today or Clock().today()
    weekdays = [d for d in (today + timedelta(days=n) for n in range(1, 8)) if d.weekday() < 5]
    days = [today, *weekdays[: APPOINTMENT_DAYS - 1]]
    children = [child for family in families for child in family.children]
    by_role = {family.role: family for family in families}
    booked = {
        (by_role["no email"].children[0].chart_id, days[0]),
        (by_role["newborn"].children[1].chart_id, days[1]),
        (by_role["siblings"].children[0].chart_id, days[0]),
    }
    for day in days:
        booked |= {(child.chart_id, day) for child in rng.sample(children, 8)}
    slots = [time(8 + n // 4, 15 * (n % 4)) for n in range(34)]  # 08:00 to 16:15
    return sorted(
        (chart_id, datetime.combine(day, rng.choice(slots)), rng.choice(PROVIDERS))
        for chart_id, day in booked
    )


def families_csv(families: list[DemoFamily]) -> io.StringIO:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow((*FAMILY_COLUMNS, *FAMILY_OPTIONAL_COLUMNS))
    for family in families:
        for child in family.children:
            for g in family.guardians:
                writer.writerow(
                    [
                        family.account,
                        child.chart_id,
                        child.first,
                        child.middle,
                        child.last,
                        child.dob.isoformat(),
                        child.sex,
                        child.name_type,
                        g.first,
                        g.last,
                        g.relationship,
                        g.email,
                        g.phone,
                        "yes" if g.has_account else "no",
                        g.language,
                    ]
                )
    out.seek(0)
    return out


def appointments_csv(rows: list[tuple[str, datetime, str]]) -> io.StringIO:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(APPOINTMENT_COLUMNS)
    writer.writerows(
        (chart_id, starts_at.isoformat(timespec="minutes"), provider)
        for chart_id, starts_at, provider in rows
    )
    out.seek(0)
    return out


def practice_families(database: Database) -> int:
    """How many families in the database are not the demo's (their account number does not
    start with DEMO-): `pinbot demo` refuses to mix its families in with a practice's."""
    with database.read_session() as session:
        statement = (
            select(func.count())
            .select_from(Family)
            .where(~col(Family.account_number).startswith(DEMO_ACCOUNT_PREFIX, autoescape=True))
        )
        return int(session.execute(statement).scalar_one())


def load_demo(
    database: Database,
    *,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    actor: str = "cli",
    tz: ZoneInfo = DEFAULT_TZ,
) -> ImportReport:
    """Import the sample practice, its appointments and 12 weeks of PIN history
    (bot/importing/demo_history.py); one report with every set of counts. Loading it again
    is harmless (the importers are idempotent, the history is written once)."""
    clock = Clock(tz)
    today = today or clock.today()
    families = build_practice(seed, today)
    report = import_families(database, families_csv(families), actor=actor, clock=clock)
    if not report.written:
        return report
    booked = import_appointments(
        database,
        appointments_csv(appointments(families, seed, today)),
        actor=actor,
        timezone=tz,
        clock=clock,
    )
    report.counts.update(booked.counts)
    report.problems += booked.problems
    report.rows_read += booked.rows_read
    report.rows_written += booked.rows_written
    report.kind = "demo"
    from bot.importing.demo_history import load_pin_history  # it imports this module

    now = datetime.combine(today, time(12), tzinfo=tz)
    pins = load_pin_history(database, families, seed=seed, now=now, tz=tz, actor=actor)
    report.counts["PIN history (12 weeks)"] = {"PINs written": pins}
    return report


def on_demo_database(database_url: str) -> str:
    """The environment prefix that points a command at the demo's database (never a URL
    given on the command line: it may carry a password)."""
    if database_url == DEMO_DATABASE_URL:
        return f"DATABASE_URL={database_url}"
    return "DATABASE_URL=<the --database-url you gave>"


def demo_hints(
    *, seed: int = DEFAULT_SEED, today: date | None = None, database_url: str = DEMO_DATABASE_URL
) -> list[str]:
    """What to try in Slack, naming the families `load_demo` wrote with the same arguments;
    the commands point at the demo's database (`database_url`)."""
    on_demo = on_demo_database(database_url)
    by_role = {family.role: family for family in build_practice(seed, today)}
    siblings, adult = by_role["siblings"], by_role["adult patient"]
    phone = siblings.guardians[0].phone
    twin = by_role["twins"].children[1]
    return [
        f"Sample practice loaded into {database_url} (its own database; the practice's "
        "DATABASE_URL is untouched). Start the bot on it:",
        f"  {on_demo} .venv/bin/pinbot run",
        "",
        "Then, in your staff channel, try:",
        f"  /family {siblings.surname}  three siblings: one welcome email, the others printed",
        f"  /family {siblings.surname[:-2] + siblings.surname[-1]}  the same family, with a typo",
        f"  /family 217.555.{phone[-4:]}  by phone, in any format (the file says {phone})",
        f"  /family {twin.dob:%m/%d/%Y}  by date of birth: the {twin.last} twins",
        f'  /family {by_role["newborn"].surname}  a newborn still called "Baby Girl '
        f'{by_role["newborn"].surname}": the PIN is blocked until a supervisor approves a '
        "name fix",
        f"  /family {by_role['portal account'].surname}  the guardian already has a portal "
        "account: every PIN is printed with Add Child steps",
        f"  /family {by_role['no email'].surname}  no guardian email: every PIN is printed",
        f"  /family {adult.surname}  {adult.children[0].first} is 18 and gets their own PIN",
        f"  /family {siblings.guardians[1].email}  a father with children in two accounts",
        f"  /family {by_role['spanish'].surname}  the parents prefer Spanish: Spanish letters "
        "and email are preselected, or Spanish and English (two pages per child)",
        f"  /pin {siblings.children[0].first} {siblings.surname}  issue PINs for one child",
        "  /pinbot today  today's appointments without portal access or with a temporary name",
        "  the Home tab (click pinbot in the sidebar)  today's workload as counts",
        "",
        "And on the command line, the last 12 weeks' PINs and registrations:",
        f"  {on_demo} .venv/bin/pinbot report adoption --png adoption.png",
        "",
        "When you are done, delete the demo: rm pinbot-demo.db*"
        if database_url == DEMO_DATABASE_URL
        else "Every demo family's account number starts with DEMO-.",
    ]
