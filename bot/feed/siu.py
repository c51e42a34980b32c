"""SIU segments → one appointment, exactly as SPEC §8 maps them."""

from __future__ import annotations

from datetime import datetime

from bot.feed.adt import chart_id, required_pid
from bot.feed.errors import FeedFieldError
from bot.feed.records import AppointmentEvent, SiuAppointment
from bot.feed.wire import Parsed, Segment, parse_moment

EVENTS: dict[str, AppointmentEvent] = {
    "S12": "new", "S13": "rescheduled", "S14": "modified", "S15": "cancelled",
    "S17": "deleted", "S26": "no-show",
}  # fmt: skip
_NEEDS_START = frozenset({"new", "rescheduled", "modified"})


def appointment(parsed: Parsed, trigger: str, chart_id_type: str) -> SiuAppointment:
    event = EVENTS[trigger]
    sch = parsed.first("SCH")
    if sch is None:
        raise FeedFieldError("SCH-2", "no SCH segment", missing=True)
    appointment_id = sch.value(2, 1) or sch.value(1, 1)
    if not appointment_id:
        raise FeedFieldError("SCH-2", "no appointment id (SCH-2.1 or SCH-1.1)", missing=True)
    starts_at = _start(parsed, sch)
    if starts_at is None and event in _NEEDS_START:
        raise FeedFieldError(
            "SCH-11.4", "no appointment start (SCH-11.4, AIS-4, AIG-4 or AIL-6)", missing=True
        )
    return SiuAppointment(
        event=event,
        appointment_id=appointment_id,
        chart_id=chart_id(required_pid(parsed), 3, chart_id_type),
        starts_at=starts_at,
        provider=_provider(parsed),
    )


def _start(parsed: Parsed, sch: Segment) -> datetime | None:
    candidates = [(sch, 11, 4)]
    candidates += [(segment, 4, 1) for segment in parsed.all("AIS")]
    candidates += [(segment, 4, 1) for segment in parsed.all("AIG")]
    candidates += [(segment, 6, 1) for segment in parsed.all("AIL")]
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
