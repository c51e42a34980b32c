"""Family and patient search for `/family <query>` and `/pin <child query>` (no Slack here).

`parse_query` reads the text as an account number or chart id, a phone number (any format),
an email, a date of birth (optionally with name words: "ava 03/02/2019"), "last, first", or a
free name of one or more words (child or guardian, first and/or last name).

Candidates are always bounded, so a search is a handful of indexed queries at any size:
- account number / chart id / phone / email / DOB: equality on indexed columns;
- names: each word is expanded into a few candidate keys per role (the word itself, up to 12
  keys it is the prefix of, up to 25 keys within 1-3 edits by length, a transposition
  counting as one, among keys sharing the word's first or second letter), taken from an
  in-process set of the DISTINCT first and last keys (`NameKeys`: there are far fewer
  distinct names than people; each key comes with how many people carry it) and scored with
  rapidfuzz. Rows are then fetched by `last_key IN (...)` / `first_key IN (...)` on the btree
  indexes, every branch with a LIMIT, all branches of one table in one UNION ALL query. A
  key many people share ("smith") gets its own branch capped at a few families' worth; a
  "first last" pair is looked up through the rarer side's index (see `_NameMatcher._pair`).
- `NameKeys` lives per database (engine pool). Each search reads max(id) of patient and
  guardian (two primary-key look-ups) and loads only the new rows' keys when they grew; it
  reloads everything (GROUP BY on the key indexes, ~0.2 s at 250,000 patients) on first use,
  every ten minutes (renamed patients) and when the ids went down (a restored database).
  Call `name_keys(session)` at start-up to warm it, `forget_name_keys()` after renames.

Scores (0-100): exact matches score 100 (a child's last name), 97 (a guardian's), 90 (a first
name alone); a partial word ("smi") 80-89; a close spelling at most 85 x similarity (< 77);
"first last" weighs the last name 55% and the first name 45% (x 0.9 when both are only
close spellings); a family whose last name matches but not the first name scores 60.
`is_single_match` says when one family stands out.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlalchemy import ColumnElement, Select, func, or_, union_all
from sqlmodel import Session, col, select

from bot.errors import InvalidQuery
from bot.text import clean, email_key, fold, phone_digits
from models import Family, Guardian, Patient

MAX_QUERY_CHARS = 200
MAX_NAME_WORDS = 10
ROW_CAP = 500  # rows for a DOB, a phone, the children of matched families
ROW_BUDGET = 300  # rows for all the rarer name keys of one word together
COMMON_KEY_FAMILIES = 4  # a key shared by more than 4 x limit people gets its own capped branch
MAX_COMMON_KEYS = 4
PAIR_ROWS = 400  # rows for one "first last" reading
PREFIX_KEYS = 12
SIMILAR_KEYS = 25
RELOAD_SECONDS = 600
SINGLE_MATCH_GAP = 15
LAST_WEIGHT, FIRST_WEIGHT = 0.55, 0.45
FIRST_ONLY, REVERSED, MIDDLE_SKIPPED, GUARDIAN = 0.90, 0.95, 0.95, 0.97
LAST_ONLY, BOTH_SIMILAR, COMMONER = 0.60, 0.90, 0.005

HELP = ("Search by last name, \u201clast, first\u201d, a child's or guardian's name, phone, "
        "email, account number, chart id, or date of birth (MM/DD/YYYY or YYYY-MM-DD).")
_DATE_FORMATS = (
    (re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"), (3, 1, 2)),
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), (1, 2, 3)),
)
_SHORT_YEAR = re.compile(r"\d{1,2}/\d{1,2}/\d{2}")
_PHONE_TEXT = re.compile(r"\+?[\d\s().-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Slack may send a typed email or phone as <mailto:a@b.org|a@b.org> or <tel:555…|555…>.
_SLACK_LINK = re.compile(r"<(?:mailto:|tel:)?([^|<>]*)(?:\|([^<>]*))?>")


class QueryKind(StrEnum):
    NAME = "name"
    LAST_FIRST = "last, first"
    PHONE = "phone"
    EMAIL = "email"
    DOB = "date of birth"
    IDENTIFIER = "account number or chart id"


@dataclass(frozen=True)
class Query:
    kind: QueryKind
    text: str
    # Folded name words. LAST_FIRST: the last name's. DOB: any beside the date. IDENTIFIER:
    # the letters of a mostly-letters id, tried as a name when no id matches ("1Judysgirl").
    words: tuple[str, ...] = ()
    first: tuple[str, ...] = ()  # LAST_FIRST: the words after the comma
    value: str = ""  # PHONE: ten digits; EMAIL: lower-cased address
    identifier: str = ""  # IDENTIFIER, and a bare 10-digit PHONE (it may be an account number)
    dob: date | None = None


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


# --- reading the query --------------------------------------------------------------------

def parse_query(text: str) -> Query:
    raw = clean(_SLACK_LINK.sub(lambda link: link[2] or link[1], text or ""),
                limit=10 * MAX_QUERY_CHARS)
    if not raw:
        raise InvalidQuery(f"Type what to look for. {HELP}")
    if len(raw) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"That search is over {MAX_QUERY_CHARS} characters. {HELP}")
    if not any(c.isalnum() for c in raw):
        raise InvalidQuery(f"That search has no letters or digits. {HELP}")
    if "@" in raw:
        if not _EMAIL.fullmatch(raw):
            raise InvalidQuery(f"\u201c{raw}\u201d doesn't look like an email address.")
        return Query(QueryKind.EMAIL, raw, value=email_key(raw) or "")
    tokens = raw.split()
    dates = [(i, dob) for i, token in enumerate(tokens) if (dob := _parse_date(token))]
    if dates:
        index, dob = dates[0]
        words = _name_words(tokens[:index] + tokens[index + 1:])
        return Query(QueryKind.DOB, raw, words=words, dob=dob)
    digits = re.sub(r"\D", "", raw)
    if _PHONE_TEXT.fullmatch(raw) and (len(digits) == 10 or len(digits) == 11
                                        and digits[0] == "1"):
        return Query(QueryKind.PHONE, raw, value=phone_digits(raw) or "",
                     identifier=raw if raw.isdigit() else "")
    if digits and (len(tokens) == 1 or not re.search(r"[^\W\d_]", raw)):
        # Mostly letters ("1Judysgirl"): also tried as a name when no id matches.
        letters = sum(c.isalpha() for c in raw)
        words = _name_words(tokens) if letters > len(digits) else ()
        return Query(QueryKind.IDENTIFIER, raw, identifier=raw, words=words)
    if "," in raw:
        last, _, first = raw.partition(",")
        last_words, first_words = _name_words(last.split()), _name_words(first.split())
        if last_words:
            return Query(QueryKind.LAST_FIRST, raw, words=last_words, first=first_words)
    words = _name_words(tokens)
    if not words:
        raise InvalidQuery(f"\u201c{raw}\u201d has no name in it. {HELP}")
    return Query(QueryKind.NAME, raw, words=words)


def _parse_date(token: str) -> date | None:
    if _SHORT_YEAR.fullmatch(token):
        raise InvalidQuery(f"Write the year in full: \u201c{token}\u201d could be several "
                           "dates. Use MM/DD/YYYY or YYYY-MM-DD.")
    for pattern, (y, m, d) in _DATE_FORMATS:
        if found := pattern.fullmatch(token):
            try:
                return date(int(found[y]), int(found[m]), int(found[d]))
            except ValueError:
                raise InvalidQuery(f"\u201c{token}\u201d is not a real date. Dates of birth "
                                   "look like 03/02/2019 or 2019-03-02.") from None
    return None


def _name_words(tokens: Iterable[str]) -> tuple[str, ...]:
    words = tuple(w for w in map(fold, tokens) if w)
    if len(words) > MAX_NAME_WORDS:
        raise InvalidQuery(f"Use at most {MAX_NAME_WORDS} words of a name. {HELP}")
    return words


# --- the distinct-name-key cache ------------------------------------------------------------

class KeySet:
    """Distinct keys with how many people carry each: sorted for prefix look-ups (bisect),
    and grouped by first and by second letter, by length, for close spellings."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.sorted = sorted(k for k in counts if k)
        by_letter: dict[tuple[int, str], list[str]] = defaultdict(list)
        for key in sorted(self.sorted, key=len):
            by_letter[0, key[0]].append(key)
            if len(key) > 1:
                by_letter[1, key[1]].append(key)
        self.by_letter = {group: (keys, [len(k) for k in keys])
                          for group, keys in by_letter.items()}

    def __len__(self) -> int:
        return len(self.sorted)

    def with_prefix(self, prefix: str, limit: int) -> list[str]:
        """The shortest keys that start with `prefix` (Smith before Smithers)."""
        start = bisect_left(self.sorted, prefix)
        found = []
        for key in self.sorted[start:start + 20 * limit]:
            if not key.startswith(prefix):
                break
            found.append(key)
        return sorted(found, key=lambda k: (len(k), k))[:limit]

    def similar(self, word: str, max_edits: int, limit: int) -> list[tuple[str, int]]:
        """Keys within `max_edits` edits (insert, delete, substitute, swap two neighbours)
        among those whose first or second letter is the word's first or second letter: that
        keeps every single slip at the start ("msith", "dmith", "mith") and compares about a
        fifth of the keys."""
        choices: list[str] = []
        for group in {(0, word[0]), (1, word[0]), (0, word[1]), (1, word[1])}:
            keys, lengths = self.by_letter.get(group, ([], []))
            start = bisect_left(lengths, len(word) - max_edits)
            choices += keys[start:bisect_right(lengths, len(word) + max_edits, lo=start)]
        found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=max_edits,
                                limit=4 * limit)  # a key can sit in two groups
        unique = dict.fromkeys((key, int(distance)) for key, distance, _ in found)
        return list(unique)[:limit]

    def plus(self, keys: Iterable[str]) -> KeySet:
        """A copy that counts new rows' keys; re-sorted only when a new name appears."""
        counts, new_name = dict(self.counts), False
        for key in keys:
            new_name = new_name or key not in counts
            counts[key] = counts.get(key, 0) + 1
        if new_name:
            return KeySet(counts)
        same_names = copy.copy(self)
        same_names.counts = counts
        return same_names


