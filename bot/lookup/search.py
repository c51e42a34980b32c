"""Family and patient search for `/family <query>` and `/pin <child query>` (no Slack here).

The text is read by `parse_query` (bot/query.py) as an account number or chart id, a phone
number, an email, a date of birth (optionally with name words), "last, first", or a free name.

Candidates are always bounded, so a search is a handful of indexed queries at any size:
- account number / chart id / phone / email / DOB: equality on indexed columns;
- names: each word is expanded into a few candidate keys per role (the word itself, up to 12
  keys it is the prefix of, up to 25 keys within 1-3 edits by length, a transposition
  counting as one, among keys sharing the word's first or second letter), taken from the
  in-process set of the DISTINCT first and last keys (bot/name_keys.py: there are far fewer
  distinct names than people; each key comes with how many people carry it) and scored with
  rapidfuzz. Rows are then fetched by `last_key IN (...)` / `first_key IN (...)` on the btree
  indexes, every branch with a LIMIT, all branches of one table in one UNION ALL query. A
  key many people share ("smith") gets its own branch capped at a few families' worth; a
  "first last" pair is looked up through the rarer side's index (see `_NameMatcher._pair`).

Speed: a search spends more time building SQLAlchemy statements than the database spends
answering them, so every statement is built once — per shape, with expanding IN parameters
(`_union`, `_by_ids`) — and run on the session's connection, skipping the ORM layer.

Scores (0-100): exact matches score 100 (a child's last name), 97 (a guardian's), 90 (a first
name alone); a partial word ("smi") 80-89; a close spelling at most 85 x similarity (< 77);
"first last" weighs the last name 55% and the first name 45% (x 0.9 when both are only
close spellings); a family whose last name matches but not the first name scores 60.
`is_single_match` says when one family stands out.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any, Protocol

from rapidfuzz import fuzz
from sqlalchemy import BindParameter, Select, bindparam, literal_column, or_, union_all
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from bot.lookup.name_keys import KeySet, NameKeys, forget_name_keys, name_keys
from bot.lookup.query import Query, QueryKind, parse_query
from bot.text import clean
from models import Family, Guardian, Patient

__all__ = [
    "FamilyHit",
    "PatientHit",
    "Query",
    "QueryKind",
    "family_label",
    "forget_name_keys",
    "is_single_match",
    "name_keys",
    "parse_query",
    "search_families",
    "search_patients",
]

ROW_CAP = 500  # rows for a DOB, a phone, the children of matched families
ROW_BUDGET = 300  # rows for all the rarer name keys of one word together
COMMON_KEY_FAMILIES = 4  # a key shared by more than 4 x limit people gets its own capped branch
MAX_COMMON_KEYS = 4
PAIR_ROWS = 400  # rows for one "first last" reading
PREFIX_KEYS = 12
SIMILAR_KEYS = 25
SINGLE_MATCH_GAP = 15
LAST_WEIGHT, FIRST_WEIGHT = 0.55, 0.45
FIRST_ONLY, REVERSED, MIDDLE_SKIPPED, GUARDIAN = 0.90, 0.95, 0.95, 0.97
LAST_ONLY, BOTH_SIMILAR, COMMONER = 0.60, 0.90, 0.005


@dataclass(frozen=True)
class FamilyHit:
    family_id: int
    account_number: str
    score: int
    matched_on: str
    label: str
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


# --- matching names -------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyMatch:
    quality: float  # 1.0 exact, 0.80-0.90 partial, below 0.77 similar
    how: str  # "exact" | "partial" | "similar"


_HOW_RANK = {"exact": 0, "partial": 1, "similar": 2}
_HOW_TEXT = {
    "exact": "name",
    "partial": "name (partial)",
    "similar": "name (similar spelling)",
    "last only": "last name only",
}


@dataclass(frozen=True)
class _Reading:
    """One way to read the name words: which words are the first name, which the last."""

    first: str | None
    last: str | None
    weight: float


def _readings(query: Query) -> list[_Reading]:
    whole = "".join(query.words)
    if query.kind is QueryKind.LAST_FIRST:
        firsts = sorted({query.first[0], "".join(query.first)}) if query.first else [None]
        return [_Reading(first, whole, 1.0) for first in firsts]
    words = query.words
    readings = [_Reading(None, whole, 1.0), _Reading(whole, None, FIRST_ONLY)]
    # Every split of up to 4 words; past that only a first name at either end
    # ("Imogen Coreth von und zu Coredo und Starkenberg").
    splits = range(1, len(words)) if len(words) <= 4 else (1, len(words) - 1)
    for i in splits:
        head, tail = "".join(words[:i]), "".join(words[i:])
        readings += [_Reading(head, tail, 1.0), _Reading(tail, head, REVERSED)]
    if len(words) > 2:
        readings.append(_Reading(words[0], words[-1], MIDDLE_SKIPPED))
    return readings


def _max_edits(word: str) -> int:
    return 0 if len(word) < 3 else 1 if len(word) <= 5 else 2 if len(word) <= 9 else 3


def _expand(
    word: str, keys: KeySet, *, fuzzy: bool = True, settled: bool = False
) -> dict[str, _KeyMatch]:
    """Candidate keys for one word: itself, keys it starts, keys a few edits away. Between
    equally close keys the commoner name wins by a hair ("smiht": Smith before Smit).
    `settled`: the word itself is a key shared by more people than a result list shows, so
    nothing partial or close can reach the list: only the word (no scan, fewer rows)."""
    matches = {word: _KeyMatch(1.0, "exact")}
    if settled:
        return matches

    def add(key: str, quality: float, how: str) -> None:
        prior = COMMONER * min(1.0, math.log10(1 + keys.counts.get(key, 0)) / 5)
        matches.setdefault(key, _KeyMatch(quality + prior, how))

    if len(word) >= 2:
        for key in keys.with_prefix(word, PREFIX_KEYS):
            add(key, 0.80 + 0.09 * len(word) / len(key), "partial")
    if fuzzy and (edits := _max_edits(word)):
        for key, distance in keys.similar(word, edits, SIMILAR_KEYS):
            add(key, 0.85 * (1 - distance / max(len(word), len(key))), "similar")
    return matches


class _NameMatcher:
    def __init__(self, query: Query, keys: NameKeys, limit: int) -> None:
        self.readings = _readings(query)
        self.keys = keys
        self.common = COMMON_KEY_FAMILIES * limit
        # "ava smith" read as one word "avasmith": exact or partial only (it is there for
        # "de la cruz" and "mary ann"), which also spares two long close-spelling scans.
        several = query.kind is QueryKind.NAME and len(query.words) > 1
        whole = "".join(query.words) if several else ""
        # A word that is itself a common key settles its role: exact matches fill the list
        # (a single word that is a common last name settles its first-name reading too: a
        # first name alone scores at most 90, below every one of those exact matches).
        lone_last = (
            query.kind is not QueryKind.LAST_FIRST
            and len(query.words) == 1
            and self._common(keys.last, query.words[0])
        )
        self.first = {
            r.first: _expand(
                r.first,
                keys.first,
                fuzzy=r.first != whole,
                settled=lone_last or self._common(keys.first, r.first),
            )
            for r in self.readings
            if r.first
        }
        self.last = {
            r.last: _expand(
                r.last, keys.last, fuzzy=r.last != whole, settled=self._common(keys.last, r.last)
            )
            for r in self.readings
            if r.last
        }

    def _common(self, keys: KeySet, word: str) -> bool:
        return keys.counts.get(word, 0) > self.common

    def branches(self) -> list[_Branch]:
        """Index look-ups on first_key or last_key, each with a row cap. A key that many
        people share ("smith") gets a branch of its own capped at a few families' worth;
        rarer keys are looked up together, best first, within a row budget."""
        rare: dict[str, list[str]] = {"last": [], "first": []}
        branches: list[_Branch] = []
        for r in self.readings:
            if r.first and r.last:
                branches.append(self._pair(r.first, r.last))
                continue
            side, matches, counts = (
                ("last", self.last[r.last], self.keys.last.counts)
                if r.last
                else ("first", self.first[r.first or ""], self.keys.first.counts)
            )
            budget, common = ROW_BUDGET, 0
            for key in sorted(matches, key=lambda k: -matches[k].quality):
                size = counts.get(key, 0)
                if size > self.common and common < MAX_COMMON_KEYS:
                    branches.append(_Branch(side, ((key,),), self.common))
                    common += 1
                elif size <= min(budget, self.common):
                    rare[side].append(key)
                    budget -= size
        if pair_lasts := sorted({r.last for r in self.readings if r.first and r.last}):
            branches.append(_Branch("last", (tuple(pair_lasts),), self.common // 2))
        lasts, firsts = tuple(dict.fromkeys(rare["last"])), tuple(dict.fromkeys(rare["first"]))
        return _padded([_Branch("last|first", (lasts, firsts), 2 * ROW_BUDGET), *branches])

    def _pair(self, first: str, last: str) -> _Branch:
        """Rows for "first last", found through the index of the side with fewer people (the
        key counts say which). The other side's column is compared as `column || ''`, an
        expression no index serves, so neither SQLite's nor PostgreSQL's planner can walk all
        14,000 "Smith" entries to find one "Ava Smith"."""
        firsts, lasts = tuple(self.first[first]), tuple(self.last[last])
        first_rows = sum(self.keys.first.counts.get(k, 0) for k in firsts)
        last_rows = sum(self.keys.last.counts.get(k, 0) for k in lasts)
        if first_rows < last_rows:
            return _Branch("first+last", (firsts, lasts), PAIR_ROWS)
        return _Branch("last+first", (lasts, firsts), PAIR_ROWS)

    def score(self, first_key: str, last_key: str) -> tuple[float, bool, str] | None:
        """(score 0-1, exact, how) of the best reading for one person, or None."""
        best: tuple[float, bool, str] | None = None
        for r in self.readings:
            last = self.last[r.last].get(last_key) if r.last else None
            first = self.first[r.first].get(first_key) if r.first else None
            if r.first and r.last and last and first:
                how = max(last.how, first.how, key=_HOW_RANK.__getitem__)
                quality = LAST_WEIGHT * last.quality + FIRST_WEIGHT * first.quality
                if last.how == first.how == "similar":
                    quality *= BOTH_SIMILAR  # below "the last name matches exactly"
                result = (r.weight * quality, how == "exact", how)
            elif r.first and r.last and last and last.how == "exact":
                result = (r.weight * LAST_ONLY, False, "last only")
            elif not (r.first and r.last) and (match := last or first):
                result = (r.weight * match.quality, match.how == "exact", match.how)
            else:
                continue
            if best is None or result[:2] > best[:2]:
                best = result
        return best


# --- finding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    family_id: int
    patient_id: int | None  # None: the family, or one of its guardians, matched
    score: float  # 0-1
    exact: bool
    matched_on: str


@dataclass(frozen=True)
class _Branch:
    """One index look-up: `shape` says which columns (see `_condition`), `keys` the values
    of its one or two IN lists, `cap` its LIMIT."""

    shape: str
    keys: tuple[tuple[str, ...], ...]
    cap: int


Table = type[Patient] | type[Guardian]


# Look-ups of one shape are padded to one of these counts with empty ones (LIMIT 0).
_PAD_TO = {"last": (2, 5), "first": (2, 4), "first+last": (1, 2, 4, 8), "last+first": (1, 2, 4, 8)}


def _padded(branches: list[_Branch]) -> list[_Branch]:
    """The branches in a fixed order, each shape padded with empty look-ups to one of a few
    counts. A statement is built and compiled once per sequence of shapes (5-10 ms for a
    big one), so few sequences mean that cost is paid a few dozen times after start instead
    of on one search in ten."""
    padded = [b for b in branches if b.shape == "last|first"]
    for shape, counts in _PAD_TO.items():
        mine = [b for b in branches if b.shape == shape]
        if mine:
            count = next((n for n in counts if n >= len(mine)), len(mine))
            empty = _Branch(shape, tuple(() for _ in mine[0].keys), 0)
            padded += mine + [empty] * (count - len(mine))
    return padded


def _condition(table: Table, shape: str, a: Any, b: Any) -> Any:
    first, last = col(table.first_key), col(table.last_key)
    if shape == "last|first":
        return or_(last.in_(a), first.in_(b))
    if shape == "first+last":  # the first name's index; the last name compared row by row
        return first.in_(a) & last.concat("").in_(b)
    if shape == "last+first":
        return last.in_(a) & first.concat("").in_(b)
    return (last if shape == "last" else first).in_(a)


@cache
def _union(tables: tuple[Table, ...], shapes: tuple[str, ...]) -> Any:
    """The branches of every table in one statement (one round trip), rows tagged with the
    table's position in `tables`. Built and compiled once per shape, then only run."""
    params: list[tuple[BindParameter[Any], BindParameter[Any], BindParameter[Any]]] = [
        (bindparam(f"a{i}", expanding=True), bindparam(f"b{i}", expanding=True), bindparam(f"n{i}"))
        for i in range(len(shapes))
    ]
    parts: list[Select[Any]] = []
    for tag, table in enumerate(tables):
        columns: tuple[Any, ...] = (
            literal_column(str(tag)).label("tag"),
            col(table.id),
            col(table.family_id),
            col(table.first_key),
            col(table.last_key),
        )
        parts += [
            core_select(*columns).where(_condition(table, shape, a, b)).limit(n)
            for shape, (a, b, n) in zip(shapes, params, strict=True)
        ]
    if len(parts) == 1:
        return parts[0]
    subqueries = [part.subquery() for part in parts]
    return union_all(*(select(*sub.c) for sub in subqueries))


