"""One HL7 v2 message's bytes → segments whose values are decoded text (SPEC §8).

python-hl7 splits the ER7 text into segments, fields, repetitions and components. Its own
`unescape` (which `Message["PID.5"]`-style access calls) is not used, for four reasons found
by reading hl7 0.4.5: it logs the field's text at ERROR level on an unknown escape (PHI in the
log), turns \\H\\ and \\N\\ into "_", decodes \\Xhh\\ one byte per character (so \\XC3B1\\ reads
"Ã±", not "ñ"), and logs on an empty sequence. `hl7.parse_datetime` is not used either: it
accepts "2024xx" as 2024-01-01 and reads a -0030 offset as +00:30. Both are done here instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import hl7

from bot.feed.errors import ErrorCode, FeedRejected

_BOM = b"\xef\xbb\xbf"
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)
# HL7 table 0211 → Python codec. None: undeclared, read as UTF-8, else Windows-1252 (SPEC §8).
_CHARSETS: dict[str, str | None] = {
    "": None, "ASCII": None, "ISO IR6": None,
    "8859/1": "latin-1", "ISO IR100": "latin-1",
    "8859/2": "iso8859_2", "ISO IR101": "iso8859_2",
    "8859/3": "iso8859_3", "ISO IR109": "iso8859_3",
    "8859/4": "iso8859_4", "ISO IR110": "iso8859_4",
    "8859/5": "iso8859_5", "ISO IR144": "iso8859_5",
    "8859/6": "iso8859_6", "ISO IR127": "iso8859_6",
    "8859/7": "iso8859_7", "ISO IR126": "iso8859_7",
    "8859/8": "iso8859_8", "ISO IR138": "iso8859_8",
    "8859/9": "iso8859_9", "ISO IR148": "iso8859_9",
    "8859/15": "iso8859_15",
    # Before v2.6 "UNICODE" named no encoding; on an ASCII-compatible wire it can only be UTF-8.
    "UNICODE": "utf-8", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "ISO IR192": "utf-8",
    "GB 18030-2000": "gb18030", "KS X 1001": "euc_kr", "BIG-5": "big5",
    "WINDOWS-1252": "cp1252", "CP1252": "cp1252",  # not in table 0211, but sent
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = "#"


STANDARD = Delimiters()


def unescape(value: str, delimiters: Delimiters = STANDARD, encoding: str = "utf-8") -> str:
    """Decodes \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ and \\Xhh..\\ (hex bytes in the message's
    encoding). Formatting escapes are dropped, except that a line break (\\.br\\ \\.sp\\ \\.ce\\)
    becomes a space so that it does not glue two words. \\Cxxyy\\ / \\Mxxyyzz\\ character-set
    switches, \\Z..\\ and unknown sequences are dropped; an unterminated one is kept as text."""
    esc = delimiters.escape
    if esc not in value:
        return value
    out: list[str] = []
    at = 0
    while at < len(value):
        start = value.find(esc, at)
        end = value.find(esc, start + 1) if start >= 0 else -1
        if end < 0:
            out.append(value[at:])
            break
        out.append(value[at:start])
        out.append(_sequence(value[start + 1 : end], delimiters, encoding))
        at = end + 1
    return "".join(out)


def _sequence(code: str, d: Delimiters, encoding: str) -> str:
    simple = {
        "F": d.field,
        "S": d.component,
        "T": d.subcomponent,
        "R": d.repetition,
        "E": d.escape,
        "P": d.truncation,
    }
    if code in simple:
        return simple[code]
    if code[:1] == "X":
        try:
            return bytes.fromhex(code[1:]).decode(encoding, "replace")
        except ValueError:
            return ""
    return " " if code[:3] in (".br", ".sp", ".ce") else ""


def escape(value: str, delimiters: Delimiters = STANDARD) -> str:
    """The inverse of `unescape` for text pinbot writes into an ACK; line breaks and other
    control characters become spaces."""
    d = delimiters
    table = {
        d.escape: f"{d.escape}E{d.escape}",
        d.field: f"{d.escape}F{d.escape}",
        d.component: f"{d.escape}S{d.escape}",
        d.repetition: f"{d.escape}R{d.escape}",
        d.subcomponent: f"{d.escape}T{d.escape}",
    }
    return "".join(table.get(ch, " " if ch < " " or ch == "\x7f" else ch) for ch in value)


def parse_date(value: str) -> date:
    """An HL7 DT/DTM/TS value with at least day precision → its date; ValueError otherwise."""
    match = _DTM.match(value)
    if match is None or match[3] is None:
        raise ValueError("not YYYYMMDD")
    return date(int(match[1]), int(match[2]), int(match[3]))


def parse_moment(value: str) -> datetime:
    """An HL7 DTM/TS with at least minute precision → datetime: aware when it carries a UTC
    offset (+/-HHMM), naive otherwise. ValueError otherwise."""
    match = _DTM.match(value)
    if match is None or match[5] is None:
        raise ValueError("not YYYYMMDDHHMM[SS][+/-ZZZZ]")
    seconds = float(match[6] or 0) if match[7] is None else float(f"{match[6]}.{match[7]}")
    moment = datetime(
        int(match[1]), int(match[2]), int(match[3]), int(match[4]), int(match[5])
    ) + timedelta(seconds=seconds)
    if offset := match[8]:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if minutes > 59:
            raise ValueError("bad UTC offset")
        moment = moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return moment


class Segment:
    """One segment, read by HL7 position: `value(7)` is SEG-7.1 of the first repetition.
    Values are the first subcomponent, unescaped, whitespace collapsed; the HL7 null ("") reads
    as empty. `sequence` counts segments of this id in the message, from 1."""

    def __init__(self, raw: Any, sequence: int, delimiters: Delimiters, encoding: str) -> None:
        self._raw, self.sequence = raw, sequence
        self._delimiters, self._encoding = delimiters, encoding
        self.id: str = str(raw[0])

    def repetitions(self, position: int) -> list[list[str]]:
        """SEG-n's non-empty repetitions, each a list of its components' values."""
        if position >= len(self._raw):
            return []
        reps = [[self._value(_leaf(part)) for part in _parts(rep)] for rep in self._raw[position]]
        return [rep for rep in reps if any(rep)]

    def value(self, position: int, component: int = 1, repetition: int = 1) -> str:
        reps = self.repetitions(position)
        if repetition > len(reps):
            return ""
        return component_of(reps[repetition - 1], component)

    def _value(self, raw: str) -> str:
        if raw == '""':
            return ""
        return " ".join(unescape(raw, self._delimiters, self._encoding).split())


def component_of(components: list[str], number: int) -> str:
    return components[number - 1] if number <= len(components) else ""


def _parts(node: Any) -> list[Any]:
    # python-hl7 leaves a level with no separator in it as a plain string.
    return [node] if isinstance(node, str) else list(node)


def _leaf(node: Any) -> str:
    while not isinstance(node, str):
        node = node[0] if len(node) else ""
    return node


@dataclass(frozen=True, slots=True)
class Parsed:
    segments: tuple[Segment, ...]
    delimiters: Delimiters
    charset: str
    encoding: str
    content_digest: str = ""  # see `content_digest`

    def all(self, segment_id: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.id == segment_id]

    def first(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)


def read(raw: bytes) -> Parsed:
    """Decodes and splits one message. Raises FeedRejected for bytes that are not one HL7 v2
    message in a character set pinbot reads."""
    data = raw.lstrip(b" \t\r\n\x00")
    data = data.removeprefix(_BOM)
    if data[:3] in (b"FHS", b"BHS"):
        raise FeedRejected(
            "a batch (FHS/BHS) in one frame: send one message per frame",
            code=ErrorCode.SEGMENT_SEQUENCE,
        )
    if data[:3] != b"MSH":
        raise FeedRejected(
            "not an HL7 v2 message (it does not start with MSH)", code=ErrorCode.SEGMENT_SEQUENCE
        )
    delimiters = _delimiters(data)
    charset, encoding = _charset(data, delimiters)
    text, encoding = _decode(data, encoding)
    lines: list[str] = []
    for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        line = line.strip(" \t\x00\x0b\x1c")
        if not _SEGMENT_ID.match(line[:3]) or line[3:4] not in ("", delimiters.field):
            continue  # blank lines and non-segments are dropped, like unknown segments
        if line[:3] == "MSH" and lines:
            raise FeedRejected(
                "more than one message in one frame", code=ErrorCode.SEGMENT_SEQUENCE
            )
        lines.append(line)
    try:
        message = hl7.parse("\r".join(lines))
    except Exception as error:  # defensive: python-hl7 raises assorted types on odd text
        raise FeedRejected(
            "the message cannot be split into segments and fields", code=ErrorCode.DATA_TYPE
        ) from error
    counts: dict[str, int] = {}
    segments = []
    for raw_segment in message:
        segment_id = str(raw_segment[0])
        counts[segment_id] = counts.get(segment_id, 0) + 1
        segments.append(Segment(raw_segment, counts[segment_id], delimiters, encoding))
    return Parsed(
        tuple(segments), delimiters, charset, encoding, content_digest(lines, delimiters.field)
    )


def content_digest(segments: list[str], field: str = "|") -> str:
    """sha256 of a message's segments (as decoded, CR-joined) with MSH-7 blanked: the same
    for an engine's resend of a message, whatever its segment endings or the time it was
    resent at; different for another message under a reused control id (SPEC §8)."""
    if segments and segments[0][:3] == "MSH":
        msh = segments[0].split(field)
        if len(msh) > 6:
            msh[6] = ""  # MSH-7, date/time of message: the list's index 1 is MSH-2
        segments = [field.join(msh), *segments[1:]]
    return hashlib.sha256("\r".join(segments).encode("utf-8", "surrogatepass")).hexdigest()


def _delimiters(data: bytes) -> Delimiters:
    head = data[:16].decode("latin-1")
    field = head[3:4]
    end = head.find(field, 4) if field else -1
    chars = head[4:end] if end > 4 else ""
    d = Delimiters(
        field,
        chars[0:1],
        chars[1:2] or "~",
        chars[2:3] or "\\",
        chars[3:4] or "&",
        chars[4:5] or "#",
    )
    seps = [d.field, d.component, d.repetition, d.escape, d.subcomponent]
    if (
        len(chars) > 5
        or len(set(seps)) != 5
        or any(not s or s.isalnum() or not s.isprintable() or s.isspace() for s in seps)
    ):
        raise FeedRejected(
            "MSH-1/MSH-2 do not hold valid delimiters", code=ErrorCode.DATA_TYPE, field="MSH-2"
        )
    return d


def _charset(data: bytes, d: Delimiters) -> tuple[str, str | None]:
    msh = re.split(rb"[\r\n]", data, maxsplit=1)[0].decode("latin-1")
    fields = msh.split(d.field)
    value = fields[17] if len(fields) > 17 else ""
    value = value.split(d.repetition)[0].split(d.component)[0].strip()
    key = " ".join(value.upper().replace("_", " ").split())
    if key not in _CHARSETS:
        raise FeedRejected(
            "MSH-18 names a character set pinbot does not read",
            code=ErrorCode.DATA_TYPE,
            field="MSH-18",
        )
    return value, _CHARSETS[key]


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    if encoding is None:
        for candidate in ("utf-8", "cp1252"):
            try:
                return data.decode(candidate), candidate
            except UnicodeDecodeError:
                continue
        return data.decode("latin-1"), "latin-1"  # cp1252's five unassigned bytes
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as error:
        raise FeedRejected(
            "the text does not decode in the MSH-18 character set",
            code=ErrorCode.DATA_TYPE,
            field="MSH-18",
        ) from error