@dataclass(frozen=True)
class NameKeys:
    first: KeySet
    last: KeySet
    marks: tuple[int, int]  # max(patient.id), max(guardian.id) when loaded
    loaded_at: float


_CACHE: WeakKeyDictionary[Any, NameKeys] = WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def name_keys(session: Session) -> NameKeys:
    """The distinct first and last keys of patients and guardians, kept fresh (see above)."""
    pool = session.get_bind().engine.pool  # one cache per database, whatever the session
    newest = session.exec(select(select(func.max(Patient.id)).scalar_subquery(),
                                 select(func.max(Guardian.id)).scalar_subquery())).one()
    marks = (newest[0] or 0, newest[1] or 0)
    with _CACHE_LOCK:
        cached = _CACHE.get(pool)
    if (cached is None or time.monotonic() - cached.loaded_at > RELOAD_SECONDS
            or any(now < then for now, then in zip(marks, cached.marks, strict=True))):
        keys = NameKeys(_count(session, "first_key"), _count(session, "last_key"), marks,
                        time.monotonic())
    elif marks != cached.marks:
        firsts, lasts = _keys_since(session, cached.marks)
        keys = NameKeys(cached.first.plus(firsts), cached.last.plus(lasts), marks,
                        cached.loaded_at)
    else:
        return cached
    with _CACHE_LOCK:
        _CACHE[pool] = keys
    return keys