def _fetch(session: Session, tables: tuple[Table, ...], branches: list[_Branch]) -> list[Any]:
    if not branches:
        return []
    params: dict[str, Any] = {}
    for i, branch in enumerate(branches):
        params[f"n{i}"] = branch.cap
        for name, keys in zip("ab", branch.keys, strict=False):
            params[f"{name}{i}"] = list(keys)
    return _run(session, _union(tables, tuple(b.shape for b in branches)), **params)


def _run(session: Session, statement: Any, **params: Any) -> list[Any]:
    """Run a prebuilt statement on the session's connection (no ORM layer: plain rows)."""
    return list(session.connection().execute(statement, params).fetchall())


def _name_found(session: Session, query: Query, *, children_only: bool, limit: int) -> list[_Found]:
    matcher = _NameMatcher(query, name_keys(session), limit)
    tables: tuple[Table, ...] = (Patient,) if children_only else (Patient, Guardian)
    found = []
    seen: set[tuple[int, int]] = set()
    for tag, row_id, family_id, first_key, last_key in _fetch(session, tables, matcher.branches()):
        if (tag, row_id) in seen or not (match := matcher.score(first_key, last_key)):
            continue
        seen.add((tag, row_id))
        score, exact, how = match
        child = tables[tag] is Patient
        found.append(
            _Found(
                family_id,
                row_id if child else None,
                score * (1.0 if child else GUARDIAN),
                exact,
                f"{'child' if child else 'guardian'} {_HOW_TEXT[how]}",
            )
        )
    return found


