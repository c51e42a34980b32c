"""A synthetic practice of any size, written as the EHR exports it (SPEC §4 CSV columns).

Default: 100,000 families, about 250,000 patients, 178,000 guardians (445,000 family rows)
and 50,000 appointments. Deterministic for a given size and seed, so cached files and
databases stay valid between runs.

Names: surnames follow the US Census 2000 shares of the 1,000 commonest (Smith is 2.2% of
them; they cover about 40% of people) plus a synthetic Zipf-shaped long tail of plausible
surnames for the other 60%, so a 250,000-patient practice has tens of thousands of distinct
surnames and a few thousand Smiths, as a real one does. Some Hispanic surnames come with
their accents ("Muñoz"), some children carry a hyphenated double surname, some guardians a
surname of their own. Given names come from the SSA list in tests/data/name_corpus, weighted
by rank. Families have 1-8 children (mean 2.5) spaced 1-4 years apart, 3% of them twins,
and 1% of patients still carry an unofficial newborn name ("Baby Girl", often NB).
"""

from __future__ import annotations

import csv
import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from bot.importing.families import (
    FAMILY_COLUMNS,  # the CSV the bench writes is the one pinbot reads
)
from bot.text import fold

BENCH_DIR = Path(__file__).resolve().parent
SURNAMES_FILE = BENCH_DIR / "data" / "surnames.csv"
GIVEN_NAMES_FILE = BENCH_DIR.parent / "tests" / "data" / "name_corpus" / "real_names.txt"
DEFAULT_FAMILIES = 100_000
PATIENTS_PER_FAMILY = 2.5
APPOINTMENTS_PER_FAMILY = 0.5
TOP_SURNAME_SHARE = 0.40  # people carrying one of the 1,000 commonest surnames
TAIL_SURNAMES = 80_000
CHILDREN = ((1, 0.28), (2, 0.30), (3, 0.21), (4, 0.12), (5, 0.05), (6, 0.02), (7, 0.01), (8, 0.01))
GUARDIANS = ((1, 0.25), (2, 0.72), (3, 0.03))
TWIN_SHARE = 0.03
UNOFFICIAL_SHARE = 0.01
ACCENTED = {
    "Garcia": "García",
    "Martinez": "Martínez",
    "Hernandez": "Hernández",
    "Lopez": "López",
    "Gonzalez": "González",
    "Rodriguez": "Rodríguez",
    "Perez": "Pérez",
    "Sanchez": "Sánchez",
    "Ramirez": "Ramírez",
    "Pena": "Peña",
    "Munoz": "Muñoz",
    "Nunez": "Núñez",
    "Jimenez": "Jiménez",
    "Gomez": "Gómez",
}
PLACEHOLDERS = (
    ("Baby Girl", "F"),
    ("Baby Boy", "M"),
    ("Babygirl", "F"),
    ("Baby", "F"),
    ("Girl", "F"),
    ("Boy", "M"),
    ("BG", "F"),
    ("BB", "M"),
    ("Twin A", "M"),
    ("Infant", "F"),
)
RELATIONSHIPS = ("mother", "father", "grandmother", "grandfather", "legal guardian", "aunt")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example")
PROVIDERS = tuple(
    f"Dr. {name}"
    for name in (
        "Abernathy",
        "Boateng",
        "Castellanos",
        "Delacroix",
        "Eriksen",
        "Fairweather",
        "Gallo",
        "Haverford",
        "Iqbal",
        "Jablonski",
        "Kowalczyk",
        "Lindqvist",
        "Mbeki",
        "Nakamura",
        "Okonkwo",
        "Petrakis",
        "Quintero",
        "Rasmussen",
        "Szabo",
        "Thorvaldsen",
    )
)
PHONE_FORMATS = (
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "{a}{b}{c}",
    "+1 {a} {b} {c}",
    "1-{a}-{b}-{c}",
)


@dataclass(frozen=True)
class Sizes:
    families: int
    patients: int
    guardians: int
    family_rows: int
    appointments: int


@dataclass(frozen=True)
class Practice:
    families_csv: Path
    appointments_csv: Path
    sizes: Sizes


