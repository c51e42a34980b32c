"""`pinbot run` with HL7_PORT set, as a real process: a burst of messages over MLLP, SIGTERM in
the middle of it, and afterwards every message that was answered AA is in the database and
none is half applied (SPEC §8: the listener stops first, the process exits cleanly)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

from hl7.client import MLLPClient
from sqlalchemy import func
from sqlmodel import col, select

from bot.db import Database
from models import FeedMessage, Guardian, Patient
from tests.core.feed.support import msa, send
from tests.flows.feed_support import synthetic_a04
from tests.flows.test_run_process import _wait_until_healthy, pinbot_run
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import stack_env

BURST = 400
ROOT = Path(__file__).resolve().parents[2]  # this checkout's code, whatever is installed


def _wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_sigterm_during_a_burst_loses_no_acknowledged_message(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    port, hl7_port = free_port(), free_port()
    env = stack_env(database_url, fake_slack, smtp_server, PORT=str(port), HL7_PORT=str(hl7_port))
    env["PYTHONPATH"] = str(ROOT)
    acknowledged: list[str] = []
    with pinbot_run(env, tmp_path) as process:
        _wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
        _wait_for_port(hl7_port)

        def burst() -> None:
            client = MLLPClient("127.0.0.1", hl7_port)
            client.socket.settimeout(10)
            try:
                for number in range(BURST):
                    reply = send(client, synthetic_a04(number))
                    if not reply:
                        return  # the listener closed the connection: the rest gets no ACK
                    code, control_id = msa(reply)
                    assert code == "AA", (code, control_id)
                    acknowledged.append(control_id)
            except OSError:
                pass  # closed while sending
            finally:
                client.close()

        sender = threading.Thread(target=burst)
        sender.start()
        while len(acknowledged) < 30 and sender.is_alive():
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        sender.join(30)
        assert process.wait(timeout=20) == 0
        output = process.stdout.read() if process.stdout else ""

    assert 30 <= len(acknowledged) < BURST, len(acknowledged)
    assert "SIGTERM" in output and "Traceback" not in output
    database = Database(database_url)
    try:
        with database.read_session() as session:
            applied = set(
                session.exec(select(FeedMessage.control_id).where(FeedMessage.ack_code == "AA"))
            )
            patients = session.exec(select(func.count()).select_from(Patient)).one()
            guardians = session.exec(select(func.count()).select_from(Guardian)).one()
            charts = set(session.exec(select(Patient.chart_id)))
            orphans = session.exec(
                select(func.count())
                .select_from(Patient)
                .where(~col(Patient.family_id).in_(select(Guardian.family_id)))
            ).one()
    finally:
        database.dispose()
    assert set(acknowledged) <= applied  # every AA is committed
    # Nothing half applied: each logged message has its patient and guardian, and no patient
    # or guardian exists without its logged message.
    assert patients == guardians == len(applied) and orphans == 0
    assert charts == {f"MRN-B{int(c.split('-')[1]):06d}" for c in applied}