def _ids_in(column: Any) -> Any:
    return col(column).in_(bindparam("ids", expanding=True))


# Every other statement of a search, built once (see the module docstring).
_BY_DOB = (
    select(Patient.id, Patient.family_id, Patient.first_key, Patient.last_key)
    .where(Patient.dob == bindparam("dob"))
    .limit(ROW_CAP)
)
_FAMILY_BY_ACCOUNT = select(Family.id).where(_ids_in(Family.account_number))
_PATIENT_BY_CHART = select(Patient.id, Patient.family_id).where(_ids_in(Patient.chart_id))
_GUARDIAN_BY_EMAIL = (
    select(Guardian.family_id).where(Guardian.match_key == bindparam("value")).limit(ROW_CAP)
)
_GUARDIAN_BY_PHONE = (
    select(Guardian.family_id).where(Guardian.phone_digits == bindparam("value")).limit(ROW_CAP)
)
_CHILDREN_OF = (
    select(Patient.id, Patient.family_id).where(_ids_in(Patient.family_id)).limit(ROW_CAP)
)
_FAMILIES_AND_CHILDREN = (
    core_select(
        col(Family.id),
        col(Family.account_number),
        col(Patient.first_name),
        col(Patient.last_name),
        col(Patient.dob),
    )
    .outerjoin(Patient, col(Patient.family_id) == col(Family.id))
    .where(_ids_in(Family.id))
    .order_by(col(Patient.dob), col(Patient.id))
)
_GUARDIAN_NAMES = (
    select(Guardian.family_id, Guardian.first_name, Guardian.last_name)
    .where(_ids_in(Guardian.family_id))
    .order_by(col(Guardian.id))
)
_PATIENT_LABELS = (
    core_select(
        col(Patient.id),
        col(Patient.first_name),
        col(Patient.last_name),
        col(Patient.dob),
        col(Family.account_number),
    )
    .join(Family, col(Family.id) == col(Patient.family_id))
    .where(_ids_in(Patient.id))
)


