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

import pyrage
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
    assert named == sorted([*REQUIRED, "SLACK_APP_TOKEN"]), run
    assert all("required" in line for line in run.said), run
    assert "SEKRIT" not in run.output


def slack_run_env(tmp_path: Path, api_url: str, **overrides: str) -> dict[str, str]:
    return {
        **REQUIRED,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pinbot.db'}",
        "SLACK_API_URL": api_url,
        "SLACK_BOT_TOKEN": "xoxb-111-222-SEKRITbottoken",
        "SLACK_APP_TOKEN": "xapp-1-A0-SEKRITapptoken",
        "PINBOT_KEY": "k" * 64,
        **overrides,
    }


@pytest.mark.parametrize(
    ("refused", "variable"),
    [
        ("xoxb-111-222-SEKRITbottoken", "SLACK_BOT_TOKEN"),
        ("xapp-1-A0-SEKRITapptoken", "SLACK_APP_TOKEN"),
    ],
)
def test_run_with_a_refused_token_says_which_in_one_line(
    tmp_path: Path, fake_slack: FakeSlack, refused: str, variable: str
) -> None:
    fake_slack.socket_mode_url = "ws://127.0.0.1:1/never-used"
    fake_slack.revoked_tokens.add(refused)

    run = pinbot(tmp_path, "run", **slack_run_env(tmp_path, fake_slack.url))

    assert run.code == 1, run
    assert run.said == [
        f"{variable} was refused (Slack said invalid_auth: it is not valid): "
        + (
            "copy the Bot User OAuth Token (xoxb-…) again from the app's OAuth & Permissions page."
            if variable == "SLACK_BOT_TOKEN"
            else "create an app-level token with the connections:write scope (Basic "
            "Information > App-Level Tokens) and put it (xapp-…) in SLACK_APP_TOKEN, or leave "
            "SLACK_APP_TOKEN empty for HTTP mode."
        )
    ], run
    assert "Traceback" not in run.output and "SEKRIT" not in run.output


def test_run_with_slack_unreachable_names_slack_api_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    run = pinbot(tmp_path, "run", **slack_run_env(tmp_path, url))

    assert run.code == 1, run
    assert run.said == [
        f"Can't reach Slack at {url} (URLError): check the network or proxy, or SLACK_API_URL."
    ], run


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


def test_demo_loads_a_practice_into_its_own_database_and_says_what_to_try(
    tmp_path: Path, database_url: str
) -> None:
    pinbot(tmp_path, "db", "upgrade", DATABASE_URL=database_url)
    run = pinbot(tmp_path, "demo", DATABASE_URL=database_url)

    assert run.code == 0, run
    tries = [line for line in run.stdout.splitlines() if line.strip().startswith("/family ")]
    assert len(tries) >= 5, run
    assert "/pin " in run.stdout
    assert "  DATABASE_URL=sqlite:///pinbot-demo.db .venv/bin/pinbot run" in run.said, run
    assert row_counts(database_url)["family"] == 0  # the practice's database is untouched
    demo_url = f"sqlite:///{tmp_path / 'pinbot-demo.db'}"
    assert row_counts(demo_url)["family"] >= 20  # "a few dozen families"


def test_demo_refuses_a_database_that_holds_a_practice(tmp_path: Path, database_url: str) -> None:
    assert pinbot(tmp_path, "demo", "--database-url", database_url).code == 0
    assert pinbot(tmp_path, "demo", "--database-url", database_url).code == 0  # demo only: fine
    demo_rows = row_counts(database_url)
    practice = tmp_path / "families.csv"
    practice.write_text((DATA / "families_good.csv").read_text(encoding="utf-8"), encoding="utf-8")
    imported = pinbot(tmp_path, "import", "families", str(practice), DATABASE_URL=database_url)
    assert imported.code == 0, imported
    with_practice = row_counts(database_url)

    run = pinbot(tmp_path, "demo", "--database-url", database_url)

    assert run.code == 1, run
    assert re.fullmatch(
        r".* holds \d+ families that are not the demo's: the sample practice is not loaded "
        r"there\. Run `pinbot demo` without --database-url to use its own database "
        r"\(pinbot-demo\.db\)\.",
        run.said[-1],
    ), run
    assert row_counts(database_url) == with_practice != demo_rows


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
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    env = full_config(database_url, fake_slack, smtp_server.port)
    run = pinbot(tmp_path, "check", **env, BACKUP_RECIPIENT=recipient, PINBOT_KEY="k" * 40)

    assert run.code == 0, run
    names = [re.sub(r"^(ok|FAIL)\s+(\w+):.*$", r"\2", line) for line in run.said]
    keeping = ["secret", "files", "backups"] if "sqlite" in database_url else ["secret", "backups"]
    expected = ["configuration", "channels", "database", "smtp", "slack", "channel", "languages"]
    expected += keeping
    assert names == expected, run
    assert all(line.startswith("ok ") for line in run.said), run
    assert "PINBOT_KEY in the environment" in run.stdout
    assert "encrypts to 1 age recipient" in run.stdout
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
    channels = next(line for line in run.said if "channels:" in line)
    assert channels.startswith("WARN channels:") and "EVERY channel" in channels

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
    assert all(line.startswith(("ok ", "FAIL ", "WARN ")) for line in lines), run
    failed = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("FAIL")}
    assert set(failed) == {"configuration", "database", "smtp", "slack"}, run
    assert "SLACK_BOT_TOKEN must start with 'xoxb-'" in failed["configuration"]
    assert "can't reach postgresql" in failed["database"] and "***" in failed["database"]
    assert f"could not reach the SMTP server at 127.0.0.1:{env['SMTP_PORT']}" in failed["smtp"]
    assert "invalid_auth" in failed["slack"] and "SLACK_BOT_TOKEN" in failed["slack"]
    assert len(fake_slack.calls_to("auth.test")) == 1
    assert "SEKRIT" not in run.output and PASSWORD not in run.output


