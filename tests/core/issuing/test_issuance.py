"""PIN issuance as a service, on SQLite and PostgreSQL: one email per family, eligibility,
re-issue, idempotency, and the cross-family "already has an account" rule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time

import pytest
from sqlmodel import select

from bot.db import Database
from bot.delivery.sealing import PinCipher, open_pins
from bot.errors import ValidationFailed
from bot.issuing.gateway import BuiltinGateway, verify_pin
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueMode, IssuePolicy, IssueRequest
from bot.secret import Secret
from models import AuditEvent, Delivery, IssueBatch, OutgoingWork, Pin, PinStatus, WorkKind
from tests.support.factories import make_family, make_guardian, make_patient

TODAY = date(2026, 11, 25)
CIPHER = PinCipher(Secret.ephemeral())
POLICY = IssuePolicy(
    now=datetime.combine(TODAY, time(15), UTC),
    today=TODAY,
    pin_ttl_days=90,
    minor_age_limit=18,
    pin_cipher=CIPHER,
)


@pytest.fixture
def smiths(database: Database) -> dict[str, int]:
    """Three children (one a "Baby Girl"), a teenager over 18, two guardians."""
    with database.transaction() as session:
        family = make_family(session, "A1001")
        mother = make_guardian(session, family)
        father = make_guardian(session, family, "Rob", email=None, relationship="father")
        ids = {
            "family": family.id,
            "mother": mother.id,
            "father": father.id,
            "ava": make_patient(session, family, "Ava", date(2018, 3, 2)).id,
            "ben": make_patient(session, family, "Ben", date(2020, 7, 14)).id,
            "baby": make_patient(
                session, family, "Baby Girl", date(2026, 11, 1), name_type="NB"
            ).id,
            "adult": make_patient(session, family, "Cara", date(2005, 1, 9)).id,
        }
    return {k: v or 0 for k, v in ids.items()}


def _request(
    ids: dict[str, int],
    children: tuple[str, ...],
    *,
    key: str = "view:V1",
    recipient: str | None = "mother",
    emailed: str | None = None,
) -> IssueRequest:
    return IssueRequest(
        family_id=ids["family"],
        patient_ids=tuple(ids[c] for c in children),
        recipient_guardian_id=ids[recipient] if recipient else None,
        emailed_patient_id=ids[emailed] if emailed else None,
        issued_by="U0STAFF",
        idempotency_key=key,
        channel_id="C0FRONT",
        thread_ts="1700000000.000100",
    )


def _issue(database: Database, request: IssueRequest):  # type: ignore[no-untyped-def]
    with database.transaction() as session:
        return issue_pins(session, request, policy=POLICY, gateway=BuiltinGateway())


def _work(database: Database, kind: WorkKind) -> list[dict]:
    """The payloads as the worker reads them: PINs opened."""
    with database.read_session() as session:
        rows = session.exec(select(OutgoingWork).where(OutgoingWork.kind == kind)).all()
        return [open_pins(json.loads(r.payload), CIPHER, r.dedupe_key) for r in rows]


def test_one_welcome_email_for_the_oldest_child_the_rest_printed(database, smiths) -> None:
    result = _issue(database, _request(smiths, ("ben", "ava")))

    assert result.created and result.mode == IssueMode.WELCOME
    assert result.emailed_patient_id == smiths["ava"]  # the oldest selected by default
    with database.read_session() as session:
        pins = {p.patient_id: p for p in session.exec(select(Pin)).all()}
    assert pins[smiths["ava"]].delivery == Delivery.EMAILED
    assert pins[smiths["ben"]].delivery == Delivery.PRINTED
    emails = _work(database, WorkKind.WELCOME_EMAIL)
    assert len(emails) == 1 and emails[0]["child_first_name"] == "Ava"
    assert verify_pin(emails[0]["pin"], pins[smiths["ava"]].pin_hash)
    letters = _work(database, WorkKind.LETTERS_UPLOAD)[0]["letters"]
    assert [item["case"] for item in letters] == ["first_child", "sibling"]
    assert letters[0]["pin"] == emails[0]["pin"]
    assert letters[0]["emailed_to"] and not letters[1]["emailed_to"]


def test_chosen_emailed_child_is_honoured(database, smiths) -> None:
    result = _issue(database, _request(smiths, ("ava", "ben"), emailed="ben"))
    assert result.emailed_patient_id == smiths["ben"]
    assert _work(database, WorkKind.WELCOME_EMAIL)[0]["child_first_name"] == "Ben"


@pytest.mark.parametrize("child", ["baby", "adult"])
def test_ineligible_children_are_refused_and_nothing_is_written(database, smiths, child) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _issue(database, _request(smiths, ("ava", child)))
    assert "children" in refused.value.errors
    with database.read_session() as session:
        assert session.exec(select(Pin)).all() == []
        assert session.exec(select(IssueBatch)).all() == []


def test_guardian_without_email_cannot_receive_the_welcome_email(database, smiths) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _issue(database, _request(smiths, ("ava",), recipient="father"))
    assert "recipient" in refused.value.errors


def test_no_email_prints_everything(database, smiths) -> None:
    result = _issue(database, _request(smiths, ("ava", "ben"), recipient=None))
    assert result.mode == IssueMode.PRINT_ONLY
    assert _work(database, WorkKind.WELCOME_EMAIL) == []
    letters = _work(database, WorkKind.LETTERS_UPLOAD)[0]["letters"]
    assert [item["case"] for item in letters] == ["first_child", "sibling"]


def test_guardian_with_portal_account_gets_no_email(database, smiths) -> None:
    with database.transaction() as session:
        from models import Guardian

        guardian = session.get(Guardian, smiths["mother"])
        assert guardian is not None
        guardian.has_portal_account = True
    result = _issue(database, _request(smiths, ("ava", "ben")))
    assert result.mode == IssueMode.ADD_CHILD and result.account_note
    assert _work(database, WorkKind.WELCOME_EMAIL) == []
    letters = _work(database, WorkKind.LETTERS_UPLOAD)[0]["letters"]
    assert {item["case"] for item in letters} == {"has_account"}


def test_same_email_in_another_family_counts_as_an_account(database, smiths) -> None:
    _issue(database, _request(smiths, ("ava",)))
    with database.transaction() as session:
        other = make_family(session, "B2002")
        guardian = make_guardian(
            session, other, "Dana", "Otherhouse", email="Dana.Testwood@Example.com"
        )
        child = make_patient(session, other, "Eli", date(2022, 5, 5), last="Otherhouse")
        request = IssueRequest(
            family_id=other.id or 0,
            patient_ids=(child.id or 0,),
            recipient_guardian_id=guardian.id,
            emailed_patient_id=None,
            issued_by="U0STAFF",
            idempotency_key="view:V2",
            channel_id="C0FRONT",
            thread_ts="1.2",
        )
    result = _issue(database, request)
    assert result.mode == IssueMode.ADD_CHILD
    assert "already went to this address" in (result.account_note or "")
    assert len(_work(database, WorkKind.WELCOME_EMAIL)) == 1  # only the first family's


def test_reissue_revokes_the_previous_pin(database, smiths) -> None:
    _issue(database, _request(smiths, ("ava", "ben"), recipient=None))
    second = _issue(database, _request(smiths, ("ben",), key="view:V2", recipient=None))
    assert second.replaced == 1
    with database.read_session() as session:
        bens = session.exec(
            select(Pin).where(Pin.patient_id == smiths["ben"]).order_by(Pin.id)
        ).all()  # type: ignore[arg-type]
    assert [p.status for p in bens] == [PinStatus.REVOKED, PinStatus.ACTIVE]


def test_reissue_cancels_an_undelivered_welcome_email(database, smiths) -> None:
    _issue(database, _request(smiths, ("ava",)))
    _issue(database, _request(smiths, ("ava",), key="view:V2"))
    with database.read_session() as session:
        emails = session.exec(
            select(OutgoingWork)
            .where(OutgoingWork.kind == WorkKind.WELCOME_EMAIL)
            .order_by(OutgoingWork.id)
        ).all()  # type: ignore[arg-type]
    assert [e.status for e in emails] == ["failed", "pending"]
    assert json.loads(emails[0].payload)["pin"] is None  # the superseded PIN is erased


def test_same_idempotency_key_returns_the_first_batch(database, smiths) -> None:
    first = _issue(database, _request(smiths, ("ava", "ben")))
    again = _issue(database, _request(smiths, ("ava", "ben")))
    assert not again.created and again.batch_id == first.batch_id
    with database.read_session() as session:
        assert len(session.exec(select(Pin)).all()) == 2
    assert len(_work(database, WorkKind.WELCOME_EMAIL)) == 1


def test_dialog_opened_before_someone_else_issued_is_refused(database, smiths) -> None:
    stale = IssueRequest(
        **{**_request(smiths, ("ava",), key="view:V9").__dict__, "seen_active_pin_ids": ()}
    )
    _issue(database, _request(smiths, ("ava",), key="view:V1"))
    with pytest.raises(ValidationFailed, match="while this dialog was open"):
        _issue(database, stale)


def test_issuance_is_audited_without_pins(database, smiths) -> None:
    _issue(database, _request(smiths, ("ava",)))
    emailed_pin = _work(database, WorkKind.WELCOME_EMAIL)[0]["pin"]
    with database.read_session() as session:
        events = session.exec(select(AuditEvent)).all()
    assert any(e.action == "pins.issued" for e in events)
    assert all(emailed_pin not in e.details for e in events)


def test_two_staff_issuing_for_one_family_at_once_yield_one_batch(database, smiths) -> None:
    import threading

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(key: str) -> None:
        request = IssueRequest(
            **{**_request(smiths, ("ava", "ben"), key=key).__dict__, "seen_active_pin_ids": ()}
        )
        barrier.wait()
        try:
            _issue(database, request)
            outcomes.append("issued")
        except ValidationFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(f"view:V{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["issued", "refused"]
    with database.read_session() as session:
        assert len(session.exec(select(IssueBatch)).all()) == 1
        assert len(session.exec(select(Pin)).all()) == 2
    assert len(_work(database, WorkKind.WELCOME_EMAIL)) == 1


def test_a_new_pin_never_repeats_a_lookup_on_record(
    database: Database, smiths: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal API finds a PIN by its lookup alone: a second PIN with the same one would
    answer for the wrong child. A repeated draw (forced here) is drawn again."""
    gateway = BuiltinGateway(lookup_key=b"k" * 32)
    with database.transaction() as session:
        issue_pins(session, _request(smiths, ("ava",), key="a"), policy=POLICY, gateway=gateway)
        first = session.exec(select(Pin)).one()
    draws = iter(["ZZZZ-ZZZZ", "ZZZZ-ZZZZ", "YYYY-YYYY"])
    monkeypatch.setattr("bot.issuing.gateway.generate_pin", lambda: next(draws))
    with database.transaction() as session:
        issue_pins(session, _request(smiths, ("ben",), key="b"), policy=POLICY, gateway=gateway)
        issue_pins(session, _request(smiths, ("ava",), key="c"), policy=POLICY, gateway=gateway)
        lookups = session.exec(select(Pin.lookup)).all()
    assert len(lookups) == len(set(lookups)) == 3
    assert first.lookup in lookups
    assert next(draws, None) is None  # Ben got ZZZZ-ZZZZ; Ava's draw of it was drawn again
