"""FeedApplier against a real database (SQLite and PostgreSQL): the families import's rules
through the feed, errors named by HL7 field, merges of unknown charts, and the name keys of
this process and of another replica after a rename."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlmodel import col, select

from bot.config import Settings, load_settings
from bot.db import Database
from bot.feed.ack import AckCode
from bot.feed.apply import FeedApplier
from bot.feed.errors import ErrorCode
from bot.lookup import name_keys as keys_module
from bot.lookup.name_keys import forget_name_keys, name_keys
from models import Appointment, AuditEvent, Family, FeedMessage, Guardian, Patient
from tests.core.feed.conftest import fixture_bytes

NEWBORN = fixture_bytes("adt_a04_newborn_v251.hl7")
RENAME = fixture_bytes("adt_a08_rename_v23.hl7")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings({"DATABASE_URL": database_url, "HL7_PORT": "2575"})


@pytest.fixture
def applier(database: Database, settings: Settings) -> Iterator[FeedApplier]:
    forget_name_keys()
    yield FeedApplier(database, settings)
    forget_name_keys()


def test_a_known_portal_account_survives_an_a08(applier: FeedApplier, database: Database) -> None:
    assert applier.receive(NEWBORN).code == AckCode.AA
    with database.transaction() as session:
        ana = session.exec(select(Guardian).where(Guardian.first_name == "ANA")).one()
        ana.has_portal_account = True
    update = NEWBORN.replace(b"EP000101", b"EP000102").replace(b"|F|||12 ELM", b"|U|||12 ELM")
    assert applier.receive(update).code == AckCode.AA
    with database.read_session() as session:
        ana = session.exec(select(Guardian).where(Guardian.first_name == "ANA")).one()
        baby = session.exec(select(Patient)).one()
    assert ana.has_portal_account is True and baby.sex == "U"


def test_an_a08_without_the_email_keeps_the_guardians_email(
    applier: FeedApplier, database: Database
) -> None:
    assert applier.receive(NEWBORN).code == AckCode.AA
    assert applier.receive(RENAME).code == AckCode.AA  # NK1 RIVERA^ANA with a phone only
    with database.read_session() as session:
        guardians = session.exec(select(Guardian).where(Guardian.first_name == "ANA")).all()
    assert [(g.email, g.phone) for g in guardians] == [("ana.rivera@example.com", "(217)555-0143")]


@pytest.mark.parametrize(
    ("old", "new", "field", "sequence"),
    [
        (b"RIVERA^ANA", b"RIVERA^" + b"N" * 101, "NK1-2.2", 1),
        (b"|20250314|F|", b"|20990314|F|", "PID-7", 1),
        (b"FTH||(217)555-0199", b"FTH||(217)555-0199|||||||||||||||xqzzy", "NK1-20", 2),
    ],
)
def test_an_import_rule_broken_is_an_ae_naming_the_hl7_field(
    applier: FeedApplier, database: Database, old: bytes, new: bytes, field: str, sequence: int
) -> None:
    assert old in NEWBORN
    receipt = applier.receive(NEWBORN.replace(old, new))
    assert receipt.code == AckCode.AE and receipt.error is not None
    assert (receipt.error.field, receipt.error.sequence) == (field, sequence)
    assert "guardian_" not in receipt.error.reason and "patient_" not in receipt.error.reason
    with database.read_session() as session:
        assert session.exec(select(Patient)).all() == []
        logged = session.exec(select(FeedMessage)).one()
    assert (logged.ack_code, logged.error_field) == ("AE", field)


def test_a_chart_moved_to_another_account_is_refused(applier: FeedApplier) -> None:
    assert applier.receive(NEWBORN).code == AckCode.AA
    moved = NEWBORN.replace(b"EP000101", b"EP-MOVE").replace(b"ACCT7788", b"ACCT9999")
    receipt = applier.receive(moved)
    assert receipt.code == AckCode.AE and receipt.error is not None
    # The account field is named (not PID-3), with what to do about a per-visit number.
    assert receipt.error.field == "PID-18" and "HL7_ACCOUNT_FIELD" in receipt.error.reason
    assert b"ERR|PID^1^18^204" in receipt.ack and b"PID^1^3" not in receipt.ack


def test_an_update_without_an_account_keeps_the_charts_and_a_new_chart_needs_one(
    applier: FeedApplier, database: Database
) -> None:
    assert applier.receive(NEWBORN).code == AckCode.AA
    update = NEWBORN.replace(b"EP000101", b"EP-NOACCT").replace(b"ACCT7788^^^SUNNYPEDS^AN", b"")
    update = update.replace(b"|F|||12 ELM", b"|U|||12 ELM")
    assert applier.receive(update).code == AckCode.AA
    new_chart = update.replace(b"EP-NOACCT", b"EP-NEW").replace(b"MRN00123", b"MRN00999")
    receipt = applier.receive(new_chart)
    assert receipt.code == AckCode.AE and receipt.error is not None
    assert (receipt.error.field, receipt.error.code) == ("PID-18", ErrorCode.REQUIRED_FIELD_MISSING)
    with database.read_session() as session:
        baby = session.exec(select(Patient)).one()
        family = session.exec(select(Family)).one()
    assert (baby.sex, baby.family_id, family.account_number) == ("U", family.id, "ACCT7788")


@pytest.mark.parametrize(
    ("old", "new", "field", "sequence", "kept"),
    [
        (b"^PRN^PH^^1^217^5550143", b"121111^PRN^PH", "NK1-5", 1, "email"),
        (b"(217)555-0199^PRN^PH", b"(217)555-0199^PRN^PH|^NET^Internet^luis@", "NK1-6", 2, "phone"),
    ],
)
def test_a_malformed_guardian_phone_or_email_is_left_out_with_a_warning(
    applier: FeedApplier,
    database: Database,
    old: bytes,
    new: bytes,
    field: str,
    sequence: int,
    kept: str,
) -> None:
    assert old in NEWBORN
    receipt = applier.receive(NEWBORN.replace(old, new))
    assert receipt.code == AckCode.AA and receipt.error is None
    [warning] = receipt.warnings
    assert (warning.field, warning.sequence) == (field, sequence)
    segment, position = field.split("-")
    assert f"ERR|{segment}^{sequence}^{position}^102".encode() in receipt.ack
    assert b"|W|" in receipt.ack and b"121111" not in receipt.ack and b"luis@" not in receipt.ack
    with database.read_session() as session:
        guardians = session.exec(select(Guardian).order_by(col(Guardian.id))).all()
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.patient")).one()
        assert session.exec(select(Patient)).one().chart_id == "MRN00123"
    stored = {"email": guardians[sequence - 1].email, "phone": guardians[sequence - 1].phone}
    left_out = "phone" if kept == "email" else "email"
    assert stored[kept] is not None and stored[left_out] is None
    assert json.loads(audit.details)["left_out"] == [field]


def test_a_merge_of_unknown_charts_is_aa_and_changes_nothing(
    applier: FeedApplier, database: Database
) -> None:
    assert applier.receive(fixture_bytes("adt_a40_merge_v25.hl7")).code == AckCode.AA
    with database.read_session() as session:
        assert session.exec(select(AuditEvent)).all() == []


def test_renames_reach_this_process_at_once_and_other_replicas_soon(
    applier: FeedApplier,
    database: Database,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replica = Database(database_url)  # another process on the same database: its own cache
    try:
        assert applier.receive(NEWBORN).code == AckCode.AA
        for db in (database, replica):
            with db.read_session() as session:
                assert "quintanilla" not in name_keys(session).last.counts
        renamed = RENAME.replace(b"RIVERA^SOFIA", b"QUINTANILLA^SOFIA")
        assert applier.receive(renamed).code == AckCode.AA

        monkeypatch.setattr(keys_module, "RENAME_SCAN_SECONDS", 3600.0)
        with database.read_session() as session:
            assert "quintanilla" in name_keys(session).last.counts  # no scan: added at commit
        with replica.read_session() as session:
            assert "quintanilla" not in name_keys(session).last.counts  # not scanned yet
        # the scan's interval has passed (5 s) and the replica's next look at the newest ids
        # comes (every second in the background: SPEC §8 gives a replica 10 s)
        monkeypatch.setattr(keys_module, "RENAME_SCAN_SECONDS", 0.0)
        keys_module.refresh_name_keys(replica)
        with replica.read_session() as session:
            assert "quintanilla" in name_keys(session).last.counts  # the marker moved
    finally:
        replica.dispose()


def test_an_s13_moves_the_appointment_and_an_s26_marks_it_no_show(
    applier: FeedApplier, database: Database
) -> None:
    booked = fixture_bytes("siu_s12_v26.hl7")
    assert applier.receive(NEWBORN).code == AckCode.AA
    assert applier.receive(booked).code == AckCode.AA
    moved = (
        booked.replace(b"SIU^S12", b"SIU^S13")
        .replace(b"EP001200", b"EP001300")
        .replace(b"20250320093000-0400", b"20250321140000+0000")  # 10:00 in New York
    )
    assert applier.receive(moved).code == AckCode.AA
    with database.read_session() as session:
        (visit,) = session.exec(select(Appointment)).all()
    assert visit.starts_at == datetime(2025, 3, 21, 10, 0) and visit.status == "booked"
    no_show = booked.replace(b"SIU^S12", b"SIU^S26").replace(b"EP001200", b"EP002600")
    assert applier.receive(no_show).code == AckCode.AA
    with database.read_session() as session:
        (visit,) = session.exec(select(Appointment)).all()
    assert visit.status == "no-show"
    assert visit.starts_at == datetime(2025, 3, 20, 9, 30)  # the S26 repeated the old time


def test_a_supervisor_approved_name_is_kept_when_the_ehr_still_has_the_placeholder(
    applier: FeedApplier, database: Database
) -> None:
    assert applier.receive(NEWBORN).code == AckCode.AA
    with database.transaction() as session:
        baby = session.exec(select(Patient)).one()
        baby.first_name, baby.first_key, baby.name_verified = "Sofia", "sofia", True
    again = NEWBORN.replace(b"EP000101", b"EP000103").replace(b"|F|||12 ELM", b"|U|||12 ELM")
    assert applier.receive(again).code == AckCode.AA
    with database.read_session() as session:
        baby = session.exec(select(Patient)).one()
        audit = session.exec(select(AuditEvent).where(AuditEvent.action == "feed.patient")).all()
    assert (baby.first_name, baby.name_verified, baby.sex) == ("Sofia", True, "U")
    assert "kept the approved name" in audit[-1].details


def _adt(control_id: str, trigger: str, *segments: str) -> bytes:
    msh = "MSH|^~\\&|SPRUCEEHR|SPRUCE|PINBOT|SPRUCE|20251201090000"
    msh += f"||ADT^{trigger}|{control_id}|P|2.5.1"
    return "\r".join((msh, f"EVN|{trigger}", *segments)).encode() + b"\r"


def _pid(chart: str, middle: str = "") -> str:
    return f"PID|1||{chart}^^^SPRUCE^MR||LINDQVIST^MAJA^{middle}||20200202|F||||||||||CH-ACCT-1"


def test_every_message_under_a_merged_away_chart_id_reaches_the_final_survivor(
    applier: FeedApplier, database: Database
) -> None:
    """C1 merged into C2, then C2 into C3: C1 and C2 mean C3 from then on, for an update
    (A31) and as an A40's survivor; the merged-away records are left as they were."""
    for n, chart in enumerate(("C1", "C2", "C3", "C4")):
        assert applier.receive(_adt(f"R{n}", "A04", _pid(chart))).code == AckCode.AA
    for n, (kept, gone) in enumerate((("C2", "C1"), ("C3", "C2"))):
        merge = _adt(f"M{n}", "A40", _pid(kept), f"MRG|{gone}^^^SPRUCE^MR")
        assert applier.receive(merge).code == AckCode.AA

    assert applier.receive(_adt("U1", "A31", _pid("C1", middle="ELIN"))).code == AckCode.AA
    onto_old_id = _adt("M2", "A40", _pid("C1"), "MRG|C4^^^SPRUCE^MR")
    assert applier.receive(onto_old_id).code == AckCode.AA

    with database.read_session() as session:
        charts = {p.chart_id: p for p in session.exec(select(Patient))}
    survivor = charts["C3"].id
    assert {chart: p.middle_name for chart, p in charts.items()} == {
        "C1": "", "C2": "", "C3": "ELIN", "C4": ""
    }  # fmt: skip
    assert {chart: p.merged_into_id for chart, p in charts.items()} == {
        "C1": survivor, "C2": survivor, "C3": None, "C4": survivor
    }  # fmt: skip