def families_for_patients(patients: int) -> int:
    return max(1, round(patients / PATIENTS_PER_FAMILY))


def _weighted(items: tuple[tuple[int, float], ...]) -> tuple[list[int], list[float]]:
    values, weights = zip(*items, strict=True)
    return list(values), list(itertools.accumulate(weights))


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        top: list[tuple[str, float]] = []
        for line in SURNAMES_FILE.read_text().splitlines():
            if line and not line.startswith("#"):
                name, share = line.split(",")
                top.append((name, float(share)))
        tail = self._tail([name for name, _ in top])
        total_top = sum(share for _, share in top)
        tail_weights = [1 / (rank + 50) ** 0.85 for rank in range(len(tail))]
        total_tail = sum(tail_weights)
        weights = [TOP_SURNAME_SHARE * s / total_top for _, s in top] + [
            (1 - TOP_SURNAME_SHARE) * w / total_tail for w in tail_weights
        ]
        self.surnames = [name for name, _ in top] + tail
        self.surname_cum = list(itertools.accumulate(weights))
        given = [
            line.strip()
            for line in GIVEN_NAMES_FILE.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        self.given = given
        self.given_cum = list(itertools.accumulate(1 / (rank + 25) for rank in range(len(given))))

    def _tail(self, top: list[str]) -> list[str]:
        """Plausible rarer surnames: the head of one common surname joined to the end of
        another ("Thob" + "erson"), never one of the 1,000 themselves."""
        rng, known = random.Random(7), set(top)
        heads = sorted({n[:k] for n in top for k in (2, 3, 4) if len(n) > k + 1})
        ends = sorted({n[-k:] for n in top for k in (3, 4, 5) if len(n) > k})
        tail: list[str] = []
        while len(tail) < TAIL_SURNAMES:
            name = rng.choice(heads) + rng.choice(ends)
            if 4 <= len(name) <= 12 and name not in known:
                known.add(name)
                tail.append(name)
        return tail

    def surname(self) -> str:
        name = self.rng.choices(self.surnames, cum_weights=self.surname_cum)[0]
        if name in ACCENTED and self.rng.random() < 0.5:
            return ACCENTED[name]
        return name

    def given_name(self) -> str:
        return self.rng.choices(self.given, cum_weights=self.given_cum)[0]


class _Writer:
    """Draws one family at a time and writes its rows."""

    def __init__(self, families: int, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.names = _Names(self.rng)
        self.today = today
        self.children_of = _weighted(CHILDREN)
        self.guardians_of = _weighted(GUARDIANS)
        self.charts = self._ids(families * 4, "MRN", 8)
        self.accounts = self._ids(families, "A", 7)
        self.patients: list[str] = []
        self.guardian_count = 0
        self.rows = 0
        self.emails: set[str] = set()
        self.shared_guardians: list[tuple[str, str, str, str]] = []  # step-families

    def _ids(self, count: int, prefix: str, digits: int) -> list[str]:
        numbers = self.rng.sample(range(10 ** (digits - 1), 10**digits), count)
        return [f"{prefix}{number}" for number in numbers]

    def family(self, index: int, out: csv.writer) -> None:  # type: ignore[valid-type]
        rng, names = self.rng, self.names
        surname = names.surname()
        child_surname = surname
        if rng.random() < 0.06:
            child_surname = f"{surname}-{names.surname()}"
        children = self._children(child_surname)
        guardians = self._guardians(surname, index)
        account = self.accounts[index]
        for chart, first, middle, last, dob, sex, name_type in children:
            for g_first, g_last, relationship, email, phone, has_account in guardians:
                out.writerow(
                    (
                        account,
                        chart,
                        first,
                        middle,
                        last,
                        dob,
                        sex,
                        name_type,
                        g_first,
                        g_last,
                        relationship,
                        email,
                        phone,
                        has_account,
                    )
                )
                self.rows += 1

    def _children(self, surname: str) -> list[tuple[str, ...]]:
        rng = self.rng
        count = rng.choices(self.children_of[0], cum_weights=self.children_of[1])[0]
        youngest_age = rng.uniform(0, 14)
        ages = [youngest_age]
        for _ in range(count - 1):
            ages.append(ages[-1] + rng.uniform(1, 4))
        if count >= 2 and rng.random() < TWIN_SHARE / 0.72:  # 72% of families have 2+
            ages[1] = ages[0]
        children = []
        used: set[str] = set()
        for age in ages:
            dob = self.today - timedelta(days=int(age * 365.25) + 1)
            sex = rng.choice("FM")
            first = self.names.given_name()
            while first in used:
                first = self.names.given_name()
            used.add(first)
            name_type = ""
            if rng.random() < UNOFFICIAL_SHARE:
                first, sex = rng.choice(PLACEHOLDERS)
                dob = self.today - timedelta(days=rng.randint(0, 60))
                name_type = "NB" if rng.random() < 0.5 else ""
            middle = self.names.given_name() if rng.random() < 0.4 else ""
            dob_text = dob.strftime("%m/%d/%Y") if rng.random() < 0.2 else dob.isoformat()
            chart = self.charts[len(self.patients)]
            self.patients.append(chart)
            children.append((chart, first, middle, surname, dob_text, sex, name_type))
        return children

    def _guardians(self, surname: str, index: int) -> list[tuple[str, ...]]:
        rng = self.rng
        count = rng.choices(self.guardians_of[0], cum_weights=self.guardians_of[1])[0]
        guardians = []
        if self.shared_guardians and rng.random() < 0.01:
            # A parent with children in two accounts (a second household, step-siblings).
            guardians.append((*rng.choice(self.shared_guardians), "no"))
            count -= 1
        for number in range(count):
            first = self.names.given_name()
            last = surname if rng.random() < 0.8 else self.names.surname()
            relationship = (
                ("mother", "father")[number]
                if number < 2 and rng.random() < 0.9
                else rng.choice(RELATIONSHIPS)
            )
            email = ""
            if rng.random() < 0.9:
                base = f"{fold(first)}.{fold(last)}"
                email = f"{base}@{rng.choice(DOMAINS)}"
                serial = 2
                while email in self.emails:
                    email = f"{base}{serial}@{email.split('@')[1]}"
                    serial += 1
                self.emails.add(email)
            phone = ""
            if rng.random() < 0.95:
                a, b, c = (
                    f"{rng.randint(201, 989)}",
                    f"{rng.randint(200, 999)}",
                    f"{rng.randint(0, 9999):04d}",
                )
                phone = rng.choice(PHONE_FORMATS).format(a=a, b=b, c=c)
            has_account = "yes" if rng.random() < 0.3 else "no"
            guardians.append((first, last, relationship, email, phone, has_account))
            if email and rng.random() < 0.01:
                self.shared_guardians.append((first, last, relationship, email, phone))
        self.guardian_count += len(guardians)
        return guardians

    def appointments(self, count: int, out: csv.writer) -> None:  # type: ignore[valid-type]
        rng, seen = self.rng, set()
        start = datetime.combine(self.today, datetime.min.time())
        while len(seen) < count:
            chart = rng.choice(self.patients)
            day = start + timedelta(days=rng.randint(-5, 25))
            if day.weekday() >= 5:
                continue
            slot = day + timedelta(hours=8, minutes=15 * rng.randint(0, 35))
            if (chart, slot) in seen:
                continue
            seen.add((chart, slot))
            out.writerow((chart, slot.isoformat(timespec="minutes"), rng.choice(PROVIDERS)))


def generate(
    directory: Path,
    families: int = DEFAULT_FAMILIES,
    *,
    seed: int = 2024,
    today: date | None = None,
) -> Practice:
    """Write families.csv and appointments.csv for `families` families into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    writer = _Writer(families, seed, today or date.today())
    families_csv, appointments_csv = directory / "families.csv", directory / "appointments.csv"
    with families_csv.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(FAMILY_COLUMNS)
        for index in range(families):
            writer.family(index, out)
    appointments = round(families * APPOINTMENTS_PER_FAMILY)
    with appointments_csv.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(("patient_id", "starts_at", "provider"))
        writer.appointments(appointments, out)
    sizes = Sizes(families, len(writer.patients), writer.guardian_count, writer.rows, appointments)
    return Practice(families_csv, appointments_csv, sizes)
