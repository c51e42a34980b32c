"""A pinbot process that dies by SIGKILL at a chosen moment, for tests/flows/test_faults.py.

    python -m tests.support.crash_worker after-commit FAMILY_ID GUARDIAN_ID PATIENT_IDS CHANNEL TS
        issues a batch through the service (its one commit), then is killed before any
        delivery: the crash between committing a batch and delivering its email.
    python -m tests.support.crash_worker after-send WORK_ID
        delivers that outgoing email, and is killed after the SMTP server accepted it but
        before the outbox recorded it: the one window where a retry sends the message again.
    python -m tests.support.crash_worker mid-claim WORK_ID LEASE_SECONDS HEARTBEAT_SECONDS
        claims that work with that lease and heartbeat (the test shortens both, so it need not
        wait out the production LEASE), prints "claimed", holds the claim past one lease (only
        its heartbeat keeps it) without delivering, and is killed: another worker must take it
        over.
    python -m tests.support.crash_worker before-complete WORK_ID
    python -m tests.support.crash_worker after-complete WORK_ID
        uploads that work's PIN letters to Slack and is killed just before
        files.completeUploadExternal, or after it but before the outbox recorded the upload.

Configuration comes from the environment (the test passes its stack's), as for `pinbot run`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import timedelta
from typing import Any

from bot.config import load_settings
from bot.db import Database
from bot.delivery.sealing import PinCipher
from bot.delivery.worker import Outbox
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssueRequest
from bot.secret import load_secret
from bot.services import Services
from handlers.app import make_client
from handlers.notices import render_notice
from handlers.slack_port import WebClientPort


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


def mid_claim(services: Services, work_id: str, lease: str, heartbeat: str) -> None:
    outbox = services.outbox
    outbox.lease = timedelta(seconds=float(lease))
    outbox.heartbeat = timedelta(seconds=float(heartbeat))

    def hold(_work: Any) -> bool:
        print("claimed", flush=True)
        time.sleep(outbox.lease.total_seconds() + 2)  # past one lease: the heartbeat keeps it
        _die()
        return False

    outbox._perform = hold  # type: ignore[method-assign]
    outbox.deliver(int(work_id))


def before_complete(services: Services, work_id: str) -> None:
    port = services.outbox.slack
    assert isinstance(port, WebClientPort)
    port.complete_upload = _die  # type: ignore[method-assign]
    services.outbox.deliver(int(work_id))


def after_complete(services: Services, work_id: str) -> None:
    services.outbox._record_success = _die  # type: ignore[method-assign]
    services.outbox.deliver(int(work_id))


MODES = {
    "after-commit": after_commit,
    "after-send": after_send,
    "mid-claim": mid_claim,
    "before-complete": before_complete,
    "after-complete": after_complete,
}


def main(argv: list[str]) -> None:
    settings = load_settings(dict(os.environ))
    database = Database(settings.database_url)
    secret = load_secret(settings.key_file, settings.key_override)  # the test run's PINBOT_KEY
    slack = WebClientPort(make_client(settings))
    services = Services(
        settings=settings,
        database=database,
        outbox=Outbox(
            database,
            settings,
            slack=slack,
            render_notice=render_notice,
            pin_cipher=PinCipher(secret),
        ),
        secret=secret,
    )
    MODES[argv[0]](services, *argv[1:])
    raise SystemExit("still alive: the kill did not happen")


if __name__ == "__main__":
    main(sys.argv[1:])
