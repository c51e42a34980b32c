"""SIU segments → one appointment, exactly as SPEC §8 maps them."""

from __future__ import annotations

import re
from datetime import datetime

from bot.feed.adt import chart_id, required_pid
from bot.feed.errors import FeedFieldError
from bot.feed.records import AppointmentEvent, SiuAppointment
from bot.feed.wire import Parsed, Segment, parse_moment

EVENTS: dict[str, AppointmentEvent] = {
    "S12": "new", "S13": "rescheduled", "S14": "modified", "S15": "cancelled",
    "S17": "deleted", "S26": "no-show",
}  # fmt: skip
START_FIELDS = "TQ1-7, SCH-11.4, AIS-4, AIG-8, AIL-6 or AIP-6"
# Where the resource segments keep their start date/time (AIG-4 is the resource type).
_RESOURCE_START = {"AIS": 4, "AIG": 8, "AIL": 6, "AIP": 6}


def appointment(
    parsed: Parsed, trigger: str, chart_id_type: str, version: str = "2.5"
) -> SiuAppointment:
    sch = parsed.first("SCH")
    if sch is None:
        raise FeedFieldError("SCH-2", "no SCH segment", missing=True)
    appointment_id = sch.value(2, 1) or sch.value(1, 1)
    if not appointment_id:
        raise FeedFieldError("SCH-2", "no appointment id (SCH-2.1 or SCH-1.1)", missing=True)
    result = SiuAppointment(
        event=EVENTS[trigger],
        appointment_id=appointment_id,
        chart_id=chart_id(required_pid(parsed), 3, chart_id_type),
        starts_at=_start(parsed, sch),
        provider=_provider(parsed),
        filler_status=re.sub(r"[^A-Z]", "", sch.value(25).upper()),
    )
    if result.starts_at is None and result.status == "booked":
        # Named where the sender's version keeps it: TQ1 exists from v2.5 on.
        field = "TQ1-7" if version >= "2.5" else "SCH-11.4"
        raise FeedFieldError(field, f"no appointment start ({START_FIELDS})", missing=True)
    return result


def _start(parsed: Parsed, sch: Segment) -> datetime | None:
    """TQ1-7 (v2.5+; v2.7 withdrew SCH-11), else SCH-11.4, else the first resource segment
    (AIS-4, AIG-8, AIL-6, AIP-6, in message order) that has one."""
    candidates = [(segment, 7, 1) for segment in parsed.all("TQ1")] + [(sch, 11, 4)]
    candidates += [
        (segment, _RESOURCE_START[segment.id], 1)
        for segment in parsed.segments
        if segment.id in _RESOURCE_START
    ]
    for segment, position, component in candidates:
        if raw := segment.value(position, component):
            try:
                return parse_moment(raw)
            except ValueError:
                field = f"{segment.id}-{position}" + (f".{component}" if component > 1 else "")
                raise FeedFieldError(
                    field,
                    "appointment start is not a date and time (YYYYMMDDHHMM[SS][+/-ZZZZ])",
                    sequence=segment.sequence,
                ) from None
    return None


def _provider(parsed: Parsed) -> str:
    for aip in parsed.all("AIP"):
        for xcn in aip.repetitions(3):
            if name := _xcn_name(xcn):
                return name
    for aig in parsed.all("AIG"):
        for cwe in aig.repetitions(3):
            if text := (cwe[1] if len(cwe) > 1 and cwe[1] else cwe[0]):
                return text
    return ""


def _xcn_name(xcn: list[str]) -> str:
    """XCN id^family^given^middle^suffix^prefix... → "given family", else the id."""
    family = xcn[1] if len(xcn) > 1 else ""
    given = xcn[2] if len(xcn) > 2 else ""
    return " ".join(part for part in (given, family) if part) or xcn[0]
