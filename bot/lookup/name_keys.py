"""The in-process set of DISTINCT first and last name keys of patients and guardians, for the
candidate step of name search (search.py): there are far fewer distinct names than people,
so a word's close spellings and the keys it is the prefix of are found here, in memory, and
only then looked up in the database on the btree indexes.

`NameKeys` lives per database (engine pool). `name_keys(session)` reads max(id) of patient and
guardian (one statement, two primary-key look-ups; in the running bot once a second in the
background, `refresh_name_keys`, so no search waits on it) and loads only the new rows' keys
when they grew, so a name imported a moment ago is found by its close spellings within a
second; it reloads
everything (GROUP BY on the key indexes, ~0.3 s at 250,000 patients) on first use, every ten
minutes (renamed patients) and when the ids went down (a restored database). Call it at
start-up to warm the cache, and `forget_name_keys()` after renames.

Renames do not change ids. The live EHR feed (SPEC §8: a change in `/family` within a
second, on every replica within 10 s) therefore adds the names of each message it applied to
this process's cache right after commit (`add_name_keys`), and every replica watches a
change marker, max(feedmessage.id), read in the same statement: when it moved, the keys of
patients and guardians updated since the last look are added (a scan of updated_at, at most
once per RENAME_SCAN_SECONDS). Keys only ever get added between full reloads: a stale key
just yields a candidate with no rows.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.db import Database, DatabaseUnavailable
from models import FeedMessage, Guardian, Patient, utcnow

log = logging.getLogger(__name__)

RELOAD_SECONDS = 600
# The running bot looks at the newest ids every REFRESH_SECONDS in the background
# (`refresh_name_keys`, scheduled by bot/runtime/process.py), so no search waits on that
# round trip; a search looks itself only when the last look is older than STALE_SECONDS (no
# scheduler: the CLI, tests). This process adds what it writes itself at once (the feed, name
# fixes); others' writes (a CSV import, another replica) are seen at the next look. SPEC §8
# allows a replica 10 s.
REFRESH_SECONDS = 1.0
STALE_SECONDS = 10.0
RENAME_SCAN_SECONDS = 5.0
_SCAN_SLACK = timedelta(seconds=2)  # commits land a little after their updated_at
SIMILAR_CACHE_SIZE = 20_000  # words whose close spellings are kept, per key set
FILTER_FROM = 256  # keys of one group and length range from which their letters are compared


def letters(word: str) -> int:
    """The set of the word's letters as bits (a-z; anything else shares one bit). An edit
    removes at most one letter from a word's set and adds at most one, so a key within k edits
    of a word lacks at most k of its letters and has at most k it lacks."""
    mask = 0
    for char in word:
        bit = ord(char) - 97
        mask |= 1 << (bit if 0 <= bit < 26 else 26)
    return mask


# Keys ordered by length (then alphabetically), their lengths, and their letters (`letters`).
Group = tuple[list[str], list[int], "np.ndarray[Any, np.dtype[np.uint32]]"]


def _group(keys: list[str]) -> Group:
    return keys, [len(k) for k in keys], np.array([letters(k) for k in keys], dtype=np.uint32)


class KeySet:
    """Distinct keys with how many people carry each: sorted for prefix look-ups (bisect),
    and grouped by first and by second letter, by length, for close spellings."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.sorted = sorted(k for k in counts if k)
        by_letter: dict[tuple[int, str], list[str]] = defaultdict(list)
        for key in sorted(self.sorted, key=len):
            for group in _groups(key):
                by_letter[group].append(key)
        self.by_letter = {group: _group(keys) for group, keys in by_letter.items()}
        # A word's close spellings depend only on the set of names, which never changes for a
        # KeySet (`plus` shares this with its copy only when no name was added), and staff look
        # the same names up over and over: the scan is the CPU-heaviest step of a name search.
        self._similar: dict[tuple[str, int, int], list[tuple[str, int]]] = {}

    def __len__(self) -> int:
        return len(self.sorted)

    def with_prefix(self, prefix: str, limit: int) -> list[str]:
        """The shortest keys that start with `prefix` (Smith before Smithers)."""
        start = bisect_left(self.sorted, prefix)
        found = []
        for key in self.sorted[start : start + 20 * limit]:
            if not key.startswith(prefix):
                break
            found.append(key)
        return sorted(found, key=lambda k: (len(k), k))[:limit]

    def similar(self, word: str, max_edits: int, limit: int) -> list[tuple[str, int]]:
        """Keys within `max_edits` edits (insert, delete, substitute, swap two neighbours)
        among those whose first or second letter is the word's first or second letter: that
        keeps every single slip at the start ("msith", "dmith", "mith") and leaves about a
        fifth of the keys; of those, only keys whose letters could be within reach
        (`letters`, compared for thousands at once) are measured."""
        cached = self._similar.get((word, max_edits, limit))
        if cached is not None:
            return list(cached)
        choices: list[str] = []
        mask = np.uint32(letters(word))
        # In this order every time (a set's would follow the process's string hashing): ties
        # at the cut-off are then drawn the same way after every restart.
        for group in dict.fromkeys(((0, word[0]), (1, word[0]), (0, word[1]), (1, word[1]))):
            if group not in self.by_letter:
                continue
            keys, lengths, masks = self.by_letter[group]
            start = bisect_left(lengths, len(word) - max_edits)
            end = bisect_right(lengths, len(word) + max_edits, lo=start)
            if end - start < FILTER_FROM:
                choices += keys[start:end]
                continue
            near = masks[start:end]
            reach = (np.bitwise_count(near & ~mask) <= max_edits) & (
                np.bitwise_count(mask & ~near) <= max_edits
            )
            choices += [keys[start + i] for i in np.flatnonzero(reach).tolist()]
        found = process.extract(
            word, choices, scorer=OSA.distance, score_cutoff=max_edits, limit=4 * limit
        )  # a key can sit in two groups
        unique = list(dict.fromkeys((key, int(distance)) for key, distance, _ in found))[:limit]
        if len(self._similar) >= SIMILAR_CACHE_SIZE:
            self._similar.clear()  # rare: a bound, not an eviction policy
        self._similar[word, max_edits, limit] = unique
        return list(unique)

    def with_keys(self, keys: Iterable[str]) -> KeySet:
        """A copy that knows these keys too (one person each when new); self when none is new.
        The new keys are inserted in place of a re-sort: the live feed calls this for every
        message, and re-sorting 50,000 names cost 20 ms where inserting one costs 0.3 ms."""
        new = sorted({key for key in keys if key and key not in self.counts})
        if not new:
            return self
        grown = copy.copy(self)
        grown.counts = {**self.counts, **dict.fromkeys(new, 1)}
        grown.sorted = list(self.sorted)
        grown.by_letter = dict(self.by_letter)
        grown._similar = {}  # a new name may be some word's close spelling
        copied: set[tuple[int, str]] = set()
        for key in new:
            insort(grown.sorted, key)
            for group in _groups(key):
                if group not in copied:  # copy on write: readers may hold this KeySet
                    keys_of, lengths, masks = grown.by_letter.get(group) or _group([])
                    grown.by_letter[group] = (list(keys_of), list(lengths), masks)
                    copied.add(group)
                keys_of, lengths, masks = grown.by_letter[group]
                # Ordered by length, then alphabetically, as __init__ builds them.
                lo = bisect_left(lengths, len(key))
                at = bisect_left(keys_of, key, lo, bisect_right(lengths, len(key), lo=lo))
                keys_of.insert(at, key)
                lengths.insert(at, len(key))
                grown.by_letter[group] = (keys_of, lengths, np.insert(masks, at, letters(key)))
        return grown

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


