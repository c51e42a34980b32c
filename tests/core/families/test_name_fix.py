"""Name-fix service (SPEC §1.2, §5) on SQLite and PostgreSQL: requests and their validation,
supervisor-only first-wins decisions, and what a families import does to requests and to
approved names. Records are synthetic."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.db import Database
from bot.delivery.notices import from_payload
from bot.errors import AlreadyDecided, NotAllowed, NotFound, PinbotError, ValidationFailed
from bot.families import name_fix
from bot.families.name_fix import ConfirmedBy, Decision, NameFixField, NameFixRequest
from bot.families.threads import record_card
from bot.importing.importer import import_families
from handlers.notices import render_notice
from models import AuditEvent, NameFix, NameFixStatus, OutgoingWork, Patient
from tests.support.factories import make_family, make_patient
from tests.support.paths import DATA_DIR

CHANNEL, CARD_TS, MESSAGE_TS = "C0FRONTDESK", "1700000000.000100", "1700000000.000200"
STAFF, BOSS, OTHER_BOSS = "U0STAFF01", "U0SUPER01", "U0SUPER02"
FAMILIES_CSV = DATA_DIR / "families_good.csv"


@pytest.fixture
def ids(database: Database) -> dict[str, int]:
    """The Quillfeathers: Ava (named) and a newborn "Baby Girl" (NB), with a family card."""
    with database.transaction() as session:
        family = make_family(session, "QF-2001")
        ava = make_patient(session, family, "Ava", date(2019, 3, 2), last="Quillfeather")
        baby = make_patient(
            session, family, "Baby Girl", date(2026, 11, 10), last="Quillfeather", name_type="NB"
        )
        other = make_family(session, "ZZ-9")
        record_card(
            session,
            family_id=family.id or 0,
            channel_id=CHANNEL,
            thread_ts=CARD_TS,
            posted_by=STAFF,
        )
        record_card(
            session,
            family_id=other.id or 0,
            channel_id=CHANNEL,
            thread_ts="1700000000.009900",
            posted_by=STAFF,
        )
        return {
            "family": family.id or 0,
            "ava": ava.id or 0,
            "baby": baby.id or 0,
            "other": other.id or 0,
        }


def a_request(ids: dict[str, int], **changes: Any) -> NameFixRequest:
    base = NameFixRequest(
        family_id=ids["family"],
        patient_id=ids["baby"],
        first="Wren",
        middle="",
        last="Quillfeather",
        confirmed_by=ConfirmedBy.BIRTH_CERTIFICATE,
        note="seen today",
        requested_by=STAFF,
        channel_id=CHANNEL,
        thread_ts=CARD_TS,
    )
    return replace(base, **changes)


def requested(database: Database, ids: dict[str, int], **changes: Any) -> int:
    with database.transaction() as session:
        fix = name_fix.request_name_fix(session, a_request(ids, **changes))
        name_fix.record_message(session, name_fix_id=fix.id, message_ts=MESSAGE_TS)
    return fix.id


def decided(
    database: Database,
    fix_id: int,
    decision: Decision = Decision.APPROVE,
    *,
    by: str = BOSS,
    supervisor: bool = True,
    reason: str = "",
    message_ts: str = MESSAGE_TS,
) -> name_fix.NameFixRecord:
    with database.transaction() as session:
        return name_fix.decide(
            session,
            name_fix_id=fix_id,
            decision=decision,
            decided_by=by,
            is_supervisor=supervisor,
            channel_id=CHANNEL,
            message_ts=message_ts,
            reason=reason,
        )


def count(database: Database, model: type[Any]) -> int:
    with database.read_session() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def fix_row(database: Database, fix_id: int) -> NameFix:
    with database.read_session() as session:
        fix = session.get(NameFix, fix_id)
        assert fix is not None
        return fix


def patient_row(database: Database, patient_id: int) -> Patient:
    with database.read_session() as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        return patient


# --------------------------------------------------------------------------- requesting


def test_a_request_is_recorded_pending_with_its_thread(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids)

    fix = fix_row(database, fix_id)
    assert (fix.status, fix.proposed_first, fix.proposed_last, fix.requested_by) == (
        NameFixStatus.PENDING,
        "Wren",
        "Quillfeather",
        STAFF,
    )
    assert (fix.channel_id, fix.thread_ts, fix.message_ts) == (CHANNEL, CARD_TS, MESSAGE_TS)
    # The dialog now refuses a second request for the child.
    with database.read_session() as session, pytest.raises(PinbotError, match="already waiting"):
        name_fix.fixable_child(
            session,
            family_id=ids["family"],
            patient_id=ids["baby"],
            channel_id=CHANNEL,
            thread_ts=CARD_TS,
        )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"first": "  "}, NameFixField.FIRST, "Enter the child's first name"),
        ({"last": ""}, NameFixField.LAST, "Enter the child's last name"),
        ({"first": "W" * 101}, NameFixField.FIRST, "longer than 100"),
        ({"middle": "R" * 101}, NameFixField.MIDDLE, "longer than 100"),
        ({"first": "Wr\x00en"}, NameFixField.FIRST, "control characters"),
        ({"last": "Quill\u202efeather"}, NameFixField.LAST, "control characters"),
        ({"first": "123"}, NameFixField.FIRST, "needs letters"),
        ({"first": "Baby Girl 2"}, NameFixField.FIRST, "still looks unofficial"),
        ({"middle": "Baby"}, NameFixField.MIDDLE, "still looks unofficial"),
        ({"last": "Twin"}, NameFixField.LAST, "still looks unofficial"),
        ({"confirmed_by": "a hunch"}, NameFixField.CONFIRMED_BY, "how the name was confirmed"),
        ({"note": "n" * 501}, NameFixField.NOTE, "longer than 500"),
    ],
)
def test_bad_input_is_refused_field_by_field_and_writes_nothing(
    database: Database,
    ids: dict[str, int],
    changes: dict[str, str],
    field: NameFixField,
    message: str,
) -> None:
    with pytest.raises(ValidationFailed) as raised, database.transaction() as session:
        name_fix.request_name_fix(session, a_request(ids, **changes))

    assert set(raised.value.errors) == {field} and message in raised.value.errors[field]
    assert count(database, NameFix) == 0 and count(database, AuditEvent) == 2  # the two cards


def test_the_name_on_file_unchanged_asks_to_confirm_a_false_flag(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids, first="Baby Girl")

    fix = fix_row(database, fix_id)
    assert (fix.proposed_first, fix.status) == ("Baby Girl", NameFixStatus.PENDING)


def test_requests_for_the_wrong_child_family_or_thread_are_refused(
    database: Database, ids: dict[str, int]
) -> None:
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"patient_id": ids["ava"]}, PinbotError, "no longer looks unofficial"),
        ({"family_id": ids["other"]}, NotFound, "no longer in this family"),
        ({"patient_id": 999_999}, NotFound, "no longer in this family"),
        ({"thread_ts": "1700000000.009900"}, NotAllowed, "doesn't belong to this family"),
        ({"channel_id": None}, PinbotError, "from the family card"),
    ]
    for changes, error, message in cases:
        with pytest.raises(error, match=message), database.transaction() as session:
            name_fix.request_name_fix(session, a_request(ids, **changes))
    assert count(database, NameFix) == 0


def test_a_chart_the_ehr_merged_away_gets_no_request(
    database: Database, ids: dict[str, int]
) -> None:
    """The card posted before an A40 still shows the merged-away newborn's button: a fix
    asked there would wait on a record staff no longer see (nor the lists, nor the digest)."""
    with database.transaction() as session:
        baby = session.get(Patient, ids["baby"])
        assert baby is not None
        baby.merged_into_id = ids["ava"]
    with pytest.raises(NotFound, match="merged this chart"), database.transaction() as session:
        name_fix.request_name_fix(session, a_request(ids))
    assert count(database, NameFix) == 0


def test_an_unposted_request_is_withdrawn_and_no_longer_blocks(
    database: Database, ids: dict[str, int]
) -> None:
    with database.transaction() as session:
        fix = name_fix.request_name_fix(session, a_request(ids))
    with database.transaction() as session:
        name_fix.withdraw_unposted(session, name_fix_id=fix.id)

    assert fix_row(database, fix.id).status == NameFixStatus.CLOSED
    assert requested(database, ids) != fix.id


# --------------------------------------------------------------------------- deciding


def test_approval_renames_verifies_and_audits_old_and_new_name(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids, middle="Rose")

    view = decided(database, fix_id)

    baby = patient_row(database, ids["baby"])
    assert (baby.first_name, baby.middle_name, baby.last_name) == ("Wren", "Rose", "Quillfeather")
    assert (baby.first_key, baby.last_key, baby.name_verified) == ("wren", "quillfeather", True)
    fix = fix_row(database, fix_id)
    assert (fix.status, fix.decided_by) == (NameFixStatus.APPROVED, BOSS)
    assert fix.decided_at is not None
    assert (view.name_on_file, view.proposed_name) == (
        "Baby Girl Quillfeather",
        "Wren Rose Quillfeather",
    )
    with database.read_session() as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "name_fix.approved")
        ).one()
    details = json.loads(event.details)
    assert (event.actor, event.patient_id) == (BOSS, ids["baby"])
    assert (details["old_name"], details["new_name"]) == (
        "Baby Girl Quillfeather",
        "Wren Rose Quillfeather",
    )


def test_confirming_the_real_name_verifies_without_renaming(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids)

    decided(database, fix_id, Decision.CONFIRM)

    baby = patient_row(database, ids["baby"])
    assert (baby.first_name, baby.name_verified) == ("Baby Girl", True)
    assert fix_row(database, fix_id).status == NameFixStatus.CONFIRMED


def test_rejection_needs_a_reason_and_keeps_the_record(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids)
    with pytest.raises(ValidationFailed) as raised:
        decided(database, fix_id, Decision.REJECT, reason=" \x00 ")
    assert set(raised.value.errors) == {NameFixField.REASON}
    assert fix_row(database, fix_id).status == NameFixStatus.PENDING

    view = decided(database, fix_id, Decision.REJECT, reason="Spelling differs from the BC")

    fix = fix_row(database, fix_id)
    assert (fix.status, fix.decision_note) == (
        NameFixStatus.REJECTED,
        "Spelling differs from the BC",
    )
    assert view.decision_note == fix.decision_note
    baby = patient_row(database, ids["baby"])
    assert (baby.first_name, baby.name_verified) == ("Baby Girl", False)


@pytest.mark.parametrize(
    ("by", "supervisor", "message"),
    [
        (STAFF, True, "You asked for this name fix"),  # the requester, even a supervisor
        ("U0NOBODY1", False, "Only a supervisor"),
    ],
)
def test_only_a_supervisor_who_did_not_ask_decides(
    database: Database, ids: dict[str, int], by: str, supervisor: bool, message: str
) -> None:
    fix_id = requested(database, ids)
    for decision in Decision:
        with pytest.raises(NotAllowed, match=message):
            decided(database, fix_id, decision, by=by, supervisor=supervisor, reason="no")

    assert fix_row(database, fix_id).status == NameFixStatus.PENDING
    assert patient_row(database, ids["baby"]).name_verified is False


def test_a_stale_button_gets_who_decided_and_changes_nothing(
    database: Database, ids: dict[str, int]
) -> None:
    fix_id = requested(database, ids)
    decided(database, fix_id)

    with pytest.raises(AlreadyDecided, match="already approved") as raised:
        decided(database, fix_id, Decision.REJECT, by=OTHER_BOSS, reason="late")
    assert raised.value.decided_by == BOSS
    with database.read_session() as session, pytest.raises(AlreadyDecided):
        name_fix.check_decider(
            session,
            name_fix_id=fix_id,
            user_id=OTHER_BOSS,
            is_supervisor=True,
            channel_id=CHANNEL,
            message_ts=MESSAGE_TS,
        )
    fix = fix_row(database, fix_id)
    assert (fix.status, fix.decided_by) == (NameFixStatus.APPROVED, BOSS)


def test_tampered_ids_are_refused(database: Database, ids: dict[str, int]) -> None:
    fix_id = requested(database, ids)

    with pytest.raises(NotFound):
        decided(database, 424_242)
    with pytest.raises(NotAllowed, match="doesn't belong"):
        decided(database, fix_id, message_ts="1700000000.777700")
    assert fix_row(database, fix_id).status == NameFixStatus.PENDING


def test_the_conditional_update_decides_even_after_a_stale_read(
    database: Database, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard is the UPDATE ... WHERE status = 'pending', not the earlier read: a decision
    whose read still saw "pending" loses to one committed meanwhile."""
    fix_id = requested(database, ids)
    with database.read_session() as session:
        stale = session.exec(
            select(NameFix, Patient).join(Patient).where(NameFix.id == fix_id)
        ).one()
    decided(database, fix_id, by=OTHER_BOSS)
    monkeypatch.setattr(name_fix.decisions, "_checked", lambda session, **_: stale)

    with pytest.raises(AlreadyDecided, match="already approved") as raised:
        decided(database, fix_id, Decision.REJECT, reason="too late")
    assert raised.value.decided_by == OTHER_BOSS
    assert fix_row(database, fix_id).decided_by == OTHER_BOSS


