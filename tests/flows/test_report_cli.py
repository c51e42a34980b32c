"""`pinbot report adoption` as staff run it (a real process, SQLite and PostgreSQL): the table on
the terminal, the chart and CSV on request, counts only."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

from PIL import Image

from bot.db import Database
from models import IssueBatch, Pin, PinStatus, utcnow
from tests.core.runtime.test_cli import REQUIRED, pinbot
from tests.support.factories import make_family, make_guardian, make_patient

WEEK_ROW = re.compile(r"^\d{4}-W\d\d +\d+ [A-Z][a-z]{2} ")  # "2026-W37 7 Sep   ..."
PHI = ["Brindlemoor", "Oswin", "MRN4455", "2020-02-02", "02/02/2020", "oswin.b@example.org"]


def seed_recent(database: Database) -> None:
    """Three PINs relative to the real clock (the CLI has no other): 50 days ago emailed and
    registered 3 days later, 45 days ago printed and revoked, 40 days ago printed, active."""
    now = utcnow()
    with database.transaction() as session:
        family = make_family(session, "A4455")
        make_guardian(session, family, "Oswin", "Brindlemoor", email="oswin.b@example.org")
        for n, (days, delivery, status, changed) in enumerate(
            [
                (50, "emailed", PinStatus.REGISTERED, timedelta(days=3)),
                (45, "printed", PinStatus.REVOKED, timedelta(days=1)),
                (40, "printed", PinStatus.ACTIVE, None),
            ]
        ):
            child = make_patient(session, family, f"Oswin{n}", make_dob(n), last="Brindlemoor",
                                 chart=f"MRN4455{n}")  # fmt: skip
            issued = now - timedelta(days=days)
            batch = IssueBatch(family_id=family.id or 0, idempotency_key=f"cli:{n}",
                               issued_by="U0STAFF01", mode="welcome")  # fmt: skip
            session.add(batch)
            session.flush()
            session.add(
                Pin(patient_id=child.id or 0, batch_id=batch.id or 0, pin_hash="scrypt$cli",
                    delivery=delivery, issued_by="U0STAFF01", issued_at=issued, status=status,
                    status_changed_at=issued + changed if changed else None)
            )  # fmt: skip


def make_dob(n: int) -> date:
    return date(2020, 2, 2) + timedelta(days=400 * n)


def test_table_csv_and_png_with_counts_only(
    tmp_path: Path, database: Database, database_url: str
) -> None:
    seed_recent(database)
    png, table_csv = tmp_path / "adoption.png", tmp_path / "adoption.csv"

    run = pinbot(tmp_path, "report", "adoption", "--png", str(png), "--csv", str(table_csv),
                 DATABASE_URL=database_url, **REQUIRED)  # fmt: skip

    assert run.code == 0, run
    lines = run.stdout.splitlines()
    assert lines[0].startswith("PIN adoption at Maple Street Pediatrics, ")
    weeks = [line for line in lines if WEEK_ROW.match(line)]
    assert len(weeks) == 13, run  # 12 full weeks and this one so far
    [total] = [line for line in lines if line.startswith("Total")]
    assert total.split()[1:5] == ["3", "1", "2", "1"], total  # issued emailed printed registered
    assert f"Chart written to {png}" in lines and f"CSV written to {table_csv}" in lines
    rows = list(csv.DictReader(io.StringIO(table_csv.read_text(encoding="utf-8"))))
    assert len(rows) == 13
    assert sum(int(r["issued"]) for r in rows) == 3
    assert sum(int(r["registered"]) for r in rows) == 1
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1600, 900)
    for words in PHI:
        assert words.lower() not in run.output.lower()
        assert words.lower() not in table_csv.read_text(encoding="utf-8").lower()


def test_weeks_option_and_plain_errors(tmp_path: Path, database_url: str) -> None:
    four = pinbot(tmp_path, "report", "adoption", "--weeks", "4", DATABASE_URL=database_url)
    assert four.code == 0, four
    assert sum(1 for line in four.stdout.splitlines() if WEEK_ROW.match(line)) == 5

    zero = pinbot(tmp_path, "report", "adoption", "--weeks", "0", DATABASE_URL=database_url)
    assert zero.code == 1 and zero.said == ["--weeks must be between 1 and 104 (got 0)."], zero

    nowhere = tmp_path / "missing" / "adoption.png"
    bad = pinbot(tmp_path, "report", "adoption", "--png", str(nowhere), DATABASE_URL=database_url)
    assert bad.code == 1, bad
    assert bad.said[-1] == f"Can't write {nowhere}: No such file or directory.", bad
    assert not nowhere.exists()
