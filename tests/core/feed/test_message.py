"""Parsing and mapping of the fixture messages (SPEC §8)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.feed.errors import ErrorCode, FeedFieldError, FeedRejected
from bot.feed.message import iter_messages, parse_message, read_header, split_messages
from bot.feed.records import FAMILY_ROW_COLUMNS, AdtMerge, AdtPatient, SiuAppointment
from bot.feed.wire import parse_date, parse_moment, unescape
from tests.core.feed.conftest import fixture_bytes

MINIMAL = (
    "MSH|^~\\&|EHR|CLINIC|PINBOT|CLINIC|20250101||ADT^A04|C1|P|{version}\r"
    "PID|1||X1^^^CLINIC^MR||DOE^JANE||20200101|F||||||||||ACC1\r"
)


def patient(raw: bytes, **options: str) -> AdtPatient:
    body = parse_message(raw, **options).body  # type: ignore[arg-type]
    assert isinstance(body, AdtPatient)
    return body


def test_a04_newborn_with_mother_email_and_father_phone() -> None:
    message = parse_message(fixture_bytes("adt_a04_newborn_v251.hl7"))
    header = message.header
    assert (header.sending_app, header.sending_facility) == ("EPIC", "SUNNYPEDS")
    assert (header.receiving_app, header.receiving_facility) == ("PINBOT", "SUNNYPEDS")
    assert (header.type, header.trigger, header.version, header.control_id) == (
        "ADT", "A04", "2.5.1", "EP000101",
    )  # fmt: skip
    assert header.actor == "ehr:EPIC"
    assert header.dedupe_key == ("EPIC", "SUNNYPEDS", "EP000101")
    body = message.body
    assert isinstance(body, AdtPatient)
    # PID-3 repeats PI, MR and SS identifiers: the MR one is the chart id, not the first.
    assert body.chart_id == "MRN00123"
    assert (body.last_name, body.first_name, body.middle_name) == ("RIVERA", "BABY GIRL", "")
    assert body.name_type == "NB"
    assert (body.dob, body.sex, body.account_number) == (date(2025, 3, 14), "F", "ACCT7788")
    mother, father = body.guardians
    assert (mother.first_name, mother.last_name, mother.relationship) == ("ANA", "RIVERA", "Mother")
    assert mother.email == "ana.rivera@example.com"
    assert mother.phone == "(217) 555-0143"  # built from XTN components 6 and 7
    assert mother.language == "spa"
    assert (father.relationship, father.phone, father.email) == ("Father", "(217)555-0199", "")


def test_to_family_rows_is_one_csv_row_per_guardian() -> None:
    rows = patient(fixture_bytes("adt_a04_newborn_v251.hl7")).to_family_rows()
    assert [tuple(row) for row in rows] == [FAMILY_ROW_COLUMNS] * 2
    assert rows[0] == {
        "account_number": "ACCT7788", "patient_id": "MRN00123",
        "patient_first_name": "BABY GIRL", "patient_middle_name": "",
        "patient_last_name": "RIVERA", "patient_dob": "2025-03-14", "patient_sex": "F",
        "name_type": "NB", "guardian_first_name": "ANA", "guardian_last_name": "RIVERA",
        "guardian_relationship": "Mother", "guardian_email": "ana.rivera@example.com",
        "guardian_phone": "(217) 555-0143", "guardian_has_portal_account": "",
        "guardian_language": "spa",
    }  # fmt: skip
    assert rows[1]["guardian_first_name"] == "LUIS"


def test_patient_without_nk1_is_one_row_with_empty_guardian() -> None:
    rows = patient(MINIMAL.format(version="2.5").encode()).to_family_rows()
    assert len(rows) == 1
    assert rows[0]["patient_id"] == "X1"
    assert all(rows[0][c] == "" for c in FAMILY_ROW_COLUMNS if c.startswith("guardian_"))


def test_a08_rename_prefers_legal_name_lf_endings() -> None:
    raw = fixture_bytes("adt_a08_rename_v23.hl7")
    assert b"\r" not in raw
    body = patient(raw)
    assert (body.first_name, body.middle_name, body.last_name) == ("SOFIA", "ISABEL", "RIVERA")
    assert body.name_type == "L"
    assert body.guardians[0].relationship == "Mother"


def test_latin1_charset_crlf_and_account_field_choice() -> None:
    raw = fixture_bytes("adt_a04_latin1_v24.hl7")
    assert "MUÑOZ".encode("latin-1") in raw and b"\r\n" in raw
    message = parse_message(raw)
    assert (message.header.charset, message.header.encoding) == ("8859/1", "latin-1")
    body = message.body
    assert isinstance(body, AdtPatient)
    assert (body.last_name, body.first_name, body.middle_name) == ("MUÑOZ", "JOSÉ", "ÁNGEL")
    assert body.account_number == "V0099"
    assert patient(raw, account_field="GT1-2").account_number == "G-3344"
    guardian, aunt = body.guardians  # the third NK1 is an organisation, not a person
    assert (guardian.last_name, guardian.relationship) == ("MUÑOZ", "Guardian")
    assert guardian.email == "maria.munoz@example.org"  # NK1-6, equipment type Internet
    assert guardian.phone == "(312) 555-0177 x22"
    assert guardian.language == "spa"
    assert aunt.relationship == "Aunt"  # unknown code: its text kept
    assert aunt.phone == ""  # a fax is not a telephone to call


def test_escapes_utf8_v28() -> None:
    message = parse_message(fixture_bytes("adt_a31_escapes_v28.hl7"))
    assert message.header.sending_app == "ATHENA&CO"
    assert message.header.version == "2.8"
    body = message.body
    assert isinstance(body, AdtPatient)
    assert body.last_name == "NGUYỄN"
    assert body.first_name == "LAN"  # \H\ and \N\ dropped
    assert body.middle_name == "éLODIE"  # \XC3A9\ is UTF-8 é
    assert body.dob == date(2018, 7, 4)  # a DTM with time and offset: its date
    pat, chris = body.guardians
    assert pat.last_name == "SMITH&JONES"
    assert pat.relationship == "Parent"
    assert pat.email == "pat.sj@example.net"
    assert pat.phone == "+1 555 0100"  # the first telephone, after the email repetition
    assert pat.language == "vie"
    assert chris.relationship == "Uncle|Godfather"  # \F\
    assert chris.phone == ""  # the HL7 null ""


def test_a40_merge() -> None:
    body = parse_message(fixture_bytes("adt_a40_merge_v25.hl7")).body
    assert isinstance(body, AdtMerge)
    [merge] = body.merges
    assert (merge.survivor_chart_id, merge.merged_chart_id) == ("MRN00500", "MRN00499")


def test_a40_identifier_type_is_configurable() -> None:
    body = parse_message(fixture_bytes("adt_a40_merge_v25.hl7"), chart_id_type="PI").body
    assert isinstance(body, AdtMerge)
    assert body.merges[0].merged_chart_id == "E554"


def test_a40_without_mrg_is_ae() -> None:
    raw = fixture_bytes("adt_a40_merge_v25.hl7").split(b"MRG|")[0]
    with pytest.raises(FeedFieldError) as caught:
        parse_message(raw)
    assert caught.value.field == "MRG-1"


def test_siu_s12_offset_start_and_provider() -> None:
    body = parse_message(fixture_bytes("siu_s12_v26.hl7")).body
    assert isinstance(body, SiuAppointment)
    assert (body.event, body.status, body.appointment_id) == ("new", "booked", "FL2002")
    assert body.chart_id == "MRN00123"
    assert body.starts_at == datetime(2025, 3, 20, 13, 30, tzinfo=UTC)
    assert body.starts_at is not None and body.starts_at.utcoffset() == timedelta(hours=-4)
    assert body.provider == "MEI CHEN"


def test_siu_s15_falls_back_to_placer_id_and_aig() -> None:
    body = parse_message(fixture_bytes("siu_s15_v27.hl7")).body
    assert isinstance(body, SiuAppointment)
    assert (body.event, body.status, body.appointment_id) == ("cancelled", "cancelled", "PL1003")
    assert body.starts_at == datetime(2025, 3, 21, 14, 0)  # naive: practice time zone
    assert body.starts_at is not None and body.starts_at.tzinfo is None
    assert body.provider == "Nurse Visit"


def test_siu_s26_no_show_start_from_ail() -> None:
    body = parse_message(fixture_bytes("siu_s26_v23.hl7")).body
    assert isinstance(body, SiuAppointment)
    assert (body.event, body.status, body.appointment_id) == ("no-show", "no-show", "FL1004")
    assert body.starts_at == datetime(2025, 3, 22, 8, 0)
    assert body.provider == ""


def test_siu_new_without_start_is_ae() -> None:
    raw = fixture_bytes("siu_s12_v26.hl7")
    raw = raw.replace(b"^^15^20250320093000-0400^20250320094500-0400", b"")
    raw = raw.replace(b"|20250320093000-0400", b"|")
    with pytest.raises(FeedFieldError) as caught:
        parse_message(raw)
    # v2.6: named where the version keeps the start (TQ1 since v2.5).
    assert (caught.value.field, caught.value.code) == ("TQ1-7", ErrorCode.REQUIRED_FIELD_MISSING)


def test_oru_is_rejected_with_its_header() -> None:
    with pytest.raises(FeedRejected) as caught:
        parse_message(fixture_bytes("oru_r01_v251.hl7"))
    assert caught.value.code == ErrorCode.UNSUPPORTED_MESSAGE_TYPE
    assert caught.value.header is not None and caught.value.header.control_id == "LAB-777"


def test_missing_dob_is_a_field_error() -> None:
    with pytest.raises(FeedFieldError) as caught:
        parse_message(fixture_bytes("adt_a04_missing_dob_v231.hl7"))
    error = caught.value
    assert (error.field, error.code, error.location()) == (
        "PID-7", ErrorCode.REQUIRED_FIELD_MISSING, ("PID", 1, 7, None),
    )  # fmt: skip
    assert error.header is not None and error.header.control_id == "ECW-5511"


@pytest.mark.parametrize("dob", ["2025", "202503", "20250230", "2025-03-14", "1/2/2020"])
def test_malformed_dob(dob: str) -> None:
    raw = MINIMAL.format(version="2.5").replace("20200101", dob).encode()
    with pytest.raises(FeedFieldError) as caught:
        parse_message(raw)
    assert caught.value.field == "PID-7"
    assert caught.value.reason == "date of birth is not a date (YYYYMMDD)"


def test_batch_file_splits_into_its_messages() -> None:
    messages = split_messages(fixture_bytes("batch_fhs_bhs.hl7"))
    parsed = [parse_message(raw) for raw in messages]
    assert [m.header.control_id for m in parsed] == ["EPB-1", "EPB-2"]
    assert [m.header.trigger for m in parsed] == ["A28", "A08"]


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_a_batch_read_in_chunks_splits_as_read_whole(ending: bytes) -> None:
    """`pinbot hl7 replay` streams the file: every chunk size, including those that cut a
    CRLF or a segment in two, gives the same messages as reading it whole."""
    data = fixture_bytes("batch_fhs_bhs.hl7").replace(b"\r\n", b"\r").replace(b"\r", ending)
    whole = split_messages(data)
    assert len(whole) == 2
    for size in range(1, 40):
        chunks = [data[at : at + size] for at in range(0, len(data), size)]
        assert list(iter_messages(chunks)) == whole, size


def test_a_batch_in_one_frame_is_rejected() -> None:
    with pytest.raises(FeedRejected):
        parse_message(fixture_bytes("batch_fhs_bhs.hl7"))


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"])
def test_supported_versions(version: str) -> None:
    assert patient(MINIMAL.format(version=version).encode()).chart_id == "X1"


@pytest.mark.parametrize("version", ["2.1", "2.9", "3.0", "", "25"])
def test_unsupported_versions(version: str) -> None:
    with pytest.raises(FeedRejected) as caught:
        parse_message(MINIMAL.format(version=version).encode())
    assert (caught.value.code, caught.value.field) == (ErrorCode.UNSUPPORTED_VERSION, "MSH-12")


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n", b"\n\r"])
def test_segment_endings(ending: bytes) -> None:
    raw = MINIMAL.format(version="2.5").encode().replace(b"\r", ending)
    assert patient(raw).last_name == "DOE"


@pytest.mark.parametrize(
    "raw",
    [b"", b"hello", b"GET / HTTP/1.1\r\n", b"\x00\xff\xfe", b"MSH", b"MSHxx|", b"MSH|"],
)
def test_not_hl7_is_rejected(raw: bytes) -> None:
    with pytest.raises(FeedRejected):
        parse_message(raw)
    assert read_header(raw) is None


def test_undeclared_charset_falls_back_to_windows_1252() -> None:
    raw = MINIMAL.format(version="2.5").replace("DOE", "PE\u00d1A").encode("cp1252")
    message = parse_message(raw)
    assert message.header.encoding == "cp1252"
    assert isinstance(message.body, AdtPatient) and message.body.last_name == "PEÑA"


def test_unknown_charset_is_rejected() -> None:
    raw = MINIMAL.format(version="2.5").replace("2.5\r", "2.5||||||KLINGON\r").encode()
    with pytest.raises(FeedRejected) as caught:
        parse_message(raw)
    assert caught.value.field == "MSH-18"


def test_declared_utf8_that_is_not_is_rejected() -> None:
    raw = MINIMAL.format(version="2.5").replace("2.5\r", "2.5||||||UNICODE UTF-8\r")
    with pytest.raises(FeedRejected):
        parse_message(raw.replace("DOE", "D\u00d6E").encode("latin-1"))


def test_other_delimiters_and_unknown_segments() -> None:
    raw = (
        b"MSH#*~!$#EHR#CLINIC#PINBOT#CLINIC#20250101##ADT*A08#C9#P#2.4\n"
        b"ZZZ#anything\nPID#1##X9*$$$*MR##O!F!BRIEN*PAT##20200101#M##########ACC9\n"
    )
    body = patient(raw)
    assert (body.chart_id, body.last_name, body.account_number) == ("X9", "O#BRIEN", "ACC9")


def test_unescape_table() -> None:
    assert unescape(r"a\F\b\S\c\T\d\R\e\E\f") == "a|b^c&d~e\\f"
    assert unescape(r"\H\bold\N\ x\.br\y \.sp2\z \Zcustom\q") == "bold x y  z q"
    assert unescape(r"\XC3B1\ \X41\ \Xzz\!") == "ñ A !"
    assert unescape("\\XF1\\", encoding="latin-1") == "ñ"
    assert unescape("unterminated \\F") == "unterminated \\F"


def test_dates() -> None:
    assert parse_date("20250314") == date(2025, 3, 14)
    assert parse_date("202503141230+0100") == date(2025, 3, 14)
    assert parse_moment("202503141230") == datetime(2025, 3, 14, 12, 30)
    assert parse_moment("20250314123005.25-0030") == datetime(
        2025, 3, 14, 12, 30, 5, 250000, tzinfo=timezone(-timedelta(minutes=30))
    )
    for bad in ("2025", "20250314", "2025031412", "2025xx", "20251314", "202503141230+0199"):
        with pytest.raises(ValueError):
            parse_moment(bad)


def test_chart_id_falls_back_to_the_first_identifier() -> None:
    raw = fixture_bytes("adt_a04_newborn_v251.hl7")
    assert patient(raw, chart_id_type="XX").chart_id == "E100234"
    assert patient(raw, chart_id_type="pi").chart_id == "E100234"
    assert patient(raw, chart_id_type="SS").chart_id == "900000001"


def test_name_falls_back_to_the_first_repetition() -> None:
    raw = MINIMAL.format(version="2.5").replace("DOE^JANE", "DOE^BABY BOY^^^^^NB~DOE^JIM^^^^^A")
    body = patient(raw.encode())
    assert (body.first_name, body.name_type) == ("BABY BOY", "NB")


def test_the_content_digest_ignores_msh_7_and_segment_endings_only() -> None:
    raw = fixture_bytes("adt_a04_newborn_v251.hl7")
    digest = parse_message(raw).header.content_digest
    assert len(digest) == 64 and digest != hashlib.sha256(raw).hexdigest()
    resent = raw.replace(b"|20250314093012-0400||ADT", b"|20250314094500-0400||ADT")
    assert resent != raw
    assert parse_message(resent.replace(b"\r", b"\r\n")).header.content_digest == digest
    other = raw.replace(b"RIVERA^LUIS", b"RIVERA^LUISA")
    assert parse_message(other).header.content_digest != digest


def test_an_expired_legal_name_is_skipped_unless_every_name_has_expired() -> None:
    raw = fixture_bytes("adt_a08_expired_name_v26.hl7")
    body = patient(raw, today=date(2025, 3, 14))  # type: ignore[arg-type]
    assert (body.first_name, body.middle_name, body.last_name) == ("MARISOL", "ELENA", "REYES")
    # Before the expiration date the first legal name is still current.
    assert patient(raw, today=date(2024, 2, 1)).last_name == "CASTILLO"  # type: ignore[arg-type]
    only_expired = raw.replace(b"~REYES^MARISOL^ELENA^^^^L~REYES^MARI^^^^^N", b"")
    assert patient(only_expired).last_name == "CASTILLO"


@pytest.mark.parametrize(
    ("sent", "word"),
    [
        ("MOTHER", "Mother"), ("^Father", "Father"), ("SPOUSE", "Spouse"),
        ("GUARDIAN^GUARDIAN", "Guardian"), ("step-parent", "Stepparent"), ("MTH", "Mother"),
        ("GRD^Legal Guardian^HL70063", "Guardian"), ("ZAU^Aunt", "Aunt"),
    ],
)  # fmt: skip
def test_relationship_words_read_as_the_codes_do(sent: str, word: str) -> None:
    raw = MINIMAL.format(version="2.5") + f"NK1|1|DOE^SAM|{sent}\r"
    assert patient(raw.encode()).guardians[0].relationship == word


def test_gt1_is_the_guardian_only_without_nk1_and_never_the_patient_self() -> None:
    gt1 = "GT1|1|G-1|DOE^PAT||||||||MTH\r"
    body = patient((MINIMAL.format(version="2.5") + gt1).encode())
    [guarantor] = body.guardians
    assert (guarantor.first_name, guarantor.relationship, guarantor.origin["guardian_phone"]) == (
        "PAT", "Mother", "GT1-6",
    )  # fmt: skip
    with_nk1 = MINIMAL.format(version="2.5") + "NK1|1|DOE^SAM|FTH\r" + gt1
    assert [g.first_name for g in patient(with_nk1.encode()).guardians] == ["SAM"]
    self_pay = MINIMAL.format(version="2.5") + "GT1|1|G-1|DOE^JANE||||||||SEL\r"
    assert patient(self_pay.encode()).guardians == ()
    unsaid = MINIMAL.format(version="2.5") + "GT1|1|G-1|DOE^PAT\r"
    assert patient(unsaid.encode()).guardians[0].relationship == "Guarantor"


def test_v2_2_takes_the_trigger_from_evn_when_msh_9_has_none() -> None:
    message = parse_message(fixture_bytes("adt_a04_v22.hl7"))
    assert (message.header.version, message.header.type, message.header.trigger) == (
        "2.2", "ADT", "A04",
    )  # fmt: skip
    assert isinstance(message.body, AdtPatient) and message.body.chart_id == "40212"


def test_siu_start_order_tq1_then_sch_11_then_resources() -> None:
    messages = split_messages(fixture_bytes("siu_s12_s13_tq1_v28.hl7"))
    rescheduled = parse_message(messages[2]).body
    assert isinstance(rescheduled, SiuAppointment)
    assert rescheduled.starts_at == datetime(
        2025, 6, 24, 14, 0, tzinfo=timezone(timedelta(hours=-4))
    )
    starts = [
        parse_message(raw).body
        for raw in split_messages(fixture_bytes("siu_aig_ail_aip_starts_v251.hl7"))[1:]
    ]
    assert [s.starts_at for s in starts if isinstance(s, SiuAppointment)] == [
        datetime(2025, 7, 14, 8, 30), datetime(2025, 7, 15, 9, 45), datetime(2025, 7, 16, 11, 0),
    ]  # fmt: skip


def test_sch_25_noshow_is_a_no_show_whatever_the_event() -> None:
    cancelled = split_messages(fixture_bytes("siu_s15_noshow_v24.hl7"))[2]
    body = parse_message(cancelled).body
    assert isinstance(body, SiuAppointment)
    assert (body.event, body.filler_status, body.status) == ("cancelled", "NOSHOW", "no-show")
    plain = parse_message(cancelled.replace(b"|NOSHOW", b"|Cancelled")).body
    assert isinstance(plain, SiuAppointment) and plain.status == "cancelled"
