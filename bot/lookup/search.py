"""Family and patient search for `/family <query>` and `/pin <child query>` (no Slack here).

The text is read by `parse_query` (query.py) as an account number or chart id, a phone
number, an email, a date of birth (optionally with name words), "last, first", or a free name.

Candidates are always bounded, so a search is a handful of indexed queries at any size:
- account number / chart id / phone / email / DOB: equality on indexed columns;
- names: each word is expanded into a few candidate keys per role (the word itself, up to 12
  keys it is the prefix of, up to 25 keys within 1-3 edits by length, a transposition
  counting as one, among keys sharing the word's first or second letter), taken from the
  in-process set of the DISTINCT first and last keys (name_keys.py: there are far fewer
  distinct names than people; each key comes with how many people carry it) and scored with
  rapidfuzz. Rows are then fetched by `last_key IN (...)` / `first_key IN (...)` on the btree
  indexes, every branch with a LIMIT, all branches of one table in one UNION ALL query. A
  key many people share ("smith") gets its own branch capped at a few families' worth; a
  "first last" reading is `last_key IN (...) AND first_key IN (...)` on the two-column
  (last_key, first_key) / (first_key, last_key) indexes: one seek per pair of keys.

Speed: a search spends more time building SQLAlchemy statements than the database spends
answering them, so every statement is built once — per shape, each key list one parameter
(`_union` in finding.py: an array on PostgreSQL, JSON on SQLite, so the database keeps the
statement prepared) — and run on the session's connection, skipping the ORM layer (on
PostgreSQL the name candidates on a pool of their own that plans them once: `bot.db.run_lookup`);
`warm_up` builds the common shapes before the first search.

Scores (0-100): exact matches score 100 (a child's last name), 97 (a guardian's), 90 (a first
name alone); a partial word ("smi") 80-89; a close spelling at most 85 x similarity (< 77);
"first last" weighs the last name 55% and the first name 45% (x 0.9 when both are only
close spellings); a family whose last name matches but not the first name scores 60.
`is_single_match` says when one family stands out.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col

from bot.db import run_lookup
from bot.errors import InvalidQuery
from bot.lookup.finding import (
    CHILDREN_OF,
    PATIENT_LABELS,
    best_by,
    family_labels_statement,
    find_matches,
    key_lists,
    list_value,
    rank_key,
    run_statement,
)
from bot.lookup.name_keys import forget_name_keys, name_keys
from bot.lookup.query import Query, QueryKind, parse_query
from bot.text import clean
from models import Patient

__all__ = [
    "FamilyHit",
    "FamilyMatch",
    "PatientHit",
    "Query",
    "QueryKind",
    "family_label",
    "find_families",
    "forget_name_keys",
    "is_single_match",
    "label_families",
    "name_keys",
    "parse_query",
    "search_families",
    "search_patients",
    "warm_up",
]

SINGLE_MATCH_GAP = 15  # points between an exact top hit and the next for a card, not a list


@dataclass(frozen=True)
class FamilyHit:
    family_id: int
    account_number: str
    score: int
    matched_on: str
    label: str
    exact: bool = False


@dataclass(frozen=True)
class FamilyMatch:
    """A family found and ranked, before its label: all `is_single_match` needs, so a search
    that opens one family's card never builds the labels of a list it doesn't show."""

    family_id: int
    score: int
    matched_on: str
    exact: bool = False


@dataclass(frozen=True)
class PatientHit:
    patient_id: int
    family_id: int
    score: int
    label: str
    matched_on: str = ""
    exact: bool = False


class _Hit(Protocol):
    @property
    def score(self) -> int: ...
    @property
    def exact(self) -> bool: ...


def is_single_match(hits: Sequence[_Hit]) -> bool:
    """True when the caller should open the one family (post its card) instead of a list:
    exactly one hit (even a close spelling: the card shows whose it is), or a top hit that
    matched exactly while every other hit is inexact (partial, close spelling, last name only)
    and at least SINGLE_MATCH_GAP points lower. Two exact hits — two "Ava Smith"s, a shared
    phone, a DOB — always make a list. Give it hits from a search with limit >= 2."""
    if len(hits) == 1:
        return True
    if not hits:
        return False
    top, runner_up = hits[0], hits[1]
    return top.exact and not runner_up.exact and top.score - runner_up.score >= SINGLE_MATCH_GAP


# --- results ----------------------------------------------------------------------------------


def search_families(session: Session, text: str, *, limit: int = 10) -> list[FamilyHit]:
    """Families matching `text`, best first (raises InvalidQuery for unreadable text). Among
    equal scores, families where more people match come first."""
    return label_families(session, find_families(session, text, limit=limit))


def find_families(session: Session, text: str, *, limit: int = 10) -> list[FamilyMatch]:
    """`search_families` without the labels (two more queries): label them with
    `label_families` only when they are shown as a list."""
    found = find_matches(session, parse_query(text), limit=limit)
    members = Counter(f.family_id for f in found)
    ranked = sorted(
        best_by(found, lambda f: f.family_id).values(),
        key=lambda f: (-f.score, not f.exact, -members[f.family_id], f.family_id),
    )
    return [
        FamilyMatch(f.family_id, _percent(f.score), f.matched_on, f.exact) for f in ranked[:limit]
    ]


def label_families(session: Session, matches: Sequence[FamilyMatch]) -> list[FamilyHit]:
    labels = _family_labels(session, [m.family_id for m in matches])
    return [
        FamilyHit(
            m.family_id,
            labels[m.family_id][0],
            m.score,
            m.matched_on,
            labels[m.family_id][1],
            m.exact,
        )
        for m in matches
        if m.family_id in labels
    ]


def search_patients(session: Session, text: str, *, limit: int = 10) -> list[PatientHit]:
    """Children matching `text` (for /pin), best first. A match on the family (account number,
    guardian phone or email) stands for each of its children."""
    found = find_matches(session, parse_query(text), limit=limit, children_only=True)
    families = best_by((f for f in found if f.patient_id is None), lambda f: f.family_id)
    if families:
        rows = run_statement(session, CHILDREN_OF, ids=list(families))
        found += [
            families[family_id]._replace(patient_id=patient_id) for patient_id, family_id in rows
        ]
    ranked = sorted(
        best_by(found, lambda f: f.patient_id).values(),
        key=lambda f: (*rank_key(f), f.patient_id),
    )[:limit]
    labels = _patient_labels(session, [f.patient_id for f in ranked if f.patient_id])
    return [
        PatientHit(
            f.patient_id,
            f.family_id,
            _percent(f.score),
            labels[f.patient_id],
            f.matched_on,
            f.exact,
        )
        for f in ranked
        if f.patient_id in labels
    ]


def _percent(score: float) -> int:
    return max(0, min(100, round(score * 100)))


def _family_labels(session: Session, family_ids: list[int]) -> dict[int, tuple[str, str]]:
    """family id -> (account number, "Smith — Ava (2019-03-02), Ben (…); guardian Jane Smith")."""
    if not family_ids:
        return {}
    lists = key_lists(session.get_bind().dialect.name)
    accounts: dict[int, str] = {}
    children: dict[int, list[tuple[str, str, date]]] = defaultdict(list)
    guardians: dict[int, list[str]] = defaultdict(list)
    # On the lookup pool with the name candidates (PostgreSQL: generic plans): its array of
    # ids would otherwise be planned anew on every run, at 3x the cost of running it.
    statement = family_labels_statement(lists)
    rows = run_lookup(session, statement, {"ids": list_value(family_ids, lists)})
    for part, family_id, account, first, last, dob, _ in rows:
        if part:  # a guardian
            guardians[family_id].append(f"{clean(first)} {clean(last)}".strip())
            continue
        accounts[family_id] = account
        if dob is not None:  # a family with no children on file has one row of NULLs
            children[family_id].append((clean(first), clean(last), dob))
    return {
        family_id: (account, family_label(account, children[family_id], guardians[family_id]))
        for family_id, account in accounts.items()
    }


def family_label(account: str, children: list[tuple[str, str, date]], guardians: list[str]) -> str:
    surnames = Counter(last for _, last, _ in children) or Counter(
        name.rsplit(" ", 1)[-1] for name in guardians
    )
    surname = surnames.most_common(1)[0][0] if surnames else f"Account {account}"
    kids = [
        f"{first}{'' if last == surname else ' ' + last} ({dob.isoformat()})"
        for first, last, dob in children
    ]
    text = f"{surname} \u2014 {_first_few(kids, 6) or 'no children on file'}"
    if guardians:
        text += f"; guardian{'s' if len(guardians) > 1 else ''} {_first_few(guardians, 3)}"
    return text


def _first_few(items: list[str], limit: int) -> str:
    more = f", +{len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _patient_labels(session: Session, patient_ids: list[int]) -> dict[int, str]:
    if not patient_ids:
        return {}
    rows = run_statement(session, PATIENT_LABELS, ids=patient_ids)
    return {
        patient_id: f"{clean(first)} {clean(last)} ({dob.isoformat()}) \u2014 account {account}"
        for patient_id, first, last, dob, account in rows
    }


# --- warming up -------------------------------------------------------------------------------

WARM_UP_PATIENTS = 100
_WARM_UP_PEOPLE = (
    core_select(
        col(Patient.first_name), col(Patient.last_name), col(Patient.chart_id), col(Patient.dob)
    )
    .order_by(col(Patient.id).desc())
    .limit(bindparam("n"))
)


def warm_up(session: Session, *, seconds: float = 2.0) -> int:
    """Run, before the first /family, the searches staff will run, on the practice's newest
    patients: SQLAlchemy builds and compiles each new shape of the name statement on its first
    use (5–40 ms; a practice's names make a few dozen shapes), which otherwise lands on the
    first searches after every restart — they were the slowest 5% of /family (bench/
    RESULTS.md). The first search that lists families labels them too (that statement is built
    once as well). Nothing is shown, logged or audited. Stops after `seconds`; returns how many
    searches ran."""
    deadline = time.monotonic() + seconds
    texts: list[str] = []
    for first, last, chart_id, dob in run_statement(session, _WARM_UP_PEOPLE, n=WARM_UP_PATIENTS):
        texts += [f"{first} {last}", f"{last}, {first}", last, *_slips(last), chart_id]
        texts.append(f"{dob:%m/%d/%Y}")
    ran, labelled = 0, False
    for text in texts:
        if time.monotonic() >= deadline:
            break
        try:
            found = find_families(session, text)
        except InvalidQuery:  # a name the query rules refuse: nothing to warm
            continue
        if len(found) > 1 and not labelled:  # a list's labels: one statement, built once
            labelled = bool(label_families(session, found))
        ran += 1
    return ran


def _slips(word: str) -> list[str]:
    """Typos of the word (two letters swapped, one dropped, one doubled): each takes the
    close-spelling search down a differently sized statement."""
    if len(word) < 4:
        return []
    i = len(word) // 2
    return [
        word[:i] + word[i + 1] + word[i] + word[i + 2 :],
        word[:i] + word[i + 1 :],
        word[:i] + word[i] + word[i:],
    ]