def test_two_supervisors_at_once_make_one_decision(database: Database, ids: dict[str, int]) -> None:
    fix_id = requested(database, ids)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def click(user: str, decision: Decision) -> None:
        start.wait()
        try:
            outcomes[user] = decided(database, fix_id, decision, by=user, reason="no")
        except AlreadyDecided as error:
            outcomes[user] = error

    workers = [
        threading.Thread(target=click, args=(BOSS, Decision.APPROVE)),
        threading.Thread(target=click, args=(OTHER_BOSS, Decision.REJECT)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)

    fix = fix_row(database, fix_id)
    losers = [u for u, o in outcomes.items() if isinstance(o, AlreadyDecided)]
    assert len(outcomes) == 2 and len(losers) == 1 and fix.decided_by not in losers
    loser = outcomes[losers[0]]
    assert isinstance(loser, AlreadyDecided) and loser.decided_by == fix.decided_by
    with database.read_session() as session:
        decisions = session.exec(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.in_(["name_fix.approved", "name_fix.rejected"]))
        ).one()  # type: ignore[attr-defined]
    assert decisions == 1


def test_refusals_are_audited(database: Database, ids: dict[str, int]) -> None:
    fix_id = requested(database, ids)
    with database.transaction() as session:
        name_fix.record_refusal(session, name_fix_id=fix_id, user_id="U0NOBODY1", why="NotAllowed")
    with database.read_session() as session:
        event = session.exec(
            select(AuditEvent).where(AuditEvent.action == "name_fix.refused")
        ).one()
    assert (event.actor, event.family_id) == ("U0NOBODY1", ids["family"])


