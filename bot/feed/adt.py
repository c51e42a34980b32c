"""ADT segments → patient, guardians and merges, exactly as SPEC §8 maps them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from bot.feed.errors import FeedFieldError
from bot.feed.records import NK1_ORIGIN, AdtMerge, AdtPatient, ChartMerge, Guardian
from bot.feed.wire import Parsed, Segment, component_of, parse_date

if TYPE_CHECKING:
    from bot.feed.message import AccountField

# HL7 table 0063 (relationship), v2.3 to v2.8, plus STP which some EHRs send for a stepparent.
RELATIONSHIPS = {
    "ASC": "Associate", "BRO": "Brother", "CGV": "Care giver", "CHD": "Child",
    "DEP": "Handicapped dependent", "DOM": "Life partner", "EMC": "Emergency contact",
    "EME": "Employee", "EMR": "Employer", "EXF": "Extended family", "FCH": "Foster child",
    "FND": "Friend", "FTH": "Father", "GCH": "Grandchild", "GRD": "Guardian",
    "GRP": "Grandparent", "MGR": "Manager", "MTH": "Mother", "NCH": "Natural child",
    "NON": "None", "OAD": "Other adult", "OTH": "Other", "OWN": "Owner", "PAR": "Parent",
    "SCH": "Stepchild", "SEL": "Self", "SIB": "Sibling", "SIS": "Sister", "SPO": "Spouse",
    "STP": "Stepparent", "TRA": "Trainer", "UNK": "Unknown", "WRD": "Ward of court",
}  # fmt: skip
# Relationships sent as words read as the words the codes become: every word of the table,
# and the usual other spellings of the ones a pediatric practice meets.
_WORDS = {word.upper(): word for word in RELATIONSHIPS.values()} | {
    "MOM": "Mother", "DAD": "Father", "LEGAL GUARDIAN": "Guardian", "CAREGIVER": "Care giver",
    "STEP PARENT": "Stepparent", "GRAND PARENT": "Grandparent", "HUSBAND": "Spouse",
    "WIFE": "Spouse", "PARTNER": "Life partner", "DOMESTIC PARTNER": "Life partner",
}  # fmt: skip
# Where a GT1 guarantor's values are, when a message without NK1 takes it as the guardian.
_GT1_ORIGIN = {
    "guardian_first_name": "GT1-3.2", "guardian_last_name": "GT1-3.1",
    "guardian_relationship": "GT1-11", "guardian_email": "GT1-6", "guardian_phone": "GT1-6",
    "guardian_language": "GT1-36",
}  # fmt: skip


@dataclass(frozen=True)
class _GuardianFields:
    """Where a segment that names a guardian (NK1, or GT1 in a message without NK1) puts each
    value: field positions, and the origin map an ERR segment about a column reads."""

    name: int  # XPN: .1 family name, .2 given name
    relationship: int  # CE: .1 code, .2 text
    phones: int  # XTN repetitions
    emails: tuple[int, ...]  # XTN fields searched for an Internet address, in order
    language: int
    origin: Mapping[str, str]
    unstated: str  # the relationship shown when none is sent


_NK1 = _GuardianFields(2, 3, 5, (5, 6), 20, NK1_ORIGIN, unstated="")
_GT1 = _GuardianFields(3, 11, 6, (6, 7), 36, _GT1_ORIGIN, unstated="Guarantor")
_INTERNET = frozenset({"NET", "INTERNET", "X.400"})
_NOT_A_PHONE = frozenset({"FX", "BP"})  # fax, beeper (table 0202)


def chart_id(segment: Segment, position: int, chart_id_type: str) -> str:
    """The CX repetition whose identifier type (component 5) is `chart_id_type`, else the
    first; raises FeedFieldError when there is none."""
    field = f"{segment.id}-{position}"
    reps = [rep for rep in segment.repetitions(position) if rep[0]]
    if not reps:
        raise FeedFieldError(
            field, "no patient identifier", missing=True, sequence=segment.sequence
        )
    wanted = chart_id_type.strip().upper()
    chosen = next((rep for rep in reps if component_of(rep, 5).upper() == wanted), reps[0])
    return chosen[0]


def required_pid(parsed: Parsed) -> Segment:
    pid = parsed.first("PID")
    if pid is None:
        raise FeedFieldError("PID-3", "no PID segment", missing=True)
    return pid


def patient(
    parsed: Parsed, chart_id_type: str, account_field: AccountField, today: date
) -> AdtPatient:
    pid = required_pid(parsed)
    name = legal_name(pid.repetitions(5), today)
    last, first = component_of(name, 1), component_of(name, 2)
    if not last:
        raise FeedFieldError("PID-5.1", "no family name", missing=True)
    if not first:
        raise FeedFieldError("PID-5.2", "no given name", missing=True)
    raw_dob = pid.value(7)
    if not raw_dob:
        raise FeedFieldError("PID-7", "no date of birth", missing=True)
    try:
        dob = parse_date(raw_dob)
    except ValueError:
        raise FeedFieldError("PID-7", "date of birth is not a date (YYYYMMDD)") from None
    sex = pid.value(8)
    if not sex:
        raise FeedFieldError("PID-8", "no administrative sex", missing=True)
    guardians = tuple(g for nk1 in parsed.all("NK1") if (g := _guardian(nk1, _NK1)) is not None)
    return AdtPatient(
        account_number=_account(parsed, pid, account_field),
        chart_id=chart_id(pid, 3, chart_id_type),
        first_name=first,
        middle_name=component_of(name, 3),
        last_name=last,
        dob=dob,
        sex=sex,
        name_type=component_of(name, 7).upper(),
        guardians=guardians or _guarantors(parsed),
    )


def legal_name(names: list[list[str]], today: date) -> list[str]:
    """The PID-5 repetition of name type L, else the first, among those whose expiration
    date (XPN-13) has not passed; all of them when every one has (better an old name than
    no patient)."""
    current = [name for name in names if not _expired(component_of(name, 13), today)] or names
    legal = (name for name in current if component_of(name, 7).upper() == "L")
    return next(legal, current[0] if current else [])


def _expired(value: str, today: date) -> bool:
    try:
        return bool(value) and parse_date(value) < today
    except ValueError:
        return False  # an unreadable expiration date does not retire a name


def _account(parsed: Parsed, pid: Segment, account_field: AccountField) -> str:
    """The family account as sent, or "" when it was not: a chart pinbot already knows keeps
    its account, a new one needs it (bot/importing/rows.py decides)."""
    if account_field == "GT1-2":
        gt1 = parsed.first("GT1")
        return gt1.value(2) if gt1 is not None else ""
    return pid.value(18)


def _guardian(segment: Segment, fields: _GuardianFields) -> Guardian | None:
    """One NK1 or GT1 → a Guardian; None for one with no person's name (an organisation
    contact: NK1-13), which no families-CSV row could describe either."""
    last, first = segment.value(fields.name, 1), segment.value(fields.name, 2)
    if not (last or first):
        return None
    email, email_field = _email(segment, fields.emails)
    code, text = segment.value(fields.relationship, 1), segment.value(fields.relationship, 2)
    return Guardian(
        first_name=first,
        last_name=last,
        relationship=relationship(code, text) or fields.unstated,
        phone=_phone(segment.repetitions(fields.phones)),
        email=email,
        language=segment.value(fields.language, 1).lower(),
        origin={**fields.origin, **({"guardian_email": email_field} if email_field else {})},
        sequence=segment.sequence,
    )


def _guarantors(parsed: Parsed) -> tuple[Guardian, ...]:
    """A message without NK1 guardians: each GT1 guarantor who is a person other than the
    patient (GT1-11 not SEL) is a guardian; in pediatrics the guarantor is a parent. With
    no relationship sent, the card says "Guarantor"."""
    people = (gt1 for gt1 in parsed.all("GT1") if gt1.value(11, 1).upper() != "SEL")
    return tuple(g for gt1 in people if (g := _guardian(gt1, _GT1)) is not None)


def relationship(code: str, text: str) -> str:
    """HL7 table 0063 code or word → the word the card shows ("MTH", "MOTHER" → "Mother"); a
    value of neither kind is kept as sent (its text, else its code)."""
    for value in (code, text):
        key = " ".join(re.split(r"[\s_-]+", value.upper())).strip()
        if word := RELATIONSHIPS.get(key) or _WORDS.get(key) or _WORDS.get(key.replace(" ", "")):
            return word
    return text or code


def _is_internet(xtn: list[str]) -> bool:
    return component_of(xtn, 2).upper() in _INTERNET or component_of(xtn, 3).upper() in _INTERNET


def _email(segment: Segment, positions: tuple[int, ...]) -> tuple[str, str]:
    """The first Internet address among the XTN fields at `positions`, and the field it was
    in ("NK1-6"); ("", "") when there is none."""
    for position in positions:
        for xtn in segment.repetitions(position):
            if _is_internet(xtn):
                # Component 4 per the standard; some v2.3 interfaces put the address in 1.
                address = component_of(xtn, 4) or component_of(xtn, 1)
                if address:
                    return address, f"{segment.id}-{position}"
    return "", ""


def _phone(xtns: list[list[str]]) -> str:
    for xtn in xtns:
        if _is_internet(xtn) or component_of(xtn, 3).upper() in _NOT_A_PHONE:
            continue
        area, local = component_of(xtn, 6), component_of(xtn, 7)
        if local:
            if len(local) == 7 and local.isdigit():
                local = f"{local[:3]}-{local[3:]}"
            phone = f"({area}) {local}" if area else local
            extension = component_of(xtn, 8)
            return f"{phone} x{extension}" if extension else phone
        if formatted := component_of(xtn, 1):
            return formatted
    return ""


def merge(parsed: Parsed, chart_id_type: str) -> AdtMerge:
    """A40: each PID and the MRG after it; MRG-1 names the chart id that goes away."""
    merges: list[ChartMerge] = []
    survivor: Segment | None = None
    for segment in parsed.segments:
        if segment.id == "PID":
            survivor = segment
        elif segment.id == "MRG":
            if survivor is None:
                raise FeedFieldError(
                    "PID-3",
                    "an MRG segment without a PID before it",
                    missing=True,
                    sequence=segment.sequence,
                )
            merges.append(_pair(survivor, segment, chart_id_type))
            survivor = None
    if not merges:
        required_pid(parsed)
        raise FeedFieldError("MRG-1", "no MRG segment (the chart id that goes away)", missing=True)
    return AdtMerge(tuple(merges))


def _pair(pid: Segment, mrg: Segment, chart_id_type: str) -> ChartMerge:
    kept, gone = chart_id(pid, 3, chart_id_type), chart_id(mrg, 1, chart_id_type)
    if kept == gone:
        raise FeedFieldError("MRG-1", "merges a chart into itself", sequence=mrg.sequence)
    return ChartMerge(survivor_chart_id=kept, merged_chart_id=gone)