def test_check_opens_socket_mode_and_finds_channels_pinbot_is_not_in(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    fake_slack.socket_mode_url = "ws://127.0.0.1:1/never-used"  # opened, never connected to
    fake_slack.add_channel("C0NOTIN", is_member=False)
    fake_slack.add_channel("G0SECRET", is_private=True, is_member=False)
    env = {
        **full_config(database_url, fake_slack, smtp_server.port),
        "SLACK_APP_TOKEN": "xapp-1-A0-SEKRITapptoken",
        "ALLOWED_CHANNEL_IDS": "C0FRONT,C0NOTIN",
        "REMINDER_CHANNEL_ID": "G0SECRET",
    }

    run = pinbot(tmp_path, "check", **env)

    assert run.code == 1, run
    slack = [line for line in run.said if line.split()[1] in {"slack:", "socket", "channel:"}]
    assert slack == [
        "ok  slack: connected as @pinbot in Pinbot Test",
        "ok  socket mode: SLACK_APP_TOKEN opens a connection",
        "ok  channel: pinbot can post in C0FRONT (ALLOWED_CHANNEL_IDS)",
        "FAIL channel: pinbot is not in C0NOTIN (ALLOWED_CHANNEL_IDS): /invite @pinbot in that "
        "channel",
        "FAIL channel: pinbot is not in G0SECRET (REMINDER_CHANNEL_ID): /invite @pinbot in that "
        "channel",
    ], run
    assert len(fake_slack.calls_to("apps.connections.open")) == 1
    probes = fake_slack.calls_to("chat.postEphemeral")
    assert {call.args["user"] for call in probes} == {"U0PINBOT1"}  # seen by pinbot alone
    assert fake_slack.calls_to("chat.postMessage") == []


def test_check_with_a_refused_app_token_says_so_without_slack_sdk_log_lines(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    fake_slack.revoked_tokens.add("xapp-1-A0-SEKRITapptoken")
    env = {
        **full_config(database_url, fake_slack, smtp_server.port),
        "SLACK_APP_TOKEN": "xapp-1-A0-SEKRITapptoken",
    }

    run = pinbot(tmp_path, "check", **env)

    assert run.code == 1, run
    assert [line for line in run.said if line.startswith("FAIL")] == [
        "FAIL socket mode: SLACK_APP_TOKEN was refused (Slack said invalid_auth: it is not "
        "valid): create an app-level token with the connections:write scope (Basic Information "
        "> App-Level Tokens) and put it (xapp-…) in SLACK_APP_TOKEN, or leave SLACK_APP_TOKEN "
        "empty for HTTP mode."
    ], run
    assert "slack_sdk" not in run.output and not any(
        LOG_LINE.match(line) for line in run.output.splitlines()
    ), run


def test_check_without_any_token_asks_for_the_app_token(tmp_path: Path) -> None:
    run = pinbot(tmp_path, "check", **REQUIRED, DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")

    configuration = [line for line in run.said if line.startswith("FAIL configuration")]
    assert any("SLACK_APP_TOKEN is required for Socket Mode" in line for line in configuration)
    assert not any("SLACK_SIGNING_SECRET is required" in line for line in run.said), run


def test_a_database_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'pinbot.db'}"

    upgrade = pinbot(tmp_path, "db", "upgrade", DATABASE_URL=url)
    check = pinbot(tmp_path, "check", DATABASE_URL=url)

    assert upgrade.code == 1, upgrade
    folder = tmp_path / "no-such-folder"
    missing = f"the folder {folder} does not exist: create it, or fix DATABASE_URL"
    assert upgrade.said == [f"Can't reach the database at {url}: {missing}"], upgrade
    assert f"FAIL database: can't reach {url}: {missing}" in check.said, check


def test_import_help_describes_file_and_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.importing.importer import (
        APPOINTMENT_COLUMNS,
        FAMILY_COLUMNS,
        FAMILY_OPTIONAL_COLUMNS,
        REGISTRATION_COLUMNS,
    )
    from bot.runtime.cli import main

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    said = capsys.readouterr().out
    words = set(re.findall(r"[a-z_]+", said))

    assert "FILE" in said and "Windows-1252" in said
    columns = {*FAMILY_COLUMNS, *FAMILY_OPTIONAL_COLUMNS, *APPOINTMENT_COLUMNS}
    assert columns | set(REGISTRATION_COLUMNS) <= words


def test_hl7_replay_help_describes_file(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.runtime.cli import main

    with pytest.raises(SystemExit):
        main(["hl7", "replay", "--help"])
    said = " ".join(capsys.readouterr().out.split())

    assert "FILE HL7 v2 messages" in said and "starts at its MSH segment" in said
    assert "one line per message with its ACK code" in said
