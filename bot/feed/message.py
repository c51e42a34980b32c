"""Reading one feed message: the MSH, the version and type checks, and the hand-off to the
ADT or SIU mapping (SPEC §8). Also splits a replay file into messages (SPEC §4 `hl7 replay`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Literal

from bot.feed import adt, siu
from bot.feed.errors import ErrorCode, FeedError, FeedFieldError, FeedRejected
from bot.feed.records import Body, FeedMessage, Header
from bot.feed.wire import Parsed, Segment, read

AccountField = Literal["PID-18", "GT1-2"]

_VERSION = re.compile(r"^2\.[2-8](\.\d+)?$")
ADT_PATIENT_EVENTS = frozenset({"A01", "A04", "A05", "A08", "A28", "A31"})
ADT_MERGE_EVENTS = frozenset({"A40"})
SIU_EVENTS = frozenset(siu.EVENTS)
SUPPORTED = {"ADT": ADT_PATIENT_EVENTS | ADT_MERGE_EVENTS, "SIU": SIU_EVENTS}


def parse_message(
    raw: bytes,
    *,
    chart_id_type: str = "MR",
    account_field: AccountField = "PID-18",
    today: date | None = None,
) -> FeedMessage:
    """One message's bytes (without MLLP framing) → a FeedMessage. `today` (the practice's
    date; UTC's when not given) decides which names have expired (XPN-13).

    Raises FeedRejected (ACK AR) for text that is not HL7, an unsupported version, type or
    character set; FeedFieldError (ACK AE) when a required field is missing or malformed. Both
    carry the header in `.header` when it could be read."""
    parsed = read(raw)
    header = _header(parsed)
    try:
        day = today or datetime.now(UTC).date()
        return FeedMessage(header, _body(parsed, header, chart_id_type, account_field, day))
    except FeedError as error:
        error.header = header
        raise


def read_header(raw: bytes) -> Header | None:
    """The MSH of `raw` when it can be read at all, without checking anything else; for the
    ACK of a message whose handling failed."""
    try:
        return _header(read(raw), check=False)
    except FeedError as error:
        return error.header


def _header(parsed: Parsed, *, check: bool = True) -> Header:
    msh = parsed.first("MSH")
    assert msh is not None  # read() only returns text that starts with MSH
    routing = tuple(tuple(_hd(msh, n)) for n in (3, 4, 5, 6))
    header = Header(
        sending_app=_hd_name(msh, 3),
        sending_facility=_hd_name(msh, 4),
        receiving_app=_hd_name(msh, 5),
        receiving_facility=_hd_name(msh, 6),
        control_id=msh.value(10),
        type=msh.value(9, 1).upper(),
        trigger=_trigger(parsed, msh),
        version=msh.value(12, 1),
        charset=parsed.charset,
        encoding=parsed.encoding,
        processing_id=msh.value(11, 1) or "P",
        routing=(routing[0], routing[1], routing[2], routing[3]),
        content_digest=parsed.content_digest,
    )
    if not check:
        return header
    problem: FeedError | None = None
    if not _VERSION.match(header.version):
        problem = FeedRejected(
            "HL7 version not supported (2.2 to 2.8)",
            code=ErrorCode.UNSUPPORTED_VERSION,
            field="MSH-12",
        )
    elif header.type not in SUPPORTED:
        problem = FeedRejected(
            "message type not supported (ADT and SIU only)",
            code=ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            field="MSH-9",
        )
    elif header.trigger not in SUPPORTED[header.type]:
        problem = FeedRejected(
            f"{header.type} trigger event not supported",
            code=ErrorCode.UNSUPPORTED_EVENT,
            field="MSH-9",
        )
    elif not header.control_id:
        problem = FeedFieldError("MSH-10", "no message control id", missing=True)
    if problem is not None:
        problem.header = header
        raise problem
    return header


def _trigger(parsed: Parsed, msh: Segment) -> str:
    """MSH-9.2; v2.2-era senders may leave it out, and EVN-1 then names the event."""
    if trigger := msh.value(9, 2):
        return trigger.upper()
    evn = parsed.first("EVN")
    return evn.value(1).upper() if evn is not None else ""


def _hd(msh: Segment, position: int) -> list[str]:
    reps = msh.repetitions(position)
    return reps[0] if reps else []


def _hd_name(msh: Segment, position: int) -> str:
    return msh.value(position, 1) or msh.value(position, 2)


def _body(
    parsed: Parsed, header: Header, chart_id_type: str, account_field: AccountField, today: date
) -> Body:
    if header.type == "SIU":
        return siu.appointment(parsed, header.trigger, chart_id_type, header.version)
    if header.trigger in ADT_MERGE_EVENTS:
        return adt.merge(parsed, chart_id_type)
    return adt.patient(parsed, chart_id_type, account_field, today)


def split_messages(data: bytes) -> list[bytes]:
    """A replay file's bytes → each message's bytes (see `iter_messages`)."""
    return list(iter_messages([data]))


def iter_messages(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A replay file, read in chunks → each message's bytes, CR-separated: segments may end
    in CR, LF or CRLF, each MSH starts a message, FHS/BHS/BTS/FTS envelope lines are dropped,
    and lines before the first MSH are dropped (they belong to no message). Streamed, so a
    backfill of a whole practice needs memory for one message, not the file."""
    message: list[bytes] = []
    for raw_line in _lines(chunks):
        line = raw_line.strip(b" \t\x00\x0b\x1c").removeprefix(b"\xef\xbb\xbf")
        if not line or line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS"):
            continue
        if line[:3] == b"MSH":
            if message:
                yield b"\r".join(message) + b"\r"
            message = [line]
        elif message:
            message.append(line)
    if message:
        yield b"\r".join(message) + b"\r"


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines ended by CR, LF or CRLF, across chunk boundaries (a CRLF cut in two yields an
    empty line, which the caller skips)."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        cut = max(data.rfind(b"\r"), data.rfind(b"\n")) + 1
        pending = data[cut:]
        yield from data[:cut].splitlines()
    if pending:
        yield pending