def _dob_found(session: Session, query: Query) -> list[_Found]:
    """Children born that day; with name words, the ones whose names match come first."""
    rows = _run(session, _BY_DOB, dob=query.dob)
    found = []
    for patient_id, family_id, first_key, last_key in rows:
        if not query.words:
            found.append(_Found(family_id, patient_id, 1.0, True, "DOB"))
            continue
        keys = (first_key, last_key)
        if all(word in keys for word in query.words):
            found.append(_Found(family_id, patient_id, 1.0, True, "DOB and child name"))
            continue
        similarity = sum(max(fuzz.ratio(w, k) for k in keys) for w in query.words)
        score = 0.50 + 0.35 * similarity / (100 * len(query.words))
        found.append(_Found(family_id, patient_id, score, False, "DOB"))
    return found


def _identifier_found(session: Session, identifier: str) -> list[_Found]:
    """Exact account number or chart id, as typed, upper- or lower-cased (both index look-ups;
    ids stored in mixed case must be typed as stored)."""
    bare = identifier.lstrip("#")
    variants = sorted({identifier, bare, bare.upper(), bare.lower()})
    families = _run(session, _FAMILY_BY_ACCOUNT, ids=variants)
    charts = _run(session, _PATIENT_BY_CHART, ids=variants)
    return [
        *(_Found(family_id, None, 1.0, True, "account number") for (family_id,) in families),
        *(_Found(family_id, patient_id, 1.0, True, "chart id") for patient_id, family_id in charts),
    ]