def _groups(key: str) -> list[tuple[int, str]]:
    """The close-spelling groups a key sits in: by its first letter and by its second."""
    return [(0, key[0]), (1, key[1])] if len(key) > 1 else [(0, key[0])]


@dataclass(frozen=True)
class NameKeys:
    first: KeySet
    last: KeySet
    marks: tuple[int, int]  # max(patient.id), max(guardian.id) when loaded
    loaded_at: float
    checked_at: float  # time.monotonic() of the last look at the newest ids
    feed_mark: int = 0  # max(feedmessage.id) when the updated rows were last looked at
    scanned_at: float = 0.0  # time.monotonic() of that look
    scanned_wall: datetime | None = None  # utcnow() of that look


_CACHE: WeakKeyDictionary[Any, NameKeys] = WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
# Built once: constructing a statement costs more than running this one.
_NEWEST = select(
    select(func.max(Patient.id)).scalar_subquery(),
    select(func.max(Guardian.id)).scalar_subquery(),
    select(func.max(FeedMessage.id)).scalar_subquery(),
)


def name_keys(session: Session, *, max_age: float | None = None) -> NameKeys:
    """The distinct first and last keys of patients and guardians, as of a look at the newest
    ids at most `max_age` seconds ago (default STALE_SECONDS; see above)."""
    pool = session.get_bind().engine.pool  # one cache per database, whatever the session
    with _CACHE_LOCK:
        cached = _CACHE.get(pool)
    clock = time.monotonic()
    oldest = STALE_SECONDS if max_age is None else max_age
    if cached is not None and clock - cached.checked_at < oldest:
        return cached
    newest = session.connection().execute(_NEWEST).one()
    marks, feed_mark = (newest[0] or 0, newest[1] or 0), newest[2] or 0
    if (
        cached is None
        or clock - cached.loaded_at > RELOAD_SECONDS
        or any(now < then for now, then in zip(marks, cached.marks, strict=True))
    ):
        first, last = _count(session, "first_key"), _count(session, "last_key")
        keys = NameKeys(first, last, marks, clock, clock, feed_mark, clock, utcnow())
    elif marks != cached.marks:
        firsts, lasts = _keys_since(session, cached.marks)
        keys = replace(
            cached,
            first=cached.first.plus(firsts),
            last=cached.last.plus(lasts),
            marks=marks,
            checked_at=clock,
        )
    elif feed_mark != cached.feed_mark and clock - cached.scanned_at >= RENAME_SCAN_SECONDS:
        keys = replace(_with_updated(session, cached, feed_mark, clock), checked_at=clock)
    else:
        keys = replace(cached, checked_at=clock)
    with _CACHE_LOCK:
        _CACHE[pool] = keys
    return keys


