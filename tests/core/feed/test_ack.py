"""ACK structure (SPEC §8), read back with python-hl7 as an interface engine would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import hl7
import pytest

from bot.feed.ack import AckCode, answer, build_ack, internal_error_ack
from bot.feed.errors import FeedError, FeedFieldError
from bot.feed.message import parse_message
from bot.feed.records import FeedMessage
from tests.core.feed.conftest import fixture_bytes

NOW = datetime(2025, 3, 14, 13, 30, 5, tzinfo=UTC)


def parse_ack(data: bytes, encoding: str = "utf-8") -> Any:
    assert data.endswith(b"\r") and b"\n" not in data
    return hl7.parse(data.decode(encoding))


def ignore(message: FeedMessage) -> None:
    del message


def test_aa_swaps_sender_and_receiver() -> None:
    ack = parse_ack(answer(fixture_bytes("adt_a04_newborn_v251.hl7"), ignore, now=NOW))
    msh = ack.segment("MSH")
    assert str(msh(3)) == "PINBOT" and str(msh(4)) == "SUNNYPEDS"
    # MSH-5 is the whole HD the EHR sent in MSH-3, components included.
    assert str(msh(5)) == "EPIC^1.2.840.114350.1.13^ISO" and str(msh(6)) == "SUNNYPEDS"
    assert str(msh(7)) == "20250314133005+0000"
    assert str(msh(9)) == "ACK^A04^ACK"
    assert str(msh(10)) and str(msh(10)) != "EP000101"
    assert (str(msh(11)), str(msh(12))) == ("P", "2.5.1")
    assert str(ack["MSA.1"]) == "AA" and str(ack["MSA.2"]) == "EP000101"
    with pytest.raises(KeyError):
        ack.segment("ERR")


def test_each_ack_has_a_new_control_id() -> None:
    raw = fixture_bytes("siu_s12_v26.hl7")
    ids = {str(parse_ack(answer(raw, ignore))["MSH.10"]) for _ in range(20)}
    assert len(ids) == 20


def test_ae_names_the_field_in_err_for_both_versions() -> None:
    ack = parse_ack(answer(fixture_bytes("adt_a04_missing_dob_v231.hl7"), ignore, now=NOW))
    assert str(ack["MSA.1"]) == "AE" and str(ack["MSA.2"]) == "ECW-5511"
    assert str(ack["MSA.3"]) == "no date of birth"  # v2.3/2.4 text message
    err = ack.segment("ERR")
    assert str(err(1)) == "PID^1^7^101&Required field missing&HL70357"  # v2.3 ELD
    assert str(err(2)) == "PID^1^7"  # v2.5+ ERL
    assert str(err(3)) == "101^Required field missing^HL70357"
    assert str(err(4)) == "E"
    assert str(err(8)) == "no date of birth"


def test_ar_for_unsupported_type_keeps_the_control_id() -> None:
    ack = parse_ack(answer(fixture_bytes("oru_r01_v251.hl7"), ignore))
    assert str(ack["MSA.1"]) == "AR" and str(ack["MSA.2"]) == "LAB-777"
    assert str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    err = ack.segment("ERR")
    assert str(err(2)) == "MSH^1^9"
    assert str(err(3)).startswith("200^")
    assert len(ack.segment("MSA")) == 3  # no MSA-3 for v2.5+ (withdrawn there): MSA, 1, 2


@pytest.mark.parametrize("raw", [b"hello world", b"", b"\xff\xfe\x00junk", b"PID|1||X"])
def test_not_hl7_still_gets_ar_with_empty_msa2(raw: bytes) -> None:
    ack = parse_ack(answer(raw, ignore))
    assert str(ack["MSA.1"]) == "AR"
    assert str(ack["MSA.2"]) == ""
    assert str(ack["MSH.3"]) == "PINBOT" and str(ack.segment("MSH")(9)) == "ACK"
    assert str(ack.segment("ERR")(3)).startswith("100^")


def test_apply_errors_become_ae_and_nothing_else_is_caught() -> None:
    def unknown_patient(message: FeedMessage) -> None:
        del message
        raise FeedFieldError("PID-3", "no patient with this chart id", missing=False)

    ack = parse_ack(answer(fixture_bytes("siu_s12_v26.hl7"), unknown_patient))
    assert str(ack["MSA.1"]) == "AE" and str(ack.segment("ERR")(2)) == "PID^1^3"

    def broken(message: FeedMessage) -> None:
        del message
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        answer(fixture_bytes("siu_s12_v26.hl7"), broken)


def test_reason_and_routing_are_escaped() -> None:
    header = parse_message(fixture_bytes("adt_a31_escapes_v28.hl7")).header
    error = FeedFieldError("NK1-2.1", "a|b^c~d&e\\f\rg", sequence=2)
    data = build_ack(header, AckCode.AE, error=error)
    ack = parse_ack(data)
    assert str(ack.segment("MSH")(5)) == "ATHENA\\T\\CO"  # escaped on the wire
    assert str(ack["MSH.5"]) == "ATHENA&CO"
    assert str(ack["MSH.18"]) == "UNICODE UTF-8"
    err = ack.segment("ERR")
    assert str(err(2)) == "NK1^2^2^1^1"
    assert str(err(8)) == "a\\F\\b\\S\\c\\R\\d\\T\\e\\E\\f g"


def test_latin1_message_is_answered_in_latin1() -> None:
    raw = fixture_bytes("adt_a04_latin1_v24.hl7").replace(
        b"LAKESIDE|PINBOT", "LAKESIDÉ|PINBOT".encode("latin-1")
    )
    data = answer(raw, ignore)
    assert "LAKESIDÉ".encode("latin-1") in data
    assert str(parse_ack(data, "latin-1")["MSH.18"]) == "8859/1"


def test_internal_error_is_ar_207() -> None:
    header = parse_message(fixture_bytes("adt_a40_merge_v25.hl7")).header
    ack = parse_ack(internal_error_ack(header))
    assert str(ack["MSA.1"]) == "AR" and str(ack["MSA.2"]) == "EP000900"
    assert str(ack.segment("ERR")(3)).startswith("207^")


def test_an_error_code_needs_an_error() -> None:
    with pytest.raises(ValueError):
        build_ack(None, AckCode.AE)
    assert b"MSA|AR|" in build_ack(None, AckCode.AR, error=FeedError("x"))
