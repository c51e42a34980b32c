"""The `pinbot` command line (SPEC §4), run as a real process: exit codes, plain one-line
messages instead of tracebacks, secrets never printed, on SQLite and on PostgreSQL.

Each run gets a clean environment (PATH, HOME and what the test sets) and a scratch working
directory, so neither the developer's environment nor a stray `.env` leaks in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlmodel import SQLModel

from bot.config import NO_TOKENS_GUIDANCE
from bot.db import Database, normalize_url
from tests.conftest import BACKENDS, PG_SKIP_REASON, PG_URL
from tests.support.fake_slack import FakeSlack
from tests.support.paths import DATA_DIR, REPO_ROOT
from tests.support.pg import scratch_database
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpServer, free_port

DATA = DATA_DIR
# The installed console script when it sits next to this interpreter (it is what staff run);
# otherwise the same entry point through the module.
_SCRIPT = Path(sys.executable).with_name("pinbot")
PINBOT = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "bot.runtime.cli"]

# Log records (alembic announcing a migration, …) go to stderr in this shape; everything else
# a command prints is meant for the person at the terminal.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
SCHEMA = {table.name for table in SQLModel.metadata.sorted_tables}
UNREACHABLE_PG = "postgresql://postgres:SEKRITdbpw@127.0.0.1:1/nope"

REQUIRED = {
    "PORTAL_URL": "https://portal.example.com/register",
    "PRACTICE_NAME": "Maple Street Pediatrics",
    "PRACTICE_PHONE": "(555) 010-0100",
    "SUPERVISOR_IDS": "U0SUPER01",
    "ALLOWED_CHANNEL_IDS": "C0STAFF01",
}


class Run:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.code = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.output = result.stdout + result.stderr

    @property
    def said(self) -> list[str]:
        """What was printed for the user: every non-empty line that is not a log record."""
        return [
            line for line in self.output.splitlines() if line.strip() and not LOG_LINE.match(line)
        ]

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def pinbot(cwd: Path, *args: str, **env: str) -> Run:
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(cwd)),
        "PYTHONPATH": str(REPO_ROOT),  # for the `-m bot.runtime.cli` fallback only
        **env,
    }
    result = subprocess.run(
        [*PINBOT, *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    run = Run(result)
    assert "Traceback" not in run.output, run
    return run


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (SQLite file or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_database(PG_URL, "pinbot_cli") as url:
        yield url


def tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def alembic_head(url: str) -> str | None:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    database = Database(url)
    try:
        with database.read_session() as session:
            return {
                t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in SQLModel.metadata.sorted_tables
            }
    finally:
        database.dispose()


# --------------------------------------------------------------------------- run


def test_run_without_slack_tokens_migrates_and_explains(
    tmp_path: Path, empty_database_url: str
) -> None:
    run = pinbot(tmp_path, "run", DATABASE_URL=empty_database_url)

    assert run.code == 2, run
    assert run.said == [NO_TOKENS_GUIDANCE], run  # one paragraph, nothing else
    for words in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "pinbot demo",
        "manifest.yml",
    ):
        assert words in NO_TOKENS_GUIDANCE
    # `run` upgrades the schema before anything else, tokens or not.
    assert {"alembic_version", *SCHEMA} <= tables(empty_database_url)
    assert alembic_head(empty_database_url)


def test_run_with_a_malformed_value_names_it_and_touches_nothing(tmp_path: Path) -> None:
    db_file = tmp_path / "pinbot.db"
    run = pinbot(
        tmp_path,
        "run",
        PORT="abc",
        SLACK_BOT_TOKEN="xoxb-SEKRIT-1",
        DATABASE_URL=f"sqlite:///{db_file}",
    )

    assert run.code == 2, run
    assert run.said == ["PORT must be a port number (got 'abc')."], run
    assert not db_file.exists()  # stopped before opening the database
    assert "SEKRIT" not in run.output


def test_run_with_a_token_lists_every_missing_variable(tmp_path: Path) -> None:
    run = pinbot(
        tmp_path,
        "run",
        SLACK_BOT_TOKEN="xoxb-111-222-SEKRITtoken",
        DATABASE_URL=f"sqlite:///{tmp_path / 'pinbot.db'}",
    )

    assert run.code == 2, run
    named = sorted(line.split(" ", 1)[0] for line in run.said)
    assert named == sorted([*REQUIRED, "SLACK_SIGNING_SECRET"]), run
    assert all("required" in line for line in run.said), run
    assert "SEKRIT" not in run.output


# --------------------------------------------------------------------------- database


def test_db_upgrade_creates_the_schema_and_is_repeatable(
    tmp_path: Path, empty_database_url: str
) -> None:
    assert "alembic_version" not in tables(empty_database_url)

    first = pinbot(tmp_path, "db", "upgrade", DATABASE_URL=empty_database_url)
    assert first.code == 0, first
    assert first.stdout.startswith("Database is up to date: "), first
    head = alembic_head(empty_database_url)
    assert head and tables(empty_database_url) >= SCHEMA

    second = pinbot(tmp_path, "db", "upgrade", DATABASE_URL=empty_database_url)
    assert second.code == 0, second
    assert second.stdout == first.stdout
    assert alembic_head(empty_database_url) == head


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    run = pinbot(tmp_path, "db", "upgrade", DATABASE_URL=UNREACHABLE_PG)

    assert run.code == 1, run
    assert len(run.said) == 1, run
    line = run.said[0]
    assert line.startswith("Can't reach the database at postgresql"), run
    assert "127.0.0.1:1/nope" in line
    assert "SEKRITdbpw" not in run.output


# --------------------------------------------------------------------------- import


def test_import_families_validates_whole_file_then_writes(
    tmp_path: Path, database_url: str
) -> None:
    env = {"DATABASE_URL": database_url}

    bad = pinbot(tmp_path, "import", "families", str(DATA / "families_bad.csv"), **env)
    assert bad.code == 1, bad
    assert "nothing was written" in bad.stdout, bad
    problems = [line.strip() for line in bad.said if line.strip().startswith("line ")]
    assert len(problems) >= 8, bad
    assert "line 3: patient_first_name is empty" in problems
    assert any(p.startswith("line 8: ") for p in problems)
    counts = row_counts(database_url)
    assert (counts["family"], counts["patient"], counts["guardian"]) == (0, 0, 0)

    partial = pinbot(
        tmp_path, "import", "families", str(DATA / "families_bad.csv"), "--skip-invalid", **env
    )
    assert partial.code == 0, partial
    assert "skipped" in partial.stdout and "line 3: " in partial.stdout, partial
    counts = row_counts(database_url)
    assert counts["family"] > 0 and counts["patient"] > 0

    good = pinbot(tmp_path, "import", "families", str(DATA / "families_good.csv"), **env)
    assert good.code == 0, good
    assert good.stdout.startswith("Import families: 6 rows read, 6 written."), good
    for kind in ("families", "patients", "guardians"):
        assert re.search(
            rf"^  {kind}: \d+ created, \d+ updated, \d+ unchanged$", good.stdout, re.MULTILINE
        ), good
    assert "problem" not in good.stdout


def test_demo_loads_a_practice_and_says_what_to_try(tmp_path: Path, database_url: str) -> None:
    run = pinbot(tmp_path, "demo", DATABASE_URL=database_url)

    assert run.code == 0, run
    tries = [line for line in run.stdout.splitlines() if line.strip().startswith("/family ")]
    assert len(tries) >= 5, run
    assert "/pin " in run.stdout
    assert row_counts(database_url)["family"] >= 20  # "a few dozen families"


# --------------------------------------------------------------------------- check


def full_config(database_url: str, fake_slack: FakeSlack, smtp_port: int) -> dict[str, str]:
    return {
        **REQUIRED,
        "SLACK_BOT_TOKEN": "xoxb-111-222-SEKRITbottoken",
        "SLACK_SIGNING_SECRET": "SEKRITsigningsecret",
        "SLACK_API_URL": fake_slack.url,
        "DATABASE_URL": database_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_USERNAME": USERNAME,
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_STARTTLS": "false",
        "MAIL_FROM": "Maple Street Pediatrics <frontdesk@example.com>",
    }


def test_check_with_a_full_config_is_all_ok(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    run = pinbot(tmp_path, "check", **full_config(database_url, fake_slack, smtp_server.port))

    assert run.code == 0, run
    names = [re.sub(r"^(ok|FAIL)\s+(\w+):.*$", r"\2", line) for line in run.said]
    assert names == ["configuration", "channels", "database", "smtp", "slack", "languages"], run
    assert all(line.startswith("ok ") for line in run.said), run
    assert "HTTP mode on port 3000" in run.stdout
    assert "ok  channels: commands work only in C0STAFF01" in run.said
    assert "connected as @pinbot" in run.stdout
    assert [call.token for call in fake_slack.calls_to("auth.test")] == [
        "xoxb-111-222-SEKRITbottoken"
    ]
    assert smtp_server.logins == [USERNAME]  # it really logged in
    assert "SEKRIT" not in run.output and PASSWORD not in run.output


def test_check_says_loudly_that_a_star_allows_every_channel(
    tmp_path: Path, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    env = full_config(f"sqlite:///{tmp_path / 'p.db'}", fake_slack, smtp_server.port)
    run = pinbot(tmp_path, "check", **{**env, "ALLOWED_CHANNEL_IDS": "*"})

    assert run.code == 0, run
    channels = next(line for line in run.said if line.startswith("ok  channels:"))
    assert "WARNING" in channels and "EVERY channel" in channels

    del env["ALLOWED_CHANNEL_IDS"]
    run = pinbot(tmp_path, "check", **{**env, "REMINDER_CHANNEL_ID": "C0PUBLIC1"})
    assert run.code == 1, run
    failed = [line for line in run.said if line.startswith("FAIL configuration")]
    assert any("ALLOWED_CHANNEL_IDS is required" in line for line in failed), run
    assert any("REMINDER_CHANNEL_ID must be one of" in line for line in failed), run


def test_check_says_what_is_wrong_in_plain_words(tmp_path: Path, fake_slack: FakeSlack) -> None:
    env = full_config(UNREACHABLE_PG, fake_slack, free_port())  # nothing listens there
    env["SLACK_BOT_TOKEN"] = "SEKRIT-not-a-bot-token"  # the fake answers invalid_auth

    run = pinbot(tmp_path, "check", **env)

    assert run.code == 1, run
    lines = run.said
    assert all(line.startswith(("ok ", "FAIL ")) for line in lines), run
    failed = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("FAIL")}
    assert set(failed) == {"configuration", "database", "smtp", "slack"}, run
    assert "SLACK_BOT_TOKEN must start with 'xoxb-'" in failed["configuration"]
    assert "can't reach postgresql" in failed["database"] and "***" in failed["database"]
    assert f"could not reach the SMTP server at 127.0.0.1:{env['SMTP_PORT']}" in failed["smtp"]
    assert "invalid_auth" in failed["slack"] and "SLACK_BOT_TOKEN" in failed["slack"]
    assert len(fake_slack.calls_to("auth.test")) == 1
    assert "SEKRIT" not in run.output and PASSWORD not in run.output
