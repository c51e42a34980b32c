"""A pinbot process that dies by SIGKILL at a chosen moment, for tests/flows/test_faults.py.

    python -m tests.support.crash_worker after-commit FAMILY_ID GUARDIAN_ID PATIENT_IDS CHANNEL TS
        issues a batch through the service (its one commit), then is killed before any
        delivery: the crash between committing a batch and delivering its email.
    python -m tests.support.crash_worker after-send WORK_ID
        delivers that outgoing email, and is killed after the SMTP server accepted it but
        before the outbox recorded it: the one window where a retry sends the message again.

Configuration comes from the environment (the test passes its stack's), as for `pinbot run`.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from bot.config import load_settings
from bot.db import Database
from bot.delivery.sealing import PinCipher
from bot.delivery.worker import Outbox
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueRequest
from bot.secret import load_secret
from bot.services import Services
from handlers.notices import render_notice


def _die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after_commit(
    services: Services,
    family_id: str,
    guardian_id: str,
    patient_ids: str,
    channel_id: str,
    thread_ts: str,
) -> None:
    request = IssueRequest(
        family_id=int(family_id),
        patient_ids=tuple(int(p) for p in patient_ids.split(",")),
        recipient_guardian_id=int(guardian_id),
        emailed_patient_id=None,
        issued_by="U0STAFF01",
        idempotency_key="view:VCRASH",
        channel_id=channel_id,
        thread_ts=thread_ts,
    )
    with services.database.transaction() as session:
        issue_pins(session, request, policy=services.issue_policy(), gateway=services.gateway)
    _die()


def after_send(services: Services, work_id: str) -> None:
    services.outbox._record_success = _die  # type: ignore[method-assign]
    services.outbox.deliver(int(work_id))


def main(argv: list[str]) -> None:
    settings = load_settings(dict(os.environ))
    database = Database(settings.database_url)
    secret = load_secret(settings.key_file, settings.key_override)  # the test run's PINBOT_KEY
    services = Services(
        settings=settings,
        database=database,
        outbox=Outbox(
            database,
            settings,
            slack=None,
            render_notice=render_notice,
            pin_cipher=PinCipher(secret),
        ),
        secret=secret,
    )
    {"after-commit": after_commit, "after-send": after_send}[argv[0]](services, *argv[1:])
    raise SystemExit("still alive: the kill did not happen")


if __name__ == "__main__":
    main(sys.argv[1:])