# --------------------------------------------------------------------------- imports


def _pending_for_newborn(database: Database) -> tuple[int, int]:
    """Import the sample practice and request a fix for its "Baby Girl" (chart P2001)."""
    import_families(database, FAMILIES_CSV)
    with database.transaction() as session:
        baby = session.exec(select(Patient).where(Patient.chart_id == "P2001")).one()
        record_card(
            session,
            family_id=baby.family_id,
            channel_id=CHANNEL,
            thread_ts=CARD_TS,
            posted_by=STAFF,
        )
        baby_ids = {"family": baby.family_id, "baby": baby.id or 0}
    return requested(database, baby_ids, last="Sampleton"), baby_ids["baby"]


def _families_csv(first: str, name_type: str) -> io.StringIO:
    text = FAMILIES_CSV.read_text(encoding="utf-8")
    old = "A200,P2001,Baby Girl,,Sampleton,2026-11-20,F,NB,"
    assert old in text
    return io.StringIO(
        text.replace(old, f"A200,P2001,{first},,Sampleton,2026-11-20,F,{name_type},")
    )


def test_an_import_with_the_real_name_closes_the_request_with_a_note(database: Database) -> None:
    fix_id, baby_id = _pending_for_newborn(database)

    report = import_families(database, _families_csv("Juniper", ""))

    fix = fix_row(database, fix_id)
    assert (fix.status, fix.decided_by) == (NameFixStatus.CLOSED, "import")
    assert report.closed_name_fixes == 1
    assert "  1 pending name fix closed: the EHR now has the child's real name" in (
        report.summary_lines()
    )
    with database.read_session() as session:
        work = session.exec(select(OutgoingWork)).one()
    payload = json.loads(work.payload)
    assert (payload["channel_id"], payload["thread_ts"]) == (CHANNEL, CARD_TS)
    text = render_notice(from_payload(payload["notice"]))["text"]  # as the thread will read it
    assert "Juniper Sampleton" in text and f"<@{STAFF}>" in text
    baby = patient_row(database, baby_id)
    assert (baby.first_name, baby.name_verified) == ("Juniper", False)  # nothing else changed

    with pytest.raises(AlreadyDecided, match="closed"):
        decided(database, fix_id)


