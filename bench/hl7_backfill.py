"""Backfill through the feed (issue 10): a practice's whole patient list as ADT^A04 messages
in one batch file (FHS/BHS … BTS/FTS), applied by `pinbot hl7 replay FILE` in its own process
on a fresh database, as an IT person would load history before switching the feed on.

Families of one to three children (siblings share the account and the mother), so the
importer finds existing families as it goes, as in a real backfill. Reported: wall time,
messages/s, the replay's peak memory, every line AA, and a floor measured in the same run:
the same file split and parsed (bot.feed.message) without a database.

    python -m bench.hl7_backfill                    # 250,000 patients, SQLite and PostgreSQL
    python -m bench.hl7_backfill --patients 20000 --stores sqlite
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import func, select

from bench.stats import Report, Result, ratio
from bench.stores import empty_store, postgres_available
from bot.db import Database
from bot.feed.message import iter_messages, parse_message
from bot.runtime.hl7 import REPLAY_CHUNK
from models import Family, Patient
from tests.flows.feed_support import word

FULL = 250_000
CHILDREN = (1, 2, 3, 2)  # children per family, in turn: 2 on average


def write_batch(path: Path, patients: int) -> int:
    """The batch file; returns the number of families."""
    family = child = 0
    with path.open("wb") as out:
        out.write(b"FHS|^~\\&|EPIC|SUNNYPEDS|PINBOT|SUNNYPEDS|20250314\r")
        out.write(b"BHS|^~\\&|EPIC|SUNNYPEDS|PINBOT|SUNNYPEDS|20250314\r")
        for number in range(patients):
            if child == CHILDREN[family % len(CHILDREN)]:
                family, child = family + 1, 0
            child += 1
            out.write(_a04(number, family))
        out.write(f"BTS|{patients}\rFTS|1\r".encode())
    return family + 1


def _a04(number: int, family: int) -> bytes:
    surname, first = word(family).upper(), word(number).upper()
    return (
        "MSH|^~\\&|EPIC|SUNNYPEDS|PINBOT|SUNNYPEDS|20250314093012||ADT^A04^ADT_A01|"
        f"BF-{number:07d}|P|2.5.1\r"
        "EVN|A04|20250314093012\r"
        f"PID|1||MRN-F{number:07d}^^^SUNNYPEDS^MR||{surname}^{first}||2019{1 + number % 12:02d}"
        f"{1 + number % 28:02d}|{'FM'[number % 2]}||||||||||ACCT-F{family:07d}\r"
        f"NK1|1|{surname}^DANA|MTH||^PRN^PH^^1^555^0100000~^NET^Internet^"
        f"dana.{family}@example.com\r"
    ).encode()


def _parse_floor(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as stream:  # as the replay reads it
        for raw in iter_messages(iter(lambda: stream.read(REPLAY_CHUNK), b"")):
            parse_message(raw, chart_id_type="MR", account_field="PID-18")
    return time.perf_counter() - start


def _replay(url: str, path: Path) -> tuple[float, int, int, int, float]:
    """Wall seconds, exit code, AA lines, lines and peak resident MiB of `pinbot hl7 replay`.
    The peak is this child's own (wait4's rusage), not the largest child's of the whole run,
    which RUSAGE_CHILDREN would give."""
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("HL7_PORT", None)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "pinbot"), "hl7", "replay", str(path)],
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        lines = out.read().decode().splitlines()
    aa = sum(line.split()[2:3] == ["AA"] for line in lines)
    return seconds, child.returncode, aa, len(lines), usage.ru_maxrss / 1024


def run(store: str, patients: int, path: Path, families: int, report: Report) -> Result:
    floor = _parse_floor(path)
    with empty_store(store, "backfill") as url:
        seconds, code, aa, lines, peak_mib = _replay(url, path)
        database = Database(url)
        with database.read_session() as session:
            stored = session.exec(select(func.count()).select_from(Patient)).one()
            stored_families = session.exec(select(func.count()).select_from(Family)).one()
        database.dispose()
    rate, floor_rate = patients / seconds, patients / floor
    ok = code == 0 and aa == patients and stored == patients and stored_families == families
    return report.add(
        Result(
            "hl7_backfill",
            store,
            f"{patients:,}",
            {
                "patients": patients,
                "families": families,
                "seconds": round(seconds, 1),
                "messages_per_s": round(rate, 1),
                "all_aa": ok,
                "peak_rss_mib": round(peak_mib),
                "floor_parse_messages_per_s": round(floor_rate, 1),
                "ratio_to_floor": round(ratio(floor_rate, rate), 1),
            },
        ),
        [
            f"hl7 backfill {store}: {patients:,} patients in {families:,} families through "
            "`pinbot hl7 replay`",
            f"  {seconds / 60:.1f} min ({rate:,.0f} messages/s), exit {code}, {aa:,} of "
            f"{lines:,} lines AA, {stored:,} patients and {stored_families:,} families stored",
            f"  peak memory of the replay: {peak_mib:,.0f} MiB",
            f"  floor (split + parse only, no database): {floor_rate:,.0f} messages/s; "
            f"{ratio(floor_rate, rate):.1f}x the replay",
            f"  {'all applied' if ok else 'NOT all applied'}",
        ],
    )


def main(argv: list[str] | None = None, report: Report | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=FULL)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    report, failed = report or Report(), False
    with tempfile.TemporaryDirectory(prefix="pinbot-backfill-file-") as folder:
        path = Path(folder) / "backfill.hl7"
        families = write_batch(path, args.patients)
        report.say(
            f"backfill file: {args.patients:,} messages, {path.stat().st_size / 2**20:,.0f} MiB"
        )
        for store in args.stores.split(","):
            if store == "postgresql" and (why := postgres_available()):
                report.say(f"hl7 backfill postgresql: skipped ({why})")
                continue
            result = run(store, args.patients, path, families, report)
            failed = failed or not result.figures["all_aa"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