def forget_name_keys() -> None:
    """Drop every cached key set (e.g. after renames, so close spellings see them at once)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _count(session: Session, column: str) -> KeySet:
    counts: Counter[str] = Counter()
    for table in (Patient, Guardian):
        key = col(getattr(table, column))
        counts.update(dict(session.exec(select(key, func.count()).group_by(key)).all()))
    return KeySet(counts)


def _keys_since(session: Session, marks: tuple[int, int]) -> tuple[list[str], list[str]]:
    rows = [*session.exec(select(Patient.first_key, Patient.last_key)
                          .where(col(Patient.id) > marks[0])),
            *session.exec(select(Guardian.first_key, Guardian.last_key)
                          .where(col(Guardian.id) > marks[1]))]
    return [first for first, _ in rows], [last for _, last in rows]


# --- matching names -------------------------------------------------------------------------

@dataclass(frozen=True)
class _KeyMatch:
    quality: float  # 1.0 exact, 0.80-0.90 partial, below 0.77 similar
    how: str  # "exact" | "partial" | "similar"


_HOW_RANK = {"exact": 0, "partial": 1, "similar": 2}
_HOW_TEXT = {"exact": "name", "partial": "name (partial)", "similar": "name (similar spelling)",
             "last only": "last name only"}


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


def _expand(word: str, keys: KeySet, *, fuzzy: bool = True) -> dict[str, _KeyMatch]:
    """Candidate keys for one word: itself, keys it starts, keys a few edits away. Between
    equally close keys the commoner name wins by a hair ("smiht": Smith before Smit)."""
    matches = {word: _KeyMatch(1.0, "exact")}

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
        self.first = {r.first: _expand(r.first, keys.first, fuzzy=r.first != whole)
                      for r in self.readings if r.first}
        self.last = {r.last: _expand(r.last, keys.last, fuzzy=r.last != whole)
                     for r in self.readings if r.last}

    def branches(self, table: type[Patient] | type[Guardian]) -> list[tuple[Any, int]]:
        """(condition, row cap) pairs, each an index look-up on first_key or last_key. A key
        that many people share ("smith") gets a branch of its own capped at a few families'
        worth; rarer keys are looked up together, best first, within a row budget."""
        first_key, last_key = col(table.first_key), col(table.last_key)
        rare: list[Any] = []
        branches: list[tuple[Any, int]] = []
        for r in self.readings:
            if r.first and r.last:
                branches.append(self._pair(first_key, last_key, r.first, r.last))
                continue
            column, matches, counts = (
                (last_key, self.last[r.last], self.keys.last.counts) if r.last
                else (first_key, self.first[r.first or ""], self.keys.first.counts))
            budget, pooled, common = ROW_BUDGET, [], 0
            for key in sorted(matches, key=lambda k: -matches[k].quality):
                size = counts.get(key, 0)
                if size > self.common and common < MAX_COMMON_KEYS:
                    branches.append((column == key, self.common))
                    common += 1
                elif size <= min(budget, self.common):
                    pooled.append(key)
                    budget -= size
            rare.append(column.in_(pooled))
        if pair_lasts := sorted({r.last for r in self.readings if r.first and r.last}):
            branches.append((last_key.in_(pair_lasts), self.common // 2))
        return [(or_(*rare), 2 * ROW_BUDGET), *branches] if rare else branches

    def _pair(self, first_key: Any, last_key: Any, first: str, last: str) -> tuple[Any, int]:
        """Rows for "first last", found through the index of the side with fewer people (the
        key counts say which). The other side's column is compared as `column || ''`, an
        expression no index serves, so neither SQLite's nor PostgreSQL's planner can walk all
        14,000 "Smith" entries to find one "Ava Smith"."""
        firsts, lasts = self.first[first], self.last[last]
        first_rows = sum(self.keys.first.counts.get(k, 0) for k in firsts)
        last_rows = sum(self.keys.last.counts.get(k, 0) for k in lasts)
        if first_rows < last_rows:
            return first_key.in_(firsts) & last_key.concat("").in_(lasts), PAIR_ROWS
        return last_key.in_(lasts) & first_key.concat("").in_(firsts), PAIR_ROWS

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


def _fetch(session: Session, table: type[Patient] | type[Guardian],
           branches: list[tuple[Any, int]]) -> list[Any]:
    columns = (col(table.id), col(table.family_id), col(table.first_key), col(table.last_key))
    parts: list[Select[Any]] = [select(*columns).where(c).limit(cap) for c, cap in branches]
    if len(parts) == 1:
        return list(session.exec(parts[0]))
    subqueries = [part.subquery() for part in parts]
    return list(session.exec(union_all(*(select(*sub.c) for sub in subqueries))))


def _name_found(session: Session, query: Query, *, children_only: bool,
                limit: int) -> list[_Found]:
    matcher = _NameMatcher(query, name_keys(session), limit)
    tables: tuple[type[Patient] | type[Guardian], ...] = (
        (Patient,) if children_only else (Patient, Guardian))
    found = []
    for table in tables:
        who, weight = ("child", 1.0) if table is Patient else ("guardian", GUARDIAN)
        seen: set[int] = set()
        for row_id, family_id, first_key, last_key in _fetch(session, table,
                                                            matcher.branches(table)):
            if row_id in seen or not (match := matcher.score(first_key, last_key)):
                continue
            seen.add(row_id)
            score, exact, how = match
            found.append(_Found(family_id, row_id if table is Patient else None,
                                score * weight, exact, f"{who} {_HOW_TEXT[how]}"))
    return found


def _dob_found(session: Session, query: Query) -> list[_Found]:
    """Children born that day; with name words, the ones whose names match come first."""
    rows = session.exec(select(Patient.id, Patient.family_id, Patient.first_key,
                               Patient.last_key).where(Patient.dob == query.dob).limit(ROW_CAP))
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
    families = session.exec(select(Family.id).where(col(Family.account_number).in_(variants)))
    charts = session.exec(select(Patient.id, Patient.family_id)
                          .where(col(Patient.chart_id).in_(variants)))
    return [*(_Found(family_id, None, 1.0, True, "account number") for family_id in families),
            *(_Found(family_id, patient_id, 1.0, True, "chart id")
              for patient_id, family_id in charts)]


def _guardian_found(session: Session, condition: ColumnElement[bool], what: str) -> list[_Found]:
    rows = session.exec(select(Guardian.family_id).where(condition).limit(ROW_CAP))
    return [_Found(family_id, None, 1.0, True, what) for family_id in rows]


def _find(session: Session, query: Query, *, limit: int,
          children_only: bool = False) -> list[_Found]:
    if query.kind in (QueryKind.NAME, QueryKind.LAST_FIRST):
        return _name_found(session, query, children_only=children_only, limit=limit)
    if query.kind is QueryKind.DOB:
        return _dob_found(session, query)
    if query.kind is QueryKind.EMAIL:
        return _guardian_found(session, col(Guardian.match_key) == query.value, "guardian email")
    found = _identifier_found(session, query.identifier) if query.identifier else []
    if query.kind is QueryKind.PHONE:
        found += _guardian_found(session, col(Guardian.phone_digits) == query.value,
                                 "guardian phone")
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
    ranked = sorted(_best_by(found, lambda f: f.family_id).values(),
                    key=lambda f: (-f.score, not f.exact, -members[f.family_id], f.family_id))
    labels = _family_labels(session, [f.family_id for f in ranked[:limit]])
    return [FamilyHit(f.family_id, labels[f.family_id][0], _percent(f.score), f.matched_on,
                      labels[f.family_id][1], f.exact)
            for f in ranked[:limit] if f.family_id in labels]


def search_patients(session: Session, text: str, *, limit: int = 10) -> list[PatientHit]:
    """Children matching `text` (for /pin), best first. A match on the family (account number,
    guardian phone or email) stands for each of its children."""
    found = _find(session, parse_query(text), limit=limit, children_only=True)
    families = _best_by((f for f in found if f.patient_id is None), lambda f: f.family_id)
    if families:
        rows = session.exec(select(Patient.id, Patient.family_id)
                            .where(col(Patient.family_id).in_(families)).limit(ROW_CAP))
        found += [replace(families[family_id], patient_id=patient_id)
                  for patient_id, family_id in rows]
    ranked = sorted(_best_by(found, lambda f: f.patient_id).values(),
                    key=lambda f: (*_rank_key(f), f.patient_id))[:limit]
    labels = _patient_labels(session, [f.patient_id for f in ranked if f.patient_id])
    return [PatientHit(f.patient_id, f.family_id, _percent(f.score), labels[f.patient_id],
                       f.matched_on, f.exact)
            for f in ranked if f.patient_id in labels]


def _percent(score: float) -> int:
    return max(0, min(100, round(score * 100)))


def _family_labels(session: Session, family_ids: list[int]) -> dict[int, tuple[str, str]]:
    """family id -> (account number, "Smith — Ava (2019-03-02), Ben (…); guardian Jane Smith")."""
    if not family_ids:
        return {}
    accounts = dict(session.exec(select(Family.id, Family.account_number)
                                 .where(col(Family.id).in_(family_ids))).all())
    children: dict[int, list[tuple[str, str, date]]] = defaultdict(list)
    for family_id, first, last, dob in session.exec(
            select(Patient.family_id, Patient.first_name, Patient.last_name, Patient.dob)
            .where(col(Patient.family_id).in_(family_ids)).order_by(Patient.dob, Patient.id)):
        children[family_id].append((clean(first), clean(last), dob))
    guardians: dict[int, list[str]] = defaultdict(list)
    for family_id, first, last in session.exec(
            select(Guardian.family_id, Guardian.first_name, Guardian.last_name)
            .where(col(Guardian.family_id).in_(family_ids)).order_by(Guardian.id)):
        guardians[family_id].append(f"{clean(first)} {clean(last)}".strip())
    return {family_id: (account, family_label(account, children[family_id],
                                              guardians[family_id]))
            for family_id, account in accounts.items()}


def family_label(account: str, children: list[tuple[str, str, date]],
                 guardians: list[str]) -> str:
    surnames = Counter(last for _, last, _ in children) or Counter(
        name.rsplit(" ", 1)[-1] for name in guardians)
    surname = surnames.most_common(1)[0][0] if surnames else f"Account {account}"
    kids = [f"{first}{'' if last == surname else ' ' + last} ({dob.isoformat()})"
            for first, last, dob in children]
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
    rows = session.exec(
        select(Patient.id, Patient.first_name, Patient.last_name, Patient.dob,
               Family.account_number)
        .join(Family, col(Family.id) == col(Patient.family_id))
        .where(col(Patient.id).in_(patient_ids)))
    return {patient_id: f"{clean(first)} {clean(last)} ({dob.isoformat()}) \u2014 "
                        f"account {account}"
            for patient_id, first, last, dob, account in rows}
