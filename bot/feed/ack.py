"""Original-mode ACKs (SPEC §8): the MSH with sender and receiver swapped, MSA, and an ERR
naming the field and a plain reason when the code is not AA.

`hl7.Message.create_ack` is not used: in hl7 0.4.5 it raises TypeError when MSH-9 has no
trigger component, writes no ERR and needs a parsed message, and an ACK is owed to text that
did not parse. The ACK is always written with the standard delimiters |^~\\& (MSH-1/MSH-2 say
so), in the character set of the message it answers."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from bot.feed.errors import ErrorCode, FeedError, FeedFieldError
from bot.feed.message import AccountField, parse_message
from bot.feed.records import FeedMessage, Header
from bot.feed.wire import STANDARD, escape

_DEFAULT_VERSION = "2.5.1"
_REASON_LIMIT = 200


class AckCode(StrEnum):
    AA = "AA"  # applied and committed
    AE = "AE"  # well formed, cannot be applied: nothing written
    AR = "AR"  # not HL7, or an unsupported type/version: nothing written


def code_for(error: FeedError) -> AckCode:
    return AckCode.AE if isinstance(error, FeedFieldError) else AckCode.AR


def build_ack(
    header: Header | None,
    code: AckCode,
    *,
    error: FeedError | None = None,
    warnings: Sequence[FeedError] = (),
    control_id: str | None = None,
    now: datetime | None = None,
    application: str = "PINBOT",
) -> bytes:
    """The ACK's bytes (no MLLP framing). `header` None: the text was not HL7, so MSA-2 is
    empty and MSH-3 is `application`. `error` gives MSA-3 (v2.2-2.4), ERR-1 (v2.2-2.4 ELD)
    and ERR-2/3/4/8 (v2.5+); receivers read the fields of their version and ignore the rest.
    `warnings` (with AA only) each add an ERR of severity W: what was left out."""
    if code is not AckCode.AA and error is None:
        raise ValueError("an AE or AR needs the error it reports")
    if warnings and code is not AckCode.AA:
        raise ValueError("warnings ride on an AA; an AE or AR reports its error")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    routing = header.routing if header else ((), (), (), ())
    sender = _hd(routing[2]) if header else escape(application)
    version = header.version if header and header.version else _DEFAULT_VERSION
    msh = [
        "MSH",
        "^~\\&",
        sender,
        _hd(routing[3]),
        _hd(routing[0]),
        _hd(routing[1]),
        moment.strftime("%Y%m%d%H%M%S+0000"),
        "",
        f"ACK^{escape(header.trigger)}^ACK" if header and header.trigger else "ACK",
        escape(control_id or secrets.token_hex(10).upper()),
        escape(header.processing_id) if header else "P",
        escape(version),
    ]
    if header and header.charset:
        msh += [""] * 5 + [escape(header.charset)]  # MSH-13..17 empty, MSH-18
    msa = ["MSA", code.value, escape(header.control_id) if header else ""]
    segments = [msh, msa]
    if error is not None:
        reason = escape(error.reason[:_REASON_LIMIT])
        if version[:3] in ("2.2", "2.3", "2.4"):
            msa.append(reason)
        segments.append(_err(error, reason, "E"))
    segments += [_err(w, escape(w.reason[:_REASON_LIMIT]), "W") for w in warnings]
    text = "\r".join("|".join(segment) for segment in segments) + "\r"
    return text.encode(header.encoding if header else "ascii", "replace")


def _hd(components: tuple[str, ...]) -> str:
    return STANDARD.component.join(escape(part) for part in components).rstrip("^")


def _err(error: FeedError, reason: str, severity: str) -> list[str]:
    code = error.code
    location = error.location()
    if location:
        segment, sequence, position, component = location
        eld = f"{segment}^{sequence}^{position}"
        erl = eld + (f"^1^{component}" if component else "")
    else:
        eld = erl = ""
    condition = f"{int(code)}^{code.text}^HL70357"
    eld_code = f"{int(code)}&{code.text}&HL70357"
    err1 = f"{eld}^{eld_code}" if eld else f"^^^{eld_code}"
    # ERR-1 ELD, ERR-2 ERL, ERR-3 condition, ERR-4 severity, ERR-5..7 empty, ERR-8 user message
    return ["ERR", err1, erl, condition, severity, "", "", "", reason]


def answer(
    raw: bytes,
    apply: Callable[[FeedMessage], None],
    *,
    chart_id_type: str = "MR",
    account_field: AccountField = "PID-18",
    now: datetime | None = None,
) -> bytes:
    """The listener's rule for one message: parse, `apply` (which commits its own
    transaction, or raises and writes nothing), and the ACK for the outcome: AA after `apply`
    returned, AE/AR for a FeedError raised by parsing or by `apply` (say an appointment for an
    unknown patient). Any other exception propagates: the MLLP server answers it AR."""
    try:
        message = parse_message(raw, chart_id_type=chart_id_type, account_field=account_field)
    except FeedError as error:
        return build_ack(error.header, code_for(error), error=error, now=now)
    try:
        apply(message)
    except FeedError as error:
        return build_ack(message.header, code_for(error), error=error, now=now)
    return build_ack(message.header, AckCode.AA, now=now)


def internal_error_ack(header: Header | None, *, now: datetime | None = None) -> bytes:
    """AR with ERR-3 207 (application internal error) for a message whose handling failed
    unexpectedly: HL7's original mode answers AR for reasons unrelated to the message's
    content, and engines resend it later. Nothing was written (the handler's transaction
    rolled back)."""
    error = FeedError("internal error; nothing was applied, resend later")
    error.code = ErrorCode.INTERNAL_ERROR
    return build_ack(header, AckCode.AR, error=error, now=now)
