"""Three `pinbot remind` started together (a cron job, a person, two replicas' timers), as OS
processes on SQLite and on PostgreSQL, over several rounds to meet the interleavings: the
digest is posted once, every process exits 0, and each says what really became of it — posted
by this run, posted by another run at …, or (after waiting for it) queued by this run and
posted by another. Odd rounds make Slack slow, so that the others find the digest in flight.

The runs use the real clock, so the data is seeded relative to now: a name fix waiting two
days in its thread gives a digest entry and a nudge on any day of the week."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from bot.db import Database
from models import NameFix, OutgoingWork, ReminderRun, utcnow
from tests.support.factories import make_family, make_patient
from tests.support.fake_slack import FakeSlack, fake_slack_fixture

FIXTURES = (fake_slack_fixture,)
REPO_ROOT = Path(__file__).resolve().parents[2]
REMIND, FRONT, THREAD = "C0REMIND", "C0FRONT", "1700000000.000100"
ROUNDS = 5
PROCESSES = 3
DAY = r"\d{4}-\d\d-\d\d"
TIME = r"\d{1,2}:\d\d [AP]M"
# What a run may truthfully say about the digest, and who it says posted it.
BY_THIS_RUN = [
    re.compile(rf"^Digest for {DAY}: 1 entry in 1 message\(s\), posted to {REMIND} by this run\.$"),
    re.compile(
        rf"^Today's digest \({DAY}\) was queued by another run; this run posted it to {REMIND}\.$"
    ),
]
BY_ANOTHER_RUN = [
    re.compile(
        rf"^Digest for {DAY}: 1 entry in 1 message\(s\), queued by this run and posted to "
        rf"{REMIND} by another run at {TIME}\.$"
    ),
    re.compile(
        rf"^Today's digest \({DAY}\) was already posted by another run at {TIME}: nothing "
        r"posted\. Run `pinbot remind --force` to post it again\.$"
    ),
]


def seed(database: Database) -> None:
    now = utcnow()
    with database.transaction() as session:
        family = make_family(session, "A3001")
        baby = make_patient(session, family, "Baby Girl", date(2026, 1, 5), name_type="NB")
        waiting = NameFix(
            patient_id=baby.id or 0,
            family_id=family.id or 0,
            proposed_first="Ava",
            proposed_last=baby.last_name,
            confirmed_by="birth_certificate",
            requested_by="U0STAFF",
            requested_at=now - timedelta(days=2),
            channel_id=FRONT,
            thread_ts=THREAD,
        )
        session.add(waiting)


def start_over(database: Database, fake_slack: FakeSlack) -> None:
    """Forget today's run and its messages, as if the day had not started."""
    with database.transaction() as session:
        session.execute(delete(OutgoingWork))
        session.execute(delete(ReminderRun))
        session.execute(update(NameFix).values(last_nudged_on=None))
    fake_slack.reset()


@pytest.fixture
def workers(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack
) -> Iterator[list[subprocess.Popen[str]]]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": fake_slack.url,
        "REMINDER_CHANNEL_ID": REMIND,
        "ALLOWED_CHANNEL_IDS": REMIND,
        "SUPERVISOR_IDS": "U0SUPER1",
        "PRACTICE_TIMEZONE": "America/New_York",
        "PORTAL_URL": "https://portal.example.com",
        "PRACTICE_NAME": "Test Pediatrics",
        "PRACTICE_PHONE": "555-0100",
    }
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.remind_worker"],
            cwd=tmp_path,  # no stray .env
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"worker{n}.log").open("w"),
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        for worker in started:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        yield started
    finally:
        for worker in started:
            if worker.stdin:
                worker.stdin.close()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


def one_round(workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    for worker in workers:  # all three waiting: release them together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line, f"a worker stopped (exit {worker.poll()})"
        results.append(json.loads(line))
    return results


def test_three_pinbot_remind_at_once_post_once_and_say_what_happened(
    database: Database, fake_slack: FakeSlack, workers: list[subprocess.Popen[str]]
) -> None:
    seed(database)
    seen: set[str] = set()
    for round_number in range(ROUNDS):
        start_over(database, fake_slack)
        fake_slack.delays["chat.postMessage"] = 0.5 if round_number % 2 else 0

        results = one_round(workers)

        posts = [c for c in fake_slack.calls_to("chat.postMessage") if c.ok]
        digests = [c for c in posts if c.args["channel"] == REMIND]
        nudges = [c for c in posts if c.args.get("thread_ts") == THREAD]
        report = f"round {round_number}: {results}"
        assert len(digests) == 1 and len(nudges) == 1, report
        assert [r["code"] for r in results] == [0] * PROCESSES, report
        firsts = [r["said"][0] for r in results]
        mine = [line for line in firsts if any(p.match(line) for p in BY_THIS_RUN)]
        others = [line for line in firsts if any(p.match(line) for p in BY_ANOTHER_RUN)]
        assert len(mine) == 1 and len(others) == PROCESSES - 1, report  # one poster, told so
        claimers = [line for line in firsts if line.startswith("Digest for ")]
        assert len(claimers) == 1, report  # exactly one run queued it
        for result in results:
            assert not any("could not" in line for line in result["said"]), report
        seen.update(re.sub(rf"{DAY}|{TIME}", "…", line) for line in firsts)
    print("\n".join(sorted(seen)))
