"""The mixed `/family` queries front-desk staff type, drawn from the practice in a database:
surnames with one typo, plain surnames, "last, first", "first last" (child or guardian),
phones in several formats, emails, dates of birth and chart ids."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import Guardian, Patient

MIX = (
    ("surname typo", 20),
    ("surname", 10),
    ("last, first", 15),
    ("first last", 10),
    ("phone", 15),
    ("email", 10),
    ("dob", 10),
    ("chart id", 10),
)
PHONE_STYLES = (
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "{a}{b}{c}",
    "+1 {a} {b} {c}",
    "{a} {b} {c}",
)


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    family_id: int  # the family it was drawn from


def typo(word: str, rng: random.Random) -> str:
    """One slip: a swapped pair, a dropped, doubled or wrong letter (never the first)."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    slip = rng.choice(("swap", "drop", "double", "wrong"))
    if slip == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if slip == "drop":
        return word[:i] + word[i + 1 :]
    if slip == "double":
        return word[:i] + word[i] + word[i:]
    letter = rng.choice([c for c in string.ascii_lowercase if c != word[i].lower()])
    return word[:i] + letter + word[i + 1 :]


def mixed_queries(session: Session, count: int, *, seed: int = 11) -> list[Query]:
    rng = random.Random(seed)
    top = session.exec(select(func.max(Patient.id))).one() or 0
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    queries: list[Query] = []
    while len(queries) < count:
        patient = session.get(Patient, rng.randint(1, top))
        if patient is None:
            continue
        guardians = session.exec(
            select(Guardian)
            .where(Guardian.family_id == patient.family_id)
            .order_by(col(Guardian.id))
        ).all()
        text = _text(rng.choice(kinds), patient, list(guardians), rng)
        if text:
            queries.append(Query(text[0], text[1], patient.family_id))
    return queries


def _text(
    kind: str, patient: Patient, guardians: list[Guardian], rng: random.Random
) -> tuple[str, str] | None:
    last = patient.last_name
    if kind == "surname typo":
        return kind, typo(last.lower() if rng.random() < 0.7 else last, rng)
    if kind == "surname":
        return kind, last.lower()
    if kind == "last, first":
        return kind, f"{last}, {patient.first_name}"
    if kind == "first last":
        if guardians and rng.random() < 0.3:
            guardian = rng.choice(guardians)
            return kind, f"{guardian.first_name} {guardian.last_name}"
        return kind, f"{patient.first_name} {last}"
    if kind == "phone":
        digits = next((g.phone_digits for g in guardians if g.phone_digits), None)
        if not digits:
            return None
        return kind, rng.choice(PHONE_STYLES).format(a=digits[:3], b=digits[3:6], c=digits[6:])
    if kind == "email":
        email = next((g.email for g in guardians if g.email), None)
        return (kind, email if rng.random() < 0.8 else email.upper()) if email else None
    if kind == "dob":
        dob = patient.dob
        return kind, dob.strftime("%m/%d/%Y") if rng.random() < 0.6 else dob.isoformat()
    return kind, patient.chart_id