def refresh_name_keys(database: Database) -> None:
    """Look at the newest ids now and learn what they brought (the running bot calls this
    every REFRESH_SECONDS). With the database unreachable it waits for the next time, quietly:
    staff's requests already say "try again", and a traceback a second would bury the log."""
    try:
        with database.read_session() as session:
            name_keys(session, max_age=0.0)
    except DatabaseUnavailable as error:
        log.debug("name keys not refreshed: %s", error)


def add_name_keys(database: Any, keys: Iterable[tuple[str, str]]) -> None:
    """After a commit that wrote these (first_key, last_key) pairs: this process's cache for
    `database` (a bot.db.Database) knows them at once, renames included."""
    pairs = list(keys)
    with _CACHE_LOCK:
        cached = _CACHE.get(database.engine.pool)
        if cached is not None:
            _CACHE[database.engine.pool] = replace(
                cached,
                first=cached.first.with_keys(first for first, _ in pairs),
                last=cached.last.with_keys(last for _, last in pairs),
            )


def _with_updated(session: Session, cached: NameKeys, feed_mark: int, clock: float) -> NameKeys:
    """Another replica applied feed messages: add the keys of rows updated since the last look."""
    wall = utcnow()
    since = (cached.scanned_wall or wall) - _SCAN_SLACK
    rows = [
        *session.exec(
            select(Patient.first_key, Patient.last_key).where(col(Patient.updated_at) >= since)
        ),
        *session.exec(
            select(Guardian.first_key, Guardian.last_key).where(col(Guardian.updated_at) >= since)
        ),
    ]
    return replace(
        cached,
        first=cached.first.with_keys(first for first, _ in rows),
        last=cached.last.with_keys(last for _, last in rows),
        feed_mark=feed_mark,
        scanned_at=clock,
        scanned_wall=wall,
    )


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
    rows = [
        *session.exec(
            select(Patient.first_key, Patient.last_key).where(col(Patient.id) > marks[0])
        ),
        *session.exec(
            select(Guardian.first_key, Guardian.last_key).where(col(Guardian.id) > marks[1])
        ),
    ]
    return [first for first, _ in rows], [last for _, last in rows]
