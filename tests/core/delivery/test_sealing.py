"""PINs in undelivered work are sealed (SPEC §12): never written in plaintext, opened only to
deliver, bound to their row and destination; work queued in plaintext by an older version
still delivers and is sealed in place at start-up."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import select

from bot.delivery.outbox import seal_legacy_payloads
from bot.delivery.sealing import (
    PinCipher,
    PinUnreadable,
    binding_of,
    is_sealed,
    open_pins,
    pins_in,
    seal_pins,
)
from bot.issuing.gateway import verify_pin
from bot.runtime.process import start_background
from bot.secret import Secret
from models import OutgoingWork, Pin, WorkKind, WorkStatus
from tests.core.delivery.test_delivery import THREAD, _issue_for_two
from tests.support.stack import Stack, eventually

PIN = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-?[0-9A-HJKMNP-TV-Z]{4}\b")
LETTERS = {
    "channel_id": "C0FRONT",
    "letters": [{"patient_id": 1, "pin": "ABCD-2345"}, {"patient_id": 2, "pin": "WXYZ-6789"}],
}


def test_a_sealed_pin_opens_only_for_its_row_place_and_destination() -> None:
    cipher = PinCipher(Secret.ephemeral())
    sealed = seal_pins(LETTERS, cipher, "letters:1")
    assert all(is_sealed(pin) for pin in pins_in(sealed))
    assert "ABCD" not in json.dumps(sealed) and "2345" not in json.dumps(sealed)
    assert open_pins(sealed, cipher, "letters:1") == LETTERS

    with pytest.raises(PinUnreadable):  # copied into another row
        open_pins(sealed, cipher, "letters:2")
    swapped = {**sealed, "letters": sealed["letters"][::-1]}
    with pytest.raises(PinUnreadable):  # moved to the other child's letter
        open_pins(swapped, cipher, "letters:1")
    with pytest.raises(PinUnreadable):  # the row pointed at another channel
        open_pins({**sealed, "channel_id": "C0ELSEWHERE"}, cipher, "letters:1")
    with pytest.raises(PinUnreadable):  # another secret
        open_pins(sealed, PinCipher(Secret.ephemeral()), "letters:1")
    token = sealed["letters"][0]["pin"]
    assert cipher.open(token, binding_of("letters:1", sealed, "/letters/0/pin")) == "ABCD-2345"


def test_sealing_is_fresh_each_time_and_already_sealed_pins_are_kept() -> None:
    cipher = PinCipher(Secret.ephemeral())
    first, second = seal_pins(LETTERS, cipher, "k"), seal_pins(LETTERS, cipher, "k")
    assert pins_in(first) != pins_in(second)  # a new nonce per PIN
    assert seal_pins(first, cipher, "k") == first


def _rows(stack: Stack) -> list[OutgoingWork]:
    with stack.database.read_session() as session:
        return list(
            session.exec(
                select(OutgoingWork).where(
                    OutgoingWork.kind.in_([WorkKind.WELCOME_EMAIL, WorkKind.LETTERS_UPLOAD])  # type: ignore[attr-defined]
                )
            ).all()
        )


def test_issued_pins_reach_the_database_only_sealed_and_open_to_the_issued_pins(
    stack: Stack,
) -> None:
    _issue_for_two(stack)
    rows = _rows(stack)
    assert len(rows) == 2
    for row in rows:
        assert not PIN.search(row.payload), "a PIN in plaintext in the outbox"
        assert all(is_sealed(pin) for pin in pins_in(json.loads(row.payload)))
    with stack.database.read_session() as session:
        hashes = [pin.pin_hash for pin in session.exec(select(Pin)).all()]
    letters = next(r for r in rows if r.kind == WorkKind.LETTERS_UPLOAD)
    opened = open_pins(json.loads(letters.payload), stack.services.pin_cipher, letters.dedupe_key)
    assert all(any(verify_pin(item["pin"], h) for h in hashes) for item in opened["letters"])


def _unseal_as_an_older_version_wrote_it(stack: Stack) -> None:
    with stack.database.transaction() as session:
        for row in session.exec(select(OutgoingWork)).all():
            payload = open_pins(json.loads(row.payload), stack.services.pin_cipher, row.dedupe_key)
            row.payload = json.dumps(payload)


def test_plaintext_work_from_before_the_upgrade_still_delivers(stack: Stack) -> None:
    _issue_for_two(stack)
    _unseal_as_an_older_version_wrote_it(stack)
    assert all(PIN.search(row.payload) for row in _rows(stack))
    stack.deliver()
    stack.deliver()
    email = stack.smtp.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert PIN.search(email)
    assert stack.fake_slack.uploaded_files()
    assert all(
        row.status == WorkStatus.DONE and not PIN.search(row.payload) for row in _rows(stack)
    )


def test_start_up_seals_plaintext_left_by_an_older_version_then_delivers_it(
    stack: Stack,
) -> None:
    _issue_for_two(stack)
    _unseal_as_an_older_version_wrote_it(stack)
    worker, scheduler = start_background(stack.services)  # as `pinbot run` starts
    try:
        eventually(lambda: _all_done(stack), timeout=10)
    finally:
        scheduler.shutdown(wait=False)
        worker.stop()
    assert len(stack.smtp.messages) == 1
    assert seal_legacy_payloads(stack.database, stack.services.pin_cipher) == 0


def test_start_up_sealing_leaves_nothing_in_plaintext(stack: Stack) -> None:
    _issue_for_two(stack)
    _unseal_as_an_older_version_wrote_it(stack)
    assert seal_legacy_payloads(stack.database, stack.services.pin_cipher) == 2
    for row in _rows(stack):
        assert not PIN.search(row.payload)
        assert all(is_sealed(pin) for pin in pins_in(json.loads(row.payload)))
    stack.deliver()
    stack.deliver()
    assert len(stack.smtp.messages) == 1 and stack.fake_slack.uploaded_files()


def test_pins_sealed_under_another_secret_fail_for_good_and_the_thread_is_told(
    stack: Stack,
) -> None:
    _issue_for_two(stack)
    stack.services.outbox.pin_cipher = PinCipher(Secret.ephemeral())  # the key was replaced
    stack.deliver()
    stack.deliver()
    rows = _rows(stack)
    assert all(row.status == WorkStatus.FAILED and row.attempts == 1 for row in rows)
    assert all("PINBOT_KEY" in row.last_error for row in rows)
    email = next(row for row in rows if row.kind == WorkKind.WELCOME_EMAIL)
    assert json.loads(email.payload)["pin"] is None  # erased on giving up
    notes = [a["text"] for a in stack.posted() if a.get("thread_ts") == THREAD[1]]
    assert any("could not be delivered" in n for n in notes)


def _all_done(stack: Stack) -> None:
    assert all(row.status == WorkStatus.DONE for row in _rows(stack))