def _guardian_found(session: Session, statement: Any, value: str, what: str) -> list[_Found]:
    return [
        _Found(family_id, None, 1.0, True, what)
        for (family_id,) in _run(session, statement, value=value)
    ]


def _find(
    session: Session, query: Query, *, limit: int, children_only: bool = False
) -> list[_Found]:
    if query.kind in (QueryKind.NAME, QueryKind.LAST_FIRST):
        return _name_found(session, query, children_only=children_only, limit=limit)
    if query.kind is QueryKind.DOB:
        return _dob_found(session, query)
    if query.kind is QueryKind.EMAIL:
        return _guardian_found(session, _GUARDIAN_BY_EMAIL, query.value, "guardian email")
    found = _identifier_found(session, query.identifier) if query.identifier else []
    if query.kind is QueryKind.PHONE:
        found += _guardian_found(session, _GUARDIAN_BY_PHONE, query.value, "guardian phone")
    if not found and query.words:
        return _name_found(session, query, children_only=children_only, limit=limit)
    return found


def _rank_key(found: _Found) -> tuple[float, bool, int]:
    return (-found.score, not found.exact, found.family_id)


def _best_by(found: Iterable[_Found], key: Callable[[_Found], int | None]) -> dict[int, _Found]:
    best: dict[int, _Found] = {}
    for f in found:
        k = key(f)
        if k is not None and (k not in best or _rank_key(f) < _rank_key(best[k])):
            best[k] = f
    return best


# --- results ----------------------------------------------------------------------------------


def search_families(session: Session, text: str, *, limit: int = 10) -> list[FamilyHit]:
    """Families matching `text`, best first (raises InvalidQuery for unreadable text). Among
    equal scores, families where more people match come first."""
    found = _find(session, parse_query(text), limit=limit)
    members = Counter(f.family_id for f in found)
    ranked = sorted(
        _best_by(found, lambda f: f.family_id).values(),
        key=lambda f: (-f.score, not f.exact, -members[f.family_id], f.family_id),
    )
    labels = _family_labels(session, [f.family_id for f in ranked[:limit]])
    return [
        FamilyHit(
            f.family_id,
            labels[f.family_id][0],
            _percent(f.score),
            f.matched_on,
            labels[f.family_id][1],
            f.exact,
        )
        for f in ranked[:limit]
        if f.family_id in labels
    ]


def search_patients(session: Session, text: str, *, limit: int = 10) -> list[PatientHit]:
    """Children matching `text` (for /pin), best first. A match on the family (account number,
    guardian phone or email) stands for each of its children."""
    found = _find(session, parse_query(text), limit=limit, children_only=True)
    families = _best_by((f for f in found if f.patient_id is None), lambda f: f.family_id)
    if families:
        rows = _run(session, _CHILDREN_OF, ids=list(families))
        found += [
            replace(families[family_id], patient_id=patient_id) for patient_id, family_id in rows
        ]
    ranked = sorted(
        _best_by(found, lambda f: f.patient_id).values(),
        key=lambda f: (*_rank_key(f), f.patient_id),
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
    accounts: dict[int, str] = {}
    children: dict[int, list[tuple[str, str, date]]] = defaultdict(list)
    for family_id, account, first, last, dob in _run(
        session, _FAMILIES_AND_CHILDREN, ids=family_ids
    ):
        accounts[family_id] = account
        if dob is not None:  # a family with no children on file has one row of NULLs
            children[family_id].append((clean(first), clean(last), dob))
    guardians: dict[int, list[str]] = defaultdict(list)
    for family_id, first, last in _run(session, _GUARDIAN_NAMES, ids=family_ids):
        guardians[family_id].append(f"{clean(first)} {clean(last)}".strip())
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
    rows = _run(session, _PATIENT_LABELS, ids=patient_ids)
    return {
        patient_id: f"{clean(first)} {clean(last)} ({dob.isoformat()}) \u2014 account {account}"
        for patient_id, first, last, dob, account in rows
    }
