"""Finding candidates in the database for each kind of query: bounded, indexed statements built
once per shape (each key list one parameter, see `_keys_param`) and run on the session's
connection — the name candidates, from a PostgreSQL read session, on the lookup pool with
generic plans (`bot.db.run_lookup`). See bot/lookup/search.py for the whole algorithm."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Literal, NamedTuple

from rapidfuzz import fuzz
from sqlalchemy import (
    ARRAY,
    BindParameter,
    CompoundSelect,
    Date,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    union_all,
)
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.db import run_lookup
from bot.lookup.name_keys import name_keys
from bot.lookup.name_matching import GUARDIAN, HOW_TEXT, ROW_CAP, Branch, NameMatcher
from bot.lookup.query import Query, QueryKind
from models import Family, Guardian, Patient

# --- finding ----------------------------------------------------------------------------------


class Found(NamedTuple):
    """One person or family found (a tuple: a name search makes hundreds, and a frozen
    dataclass's __init__ cost three times as much)."""

    family_id: int
    patient_id: int | None  # None: the family, or one of its guardians, matched
    score: float  # 0-1
    exact: bool
    matched_on: str


Table = type[Patient] | type[Guardian]


# How a list of keys is sent: one PostgreSQL array, one JSON text read by SQLite's json_each,
# or (SQLite without JSON functions) an IN list expanded to one parameter per key.
KeyLists = Literal["array", "json", "expanding"]


def key_lists(dialect_name: str) -> KeyLists:
    if dialect_name == "postgresql":
        return "array"
    return "json" if sqlite3.sqlite_version_info >= (3, 38) else "expanding"


def _among(column: Any, keys: Any, lists: KeyLists) -> Any:
    """`column IN keys`, the keys one parameter as `lists` says (see `_keys_param`)."""
    if lists == "array":
        return column == any_(keys)
    if lists == "json":
        return column.in_(select_json_values(keys))
    return column.in_(keys)


def _condition(table: Table, shape: str, a: Any, b: Any, lists: KeyLists) -> Any:
    first, last = col(table.first_key), col(table.last_key)
    if shape == "last|first":
        return or_(_among(last, a, lists), _among(first, b, lists))
    if shape == "last+first":  # one seek per pair of keys (models.practice.name_key_indexes)
        return _among(last, a, lists) & _among(first, b, lists)
    return _among(last if shape == "last" else first, a, lists)


def select_json_values(keys: Any) -> Any:
    return core_select(literal_column("value")).select_from(func.json_each(keys))


def list_value(values: Iterable[Any], lists: KeyLists) -> Any:
    """A list of values as the parameter `_keys_param` / `_ids_param` made for it."""
    return json.dumps(list(values)) if lists == "json" else list(values)


def _ids_param(name: str, lists: KeyLists) -> BindParameter[Any]:
    """`_keys_param` for a list of integer ids."""
    if lists == "array":
        return bindparam(name, type_=ARRAY(Integer))
    return _keys_param(name, lists)


def _keys_param(name: str, lists: KeyLists) -> BindParameter[Any]:
    """A list of keys as one parameter (an array, a JSON text) where the database can take
    it: the statement's text is then the same whatever the lists' lengths, so the database
    parses and plans it once per connection — psycopg prepares it, pysqlite keeps it in its
    statement cache — instead of on every search (0.3–0.9 ms)."""
    if lists == "array":
        return bindparam(name, type_=ARRAY(String))
    if lists == "json":
        return bindparam(name, type_=String)
    return bindparam(name, expanding=True)


@cache
def _union(
    tables: tuple[Table, ...], shapes: tuple[str, ...], lists: KeyLists = "expanding"
) -> Any:
    """The branches of every table in one statement (one round trip), rows tagged with the
    table's position in `tables`. Built and compiled once per shape, then only run."""
    params: list[tuple[BindParameter[Any], BindParameter[Any], BindParameter[Any]]] = [
        (_keys_param(f"a{i}", lists), _keys_param(f"b{i}", lists), bindparam(f"n{i}"))
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
        current = _current(table)
        parts += [
            core_select(*columns).where(_condition(table, shape, a, b, lists), *current).limit(n)
            for shape, (a, b, n) in zip(shapes, params, strict=True)
        ]
    if len(parts) == 1:
        return parts[0]
    subqueries = [part.subquery() for part in parts]
    return union_all(*(select(*sub.c) for sub in subqueries))


def _fetch(session: Session, tables: tuple[Table, ...], branches: list[Branch]) -> list[Any]:
    if not branches:
        return []
    lists = key_lists(session.get_bind().dialect.name)
    params: dict[str, Any] = {}
    for i, branch in enumerate(branches):
        params[f"n{i}"] = branch.cap
        for name, keys in zip("ab", branch.keys, strict=False):
            params[f"{name}{i}"] = list_value(keys, lists)
    statement = _union(tables, tuple(b.shape for b in branches), lists)
    return run_lookup(session, statement, params)


def run_statement(session: Session, statement: Any, **params: Any) -> list[Any]:
    """Run a prebuilt statement on the session's connection (no ORM layer: plain rows)."""
    return list(session.connection().execute(statement, params).fetchall())


# "child name (partial)", "guardian last name only", ...: by (child?, how) the row matched.
_MATCHED_ON = {
    (child, how): f"{'child' if child else 'guardian'} {text}"
    for child in (True, False)
    for how, text in HOW_TEXT.items()
}


def _name_found(session: Session, query: Query, *, children_only: bool, limit: int) -> list[Found]:
    matcher = NameMatcher(query, name_keys(session), limit)
    tables: tuple[Table, ...] = (Patient,) if children_only else (Patient, Guardian)
    children = [table is Patient for table in tables]
    found = []
    seen: set[tuple[int, int]] = set()
    score = matcher.score
    for tag, row_id, family_id, first_key, last_key in _fetch(session, tables, matcher.branches()):
        if (tag, row_id) in seen or not (match := score(first_key, last_key)):
            continue
        seen.add((tag, row_id))
        quality, exact, how = match
        if children[tag]:
            found.append(Found(family_id, row_id, quality, exact, _MATCHED_ON[True, how]))
        else:
            found.append(Found(family_id, None, quality * GUARDIAN, exact, _MATCHED_ON[False, how]))
    return found


def _ids_in(column: Any) -> Any:
    return col(column).in_(bindparam("ids", expanding=True))


def _current(table: Table) -> tuple[Any, ...]:
    """The condition that leaves out charts merged into another (HL7 A40): gone for staff."""
    return (col(Patient.merged_into_id).is_(None),) if table is Patient else ()


_SURVIVOR = aliased(Patient)
# Every other statement of a search, built once (see the module docstring).
_BY_DOB = (
    select(Patient.id, Patient.family_id, Patient.first_key, Patient.last_key)
    .where(Patient.dob == bindparam("dob"), *_current(Patient))
    .limit(ROW_CAP)
)


@cache
def _by_identifier(lists: KeyLists) -> CompoundSelect[Any]:
    """Chart ids, then account numbers (patient id NULL): one round trip for both, the
    spellings one parameter (one text, kept prepared, as the name statements). A merged-away
    chart id finds the chart it was merged into."""
    ids = _keys_param("ids", lists)
    return union_all(
        core_select(
            func.coalesce(col(_SURVIVOR.id), col(Patient.id)),
            func.coalesce(col(_SURVIVOR.family_id), col(Patient.family_id)),
        )
        .select_from(Patient)
        .outerjoin(_SURVIVOR, col(_SURVIVOR.id) == col(Patient.merged_into_id))
        .where(_among(col(Patient.chart_id), ids, lists)),
        core_select(null(), col(Family.id)).where(_among(col(Family.account_number), ids, lists)),
    )


_GUARDIAN_BY_EMAIL = (
    select(Guardian.family_id).where(Guardian.match_key == bindparam("value")).limit(ROW_CAP)
)
_GUARDIAN_BY_PHONE = (
    select(Guardian.family_id).where(Guardian.phone_digits == bindparam("value")).limit(ROW_CAP)
)
CHILDREN_OF = (
    select(Patient.id, Patient.family_id)
    .where(_ids_in(Patient.family_id), *_current(Patient))
    .limit(ROW_CAP)
)
_LABEL_CHILDREN, _LABEL_GUARDIANS = 0, 1


@cache
def family_labels_statement(lists: KeyLists) -> Any:
    """What a list of families shows, in one statement (one round trip, and one text whatever
    the number of families, so the database keeps it prepared): each family's account number
    with its current children by date of birth (a family without any: one row of NULLs), then
    its guardians in the order they were added. Rows: part (0 a family and child, 1 a
    guardian), family id, account number, first name, last name, date of birth."""
    ids = _ids_param("ids", lists)
    children: Any = (
        core_select(
            literal_column(str(_LABEL_CHILDREN)).label("part"),
            col(Family.id).label("family_id"),
            col(Family.account_number).label("account_number"),
            col(Patient.first_name).label("first_name"),
            col(Patient.last_name).label("last_name"),
            col(Patient.dob).label("dob"),
            col(Patient.id).label("row_id"),
        )
        .select_from(Family)
        .outerjoin(Patient, (col(Patient.family_id) == col(Family.id)) & _current(Patient)[0])
        .where(_among(col(Family.id), ids, lists))
    )
    guardians: Any = core_select(
        literal_column(str(_LABEL_GUARDIANS)),
        col(Guardian.family_id),
        cast(null(), String),
        col(Guardian.first_name),
        col(Guardian.last_name),
        cast(null(), Date),
        col(Guardian.id),
    ).where(_among(col(Guardian.family_id), ids, lists))
    return union_all(children, guardians).order_by(
        literal_column("part"), literal_column("dob"), literal_column("row_id")
    )


PATIENT_LABELS = (
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


def _dob_found(session: Session, query: Query) -> list[Found]:
    """Children born that day; with name words, the ones whose names match come first."""
    rows = run_statement(session, _BY_DOB, dob=query.dob)
    found = []
    for patient_id, family_id, first_key, last_key in rows:
        if not query.words:
            found.append(Found(family_id, patient_id, 1.0, True, "DOB"))
            continue
        keys = (first_key, last_key)
        if all(word in keys for word in query.words):
            found.append(Found(family_id, patient_id, 1.0, True, "DOB and child name"))
            continue
        similarity = sum(max(fuzz.ratio(w, k) for k in keys) for w in query.words)
        score = 0.50 + 0.35 * similarity / (100 * len(query.words))
        found.append(Found(family_id, patient_id, score, False, "DOB"))
    return found


def _identifier_found(session: Session, identifier: str) -> list[Found]:
    """Exact account number or chart id, as typed, upper- or lower-cased (both index look-ups;
    ids stored in mixed case must be typed as stored)."""
    bare = identifier.lstrip("#")
    variants = sorted({identifier, bare, bare.upper(), bare.lower()})
    lists = key_lists(session.get_bind().dialect.name)
    rows = run_lookup(session, _by_identifier(lists), {"ids": list_value(variants, lists)})
    return [
        *(
            Found(family_id, None, 1.0, True, "account number")
            for p, family_id in rows
            if p is None
        ),
        *(Found(family_id, p, 1.0, True, "chart id") for p, family_id in rows if p is not None),
    ]


def _guardian_found(session: Session, statement: Any, value: str, what: str) -> list[Found]:
    return [
        Found(family_id, None, 1.0, True, what)
        for (family_id,) in run_statement(session, statement, value=value)
    ]


def find_matches(
    session: Session, query: Query, *, limit: int, children_only: bool = False
) -> list[Found]:
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


def rank_key(found: Found) -> tuple[float, bool, int]:
    return (-found.score, not found.exact, found.family_id)


def best_by(found: Iterable[Found], key: Callable[[Found], int | None]) -> dict[int, Found]:
    best: dict[int, Found] = {}
    for f in found:
        k = key(f)
        if k is not None and (k not in best or rank_key(f) < rank_key(best[k])):
            best[k] = f
    return best
