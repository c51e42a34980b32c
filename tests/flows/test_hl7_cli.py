"""`pinbot hl7 replay`, `pinbot hl7 status` and the listener lines of `pinbot check`, run as
the installed command (SPEC §4): one line per message with its ACK code, exit 1 unless all AA,
never a name, date of birth or email on the terminal."""

from __future__ import annotations

import socket
from pathlib import Path

from sqlmodel import select

from bot.db import Database
from models import Patient
from tests.core.feed.conftest import HL7_DIR, fixture_bytes
from tests.core.runtime.test_cli import REQUIRED, pinbot
from tests.support.smtp_server import free_port

PHI = ("okafor", "rivera", "ana.rivera", "20250314", "park", "june")


def _no_phi(output: str) -> None:
    for secret in PHI:
        assert secret not in output.casefold(), secret


def test_replay_applies_a_batch_file_and_says_aa_per_message(
    database_url: str, tmp_path: Path
) -> None:
    run = pinbot(
        tmp_path,
        "hl7",
        "replay",
        str(HL7_DIR / "batch_fhs_bhs.hl7"),
        DATABASE_URL=database_url,
        **REQUIRED,
    )
    assert run.code == 0, run
    assert run.said == ["EPB-1 ADT^A28 AA", "EPB-2 ADT^A08 AA"]
    database = Database(database_url)
    with database.read_session() as session:
        charts = set(session.exec(select(Patient.chart_id)))
    database.dispose()
    assert charts == {"MRN00700", "MRN00701"}
    again = pinbot(
        tmp_path,
        "hl7",
        "replay",
        str(HL7_DIR / "batch_fhs_bhs.hl7"),
        DATABASE_URL=database_url,
        **REQUIRED,
    )
    assert again.code == 0 and again.said[0] == "EPB-1 ADT^A28 AA (already applied)"


def test_replay_exits_1_and_names_the_field_when_a_message_is_not_aa(
    database_url: str, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed.hl7"
    mixed.write_bytes(
        fixture_bytes("adt_a04_newborn_v251.hl7").replace(b"\r", b"\r\n")
        + fixture_bytes("adt_a04_missing_dob_v231.hl7")
        + b"\n"
        + fixture_bytes("oru_r01_v251.hl7")
    )
    run = pinbot(tmp_path, "hl7", "replay", str(mixed), DATABASE_URL=database_url, **REQUIRED)
    assert run.code == 1, run
    assert run.said[0] == "EP000101 ADT^A04 AA"
    assert run.said[1].startswith("ECW-5511 ADT^A04 AE PID-7: ")
    assert run.said[2].startswith("LAB-777 ORU^R01 AR MSH-9: ")
    _no_phi(run.output)

    status = pinbot(tmp_path, "hl7", "status", DATABASE_URL=database_url, **REQUIRED)
    assert status.code == 0, status
    said = "\n".join(status.said)
    assert "Listener: HL7_PORT is not set" in said and "Last message: " in said
    assert "ADT^A04    AA  1" in said and "ADT^A04    AE  1" in said and "ORU^R01    AR  1" in said
    assert "total      AA 1, AE 1, AR 1" in said
    _no_phi(status.output)


def test_check_reports_the_listener_and_whether_its_port_is_free(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {"DATABASE_URL": database_url, **REQUIRED, "HL7_PORT": str(port)}
    env["HL7_ALLOWED_SOURCES"] = "10.20.0.0/16"
    free = pinbot(tmp_path, "check", **env)
    assert f"ok  hl7: listener 127.0.0.1:{port} is free; allowed sources 10.20.0.0/16" in free.said
    with socket.create_server(("127.0.0.1", port)):
        taken = pinbot(tmp_path, "check", **env)
    line = next(line for line in taken.said if " hl7: " in line)
    assert line.startswith("FAIL hl7: can't listen on 127.0.0.1:") and taken.code == 1