def test_an_import_with_another_placeholder_leaves_the_request_pending(database: Database) -> None:
    fix_id, _ = _pending_for_newborn(database)

    report = import_families(database, _families_csv("Baby Girl A", "NB"))

    assert report.closed_name_fixes == 0 and report.renamed_patient_ids
    assert fix_row(database, fix_id).status == NameFixStatus.PENDING
    assert count(database, OutgoingWork) == 0


def test_an_import_keeps_an_approved_name_over_the_ehr_placeholder(database: Database) -> None:
    fix_id, baby_id = _pending_for_newborn(database)
    decided(database, fix_id)

    report = import_families(database, FAMILIES_CSV)  # the EHR still says "Baby Girl" (NB)

    baby = patient_row(database, baby_id)
    assert (baby.first_name, baby.first_key, baby.name_verified) == ("Wren", "wren", True)
    assert report.renamed_patient_ids == []
    assert report.warnings == [
        "EHR still has a temporary name for chart P2001; kept the approved name — update the EHR"
    ]
    assert any(
        "warning: EHR still has a temporary name for chart P2001" in line
        for line in report.summary_lines()
    )

    # The EHR catching up with the approved name changes nothing and warns no more.
    report = import_families(database, _families_csv("Wren", ""))
    assert report.warnings == [] and patient_row(database, baby_id).name_verified is True
