"""Matching the name words of a query against the in-process set of name keys: each word's
exact, partial (prefix) and close-spelling keys per role, scored with rapidfuzz, and the
readings of a query ("first last", "last, first", one last name). See bot/lookup/search.py
for the whole algorithm."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.lookup.name_keys import KeySet, NameKeys
from bot.lookup.query import Query, QueryKind

ROW_CAP = 500  # rows for a DOB, a phone, the children of matched families
ROW_BUDGET = 300  # rows for all the rarer name keys of one word together
COMMON_KEY_FAMILIES = 4  # a key shared by more than 4 x limit people gets its own capped branch
MAX_COMMON_KEYS = 4
PAIR_ROWS = 400  # rows for one "first last" reading
PREFIX_KEYS = 12
SIMILAR_KEYS = 25
LAST_WEIGHT, FIRST_WEIGHT = 0.55, 0.45
FIRST_ONLY, REVERSED, MIDDLE_SKIPPED, GUARDIAN = 0.90, 0.95, 0.95, 0.97
LAST_ONLY, BOTH_SIMILAR, COMMONER = 0.60, 0.90, 0.005


@dataclass(frozen=True)
class Branch:
    """One index look-up: `shape` says which columns (see `_condition`), `keys` the values
    of its one or two IN lists, `cap` its LIMIT."""

    shape: str
    keys: tuple[tuple[str, ...], ...]
    cap: int


# Look-ups of one shape are padded to one of these counts with empty ones (LIMIT 0).
_PAD_TO = {"last": (2, 5), "first": (2, 4), "last+first": (1, 2, 4, 8)}


def padded(branches: list[Branch]) -> list[Branch]:
    """The branches in a fixed order, each shape padded with empty look-ups to one of a few
    counts. A statement is built and compiled once per sequence of shapes (5-10 ms for a
    big one), so few sequences mean that cost is paid a few dozen times after start instead
    of on one search in ten."""
    padded = [b for b in branches if b.shape == "last|first"]
    for shape, counts in _PAD_TO.items():
        mine = [b for b in branches if b.shape == shape]
        if mine:
            count = next((n for n in counts if n >= len(mine)), len(mine))
            empty = Branch(shape, tuple(() for _ in mine[0].keys), 0)
            padded += mine + [empty] * (count - len(mine))
    return padded


# --- matching names -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyMatch:
    quality: float  # 1.0 exact, 0.80-0.90 partial, below 0.77 similar
    how: str  # "exact" | "partial" | "similar"


HOW_RANK = {"exact": 0, "partial": 1, "similar": 2}
HOW_TEXT = {
    "exact": "name",
    "partial": "name (partial)",
    "similar": "name (similar spelling)",
    "last only": "last name only",
}


@dataclass(frozen=True)
class Reading:
    """One way to read the name words: which words are the first name, which the last."""

    first: str | None
    last: str | None
    weight: float


def readings(query: Query) -> list[Reading]:
    whole = "".join(query.words)
    if query.kind is QueryKind.LAST_FIRST:
        firsts = sorted({query.first[0], "".join(query.first)}) if query.first else [None]
        return [Reading(first, whole, 1.0) for first in firsts]
    words = query.words
    readings = [Reading(None, whole, 1.0), Reading(whole, None, FIRST_ONLY)]
    # Every split of up to 4 words; past that only a first name at either end
    # ("Imogen Coreth von und zu Coredo und Starkenberg").
    splits = range(1, len(words)) if len(words) <= 4 else (1, len(words) - 1)
    for i in splits:
        head, tail = "".join(words[:i]), "".join(words[i:])
        readings += [Reading(head, tail, 1.0), Reading(tail, head, REVERSED)]
    if len(words) > 2:
        readings.append(Reading(words[0], words[-1], MIDDLE_SKIPPED))
    return readings


def _max_edits(word: str) -> int:
    return 0 if len(word) < 3 else 1 if len(word) <= 5 else 2 if len(word) <= 9 else 3


def _expand(
    word: str, keys: KeySet, *, fuzzy: bool = True, settled: bool = False
) -> dict[str, KeyMatch]:
    """Candidate keys for one word: itself, keys it starts, keys a few edits away. Between
    equally close keys the commoner name wins by a hair ("smiht": Smith before Smit).
    `settled`: the word itself is a key shared by more people than a result list shows, so
    nothing partial or close can reach the list: only the word (no scan, fewer rows)."""
    matches = {word: KeyMatch(1.0, "exact")}
    if settled:
        return matches

    def add(key: str, quality: float, how: str) -> None:
        prior = COMMONER * min(1.0, math.log10(1 + keys.counts.get(key, 0)) / 5)
        matches.setdefault(key, KeyMatch(quality + prior, how))

    if len(word) >= 2:
        for key in keys.with_prefix(word, PREFIX_KEYS):
            add(key, 0.80 + 0.09 * len(word) / len(key), "partial")
    if fuzzy and (edits := _max_edits(word)):
        for key, distance in keys.similar(word, edits, SIMILAR_KEYS):
            add(key, 0.85 * (1 - distance / max(len(word), len(key))), "similar")
    return matches


class NameMatcher:
    def __init__(self, query: Query, keys: NameKeys, limit: int) -> None:
        self.readings = readings(query)
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

        # Per reading: its weight and the key matches of its first and its last word.
        self._plans = [
            (
                r.weight,
                self.first[r.first] if r.first else None,
                self.last[r.last] if r.last else None,
            )
            for r in self.readings
        ]

    def _common(self, keys: KeySet, word: str) -> bool:
        return keys.counts.get(word, 0) > self.common

    def branches(self) -> list[Branch]:
        """Index look-ups on first_key or last_key, each with a row cap. A key that many
        people share ("smith") gets a branch of its own capped at a few families' worth;
        rarer keys are looked up together, best first, within a row budget."""
        rare: dict[str, list[str]] = {"last": [], "first": []}
        branches: list[Branch] = []
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
                    branches.append(Branch(side, ((key,),), self.common))
                    common += 1
                elif size <= min(budget, self.common):
                    rare[side].append(key)
                    budget -= size
        if pair_lasts := sorted({r.last for r in self.readings if r.first and r.last}):
            branches.append(Branch("last", (tuple(pair_lasts),), self.common // 2))
        lasts, firsts = tuple(dict.fromkeys(rare["last"])), tuple(dict.fromkeys(rare["first"]))
        return padded([Branch("last|first", (lasts, firsts), 2 * ROW_BUDGET), *branches])

    def _pair(self, first: str, last: str) -> Branch:
        """Rows for "first last": every pair of the two words' candidate keys, each one seek
        on a two-column index."""
        return Branch("last+first", (tuple(self.last[last]), tuple(self.first[first])), PAIR_ROWS)

    def score(self, first_key: str, last_key: str) -> tuple[float, bool, str] | None:
        """(score 0-1, exact, how) of the best reading for one person, or None. Called for
        every row a search fetches (hundreds): the readings' key matches are looked up once,
        in `_plans`."""
        best: tuple[float, bool, str] | None = None
        for weight, firsts, lasts in self._plans:
            if firsts is not None and lasts is not None:  # "first last"
                last = lasts.get(last_key)
                if last is None:
                    continue
                first = firsts.get(first_key)
                if first is not None:
                    how = last.how if HOW_RANK[last.how] >= HOW_RANK[first.how] else first.how
                    quality = LAST_WEIGHT * last.quality + FIRST_WEIGHT * first.quality
                    if last.how == first.how == "similar":
                        quality *= BOTH_SIMILAR  # below "the last name matches exactly"
                    result = (weight * quality, how == "exact", how)
                elif last.how == "exact":
                    result = (weight * LAST_ONLY, False, "last only")
                else:
                    continue
            else:  # a reading of one name: a first name or a last name alone
                matches, key = (lasts, last_key) if lasts is not None else (firsts, first_key)
                match = matches.get(key) if matches is not None else None
                if match is None:
                    continue
                result = (weight * match.quality, match.how == "exact", match.how)
            if (
                best is None
                or result[0] > best[0]
                or (result[0] == best[0] and result[1] > best[1])
            ):
                best = result
        return best
