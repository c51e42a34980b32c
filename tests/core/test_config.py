"""Settings per SPEC §2: defaults, one plain line per malformed value, secrets never echoed,
everything `pinbot run` needs listed at once, and `.env` under the real environment.
Pure: no database, no network."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, Settings, load_settings, read_environment

# Values that are credentials: none of them may appear in any problem line.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-111-222-SEKRITbottoken",
    "SLACK_APP_TOKEN": "xapp-1-A111-333-SEKRITapptoken",
    "SLACK_SIGNING_SECRET": "SEKRITsigningsecret0123456789ab",
    "SMTP_PASSWORD": "SEKRITsmtppassword",
}

# What `pinbot run` needs in HTTP mode, all well formed.
RUNNABLE = {
    "SLACK_BOT_TOKEN": SECRETS["SLACK_BOT_TOKEN"],
    "SLACK_SIGNING_SECRET": SECRETS["SLACK_SIGNING_SECRET"],
    "PORTAL_URL": "https://portal.example.com/register",
    "PRACTICE_NAME": "Maple Street Pediatrics",
    "PRACTICE_PHONE": "(555) 010-0100",
    "SUPERVISOR_IDS": "U0SUPER01, S0LEADS01",
    "ALLOWED_CHANNEL_IDS": "C0STAFF01",
}


def test_defaults_per_spec() -> None:
    settings = load_settings({})

    assert settings.problems == ()
    assert settings.slack_bot_token is None
    assert settings.slack_app_token is None
    assert settings.slack_signing_secret is None
    assert not settings.socket_mode and not settings.has_slack_tokens
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert settings.database_url == "sqlite:///pinbot.db"
    assert settings.portal_url is None
    assert settings.practice_name is None and settings.practice_phone is None
    assert settings.timezone == ZoneInfo("America/New_York")
    assert settings.supervisor_ids == ()
    assert settings.allowed_channel_ids == ()
    assert settings.reminder_channel_id is None
    assert settings.reminder_time == time(8, 0)
    assert settings.smtp.host is None and settings.smtp.mail_from is None
    assert not settings.smtp.configured
    assert settings.pin_ttl_days == 90
    assert settings.minor_age_limit == 18
    assert settings.pin_letter_ttl_hours == 24
    assert not settings.feed.configured and settings.feed.port is None
    assert settings.feed.bind == "127.0.0.1"
    assert [str(n) for n in settings.feed.allowed_sources] == ["127.0.0.0/8", "::1/128"]
    assert (settings.feed.chart_id_type, settings.feed.account_field) == ("MR", "PID-18")
    assert settings.feed.silent_hours == 24
    assert settings.default_language == "en"
    assert settings.http_bind == "0.0.0.0"
    assert not settings.channel_allowed("C0STAFF01")  # unset allows nothing (and can't run)


def test_every_value_is_read() -> None:
    settings = load_settings(
        {
            **RUNNABLE,
            "SLACK_APP_TOKEN": SECRETS["SLACK_APP_TOKEN"],
            "SLACK_API_URL": "http://127.0.0.1:9999/api",
            "PORT": "8080",
            "DATABASE_URL": "postgresql://pinbot@db.internal/pinbot",
            "PRACTICE_TIMEZONE": "America/Chicago",
            "ALLOWED_CHANNEL_IDS": "C0STAFF01,G0PRIVATE1,C0REMIND1",
            "REMINDER_CHANNEL_ID": "C0REMIND1",
            "HTTP_BIND": "127.0.0.1",
            "REMINDER_TIME": "07:45",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "2525",
            "SMTP_USERNAME": "pinbot",
            "SMTP_PASSWORD": SECRETS["SMTP_PASSWORD"],
            "SMTP_STARTTLS": "false",
            "MAIL_FROM": "Maple Street Pediatrics <frontdesk@example.com>",
            "PIN_TTL_DAYS": "0",
            "MINOR_AGE_LIMIT": "21",
            "PIN_LETTER_TTL_HOURS": "0",
            "HL7_PORT": "2575",
            "HL7_BIND": "0.0.0.0",
            "HL7_ALLOWED_SOURCES": "10.0.4.12, 10.0.5.0/24",
            "HL7_CHART_ID_TYPE": "pi",
            "HL7_ACCOUNT_FIELD": "GT1-2",
            "HL7_SILENT_HOURS": "0",
            "DEFAULT_LANGUAGE": "ES",
        }
    )

    assert settings.problems == ()
    assert settings.socket_mode
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"  # trailing slash added
    assert settings.port == 8080
    assert settings.database_url == "postgresql://pinbot@db.internal/pinbot"
    assert settings.timezone == ZoneInfo("America/Chicago")
    assert settings.supervisor_ids == ("U0SUPER01", "S0LEADS01")
    assert settings.allowed_channel_ids == ("C0STAFF01", "G0PRIVATE1", "C0REMIND1")
    assert not settings.any_channel and settings.channel_allowed("G0PRIVATE1")
    assert not settings.channel_allowed("C0ELSEWHERE") and not settings.channel_allowed(None)
    assert settings.reminder_channel_id == "C0REMIND1"
    assert settings.http_bind == "127.0.0.1"
    assert settings.reminder_time == time(7, 45)
    assert settings.smtp.configured and settings.smtp.port == 2525
    assert settings.smtp.starttls is False
    assert settings.smtp.password == SECRETS["SMTP_PASSWORD"]
    assert (settings.pin_ttl_days, settings.minor_age_limit, settings.pin_letter_ttl_hours) == (
        0,
        21,
        0,
    )
    assert settings.feed.configured and settings.feed.port == 2575
    assert settings.feed.bind == "0.0.0.0"
    assert [str(n) for n in settings.feed.allowed_sources] == ["10.0.4.12/32", "10.0.5.0/24"]
    assert (settings.feed.chart_id_type, settings.feed.account_field) == ("PI", "GT1-2")
    assert settings.feed.silent_hours == 0
    assert settings.default_language == "es"
    settings.require_runnable()  # complete: does not raise


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("SMTP_PORT", "smtp"),
        ("PRACTICE_TIMEZONE", "Mars/Olympus"),
        ("PRACTICE_TIMEZONE", "America"),  # a tzdata directory, not a zone: once a traceback
        ("REMINDER_TIME", "25:99"),
        ("REMINDER_TIME", "8am"),
        ("PIN_TTL_DAYS", "-1"),
        ("MINOR_AGE_LIMIT", "eighteen"),
        ("PIN_LETTER_TTL_HOURS", "1.5"),
        ("SUPERVISOR_IDS", "U0SUPER01,bob"),
        ("ALLOWED_CHANNEL_IDS", "C0STAFF01,#front-desk"),
        ("REMINDER_CHANNEL_ID", "front-desk"),
        ("ALLOWED_CHANNEL_IDS", "*,C0STAFF01"),
        ("HTTP_BIND", "slack.example.org"),
        ("HTTP_BIND", "0.0.0.0:3000"),
        ("SLACK_BOT_TOKEN", "xoxp-1-SEKRITusertoken"),
        ("SLACK_APP_TOKEN", "xoxb-1-SEKRITwrongkind"),
        ("SMTP_STARTTLS", "maybe"),
        ("MAIL_FROM", "not-an-email"),
        ("PORTAL_URL", "ftp://x"),
        ("SLACK_API_URL", "slack.com/api"),
        ("DATABASE_URL", "mysql://pinbot:SEKRITdbpassword@db/pinbot"),  # unsupported backend
        ("DATABASE_URL", "not a url"),
        ("HL7_PORT", "mllp"),
        ("HL7_ALLOWED_SOURCES", "10.0.4.0/24, the interface engine"),
        ("HL7_ALLOWED_SOURCES", "10.0.4.12, 10.0.5.1/24"),  # host bits set: not widened
        ("HL7_ACCOUNT_FIELD", "PID-3"),
        ("HL7_SILENT_HOURS", "-2"),
        ("DEFAULT_LANGUAGE", "Spanish"),
    ],
)
def test_malformed_value_is_one_line_naming_the_variable(name: str, value: str) -> None:
    settings = load_settings({**RUNNABLE, name: value})

    assert len(settings.problems) == 1, settings.problems
    problem = settings.problems[0]
    assert problem.startswith(f"{name} "), problem
    assert "\n" not in problem
    assert "Traceback" not in problem
    if "SEKRIT" in value:  # a credential (or a URL holding one) is never echoed back
        assert value not in problem
        assert "SEKRIT" not in problem
    # `pinbot run` stops on it, and names it once: not again as "required".
    with pytest.raises(ConfigError) as caught:
        settings.require_runnable()
    assert [p for p in caught.value.problems if p.startswith(f"{name} ")] == [problem]


def test_secrets_never_appear_in_problem_text() -> None:
    """Everything wrong at once, secrets in their own variables and pasted into wrong ones."""
    env = {
        **SECRETS,
        "SLACK_BOT_TOKEN": "SEKRITnoprefixbottoken",  # wrong prefix
        "SLACK_APP_TOKEN": "xoxb-SEKRITbotinappslot",  # a bot token in the app slot
        "DATABASE_URL": "mysql://u:SEKRITdbpassword@h/d",  # unsupported, holds a password
        "PORT": "abc",
        "PRACTICE_TIMEZONE": "Mars/Olympus",
        "REMINDER_TIME": "8am",
        "PIN_TTL_DAYS": "-1",
        "SUPERVISOR_IDS": "U0SUPER01,bad id",
        "SMTP_STARTTLS": "maybe",
        "MAIL_FROM": "not-an-email",
        "PORTAL_URL": "ftp://x",
    }
    settings = load_settings(env)
    with pytest.raises(ConfigError) as caught:
        settings.require_runnable()

    text = "\n".join(
        [*settings.problems, *caught.value.problems, str(caught.value), repr(settings)]
    )
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "DATABASE_URL",
        "PORT",
        "PRACTICE_TIMEZONE",
        "REMINDER_TIME",
        "PIN_TTL_DAYS",
        "SUPERVISOR_IDS",
        "SMTP_STARTTLS",
        "MAIL_FROM",
        "PORTAL_URL",
    ):
        assert sum(p.startswith(name + " ") for p in settings.problems) == 1, name
    assert "SEKRIT" not in text
    assert "SEKRIT" not in repr(settings.smtp)


def _required(error: ConfigError) -> set[str]:
    return {p.split(" ", 1)[0] for p in error.problems}


def test_require_runnable_lists_every_missing_variable_http_mode() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}).require_runnable()

    assert _required(caught.value) == {
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",  # Socket Mode, the manifest's default, needs it (or HTTP mode's secret)
        "PORTAL_URL",
        "PRACTICE_NAME",
        "PRACTICE_PHONE",
        "SUPERVISOR_IDS",
        "ALLOWED_CHANNEL_IDS",
    }
    assert len(caught.value.problems) == 7
    assert all("required" in p and "\n" not in p for p in caught.value.problems)


def test_require_runnable_socket_mode_needs_no_signing_secret() -> None:
    env = {k: v for k, v in RUNNABLE.items() if k != "SLACK_SIGNING_SECRET"}
    load_settings({**env, "SLACK_APP_TOKEN": SECRETS["SLACK_APP_TOKEN"]}).require_runnable()

    with pytest.raises(ConfigError) as caught:  # neither: Socket Mode's token is asked for
        load_settings(env).require_runnable()
    assert _required(caught.value) == {"SLACK_APP_TOKEN"}
    assert "SLACK_SIGNING_SECRET" in caught.value.problems[0]  # and HTTP mode's alternative


def test_require_runnable_names_only_what_is_missing() -> None:
    env = {k: v for k, v in RUNNABLE.items() if k not in {"PORTAL_URL", "PRACTICE_PHONE"}}
    with pytest.raises(ConfigError) as caught:
        load_settings(env).require_runnable()
    assert _required(caught.value) == {"PORTAL_URL", "PRACTICE_PHONE"}


def test_blank_values_count_as_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {**RUNNABLE, "PRACTICE_NAME": "   ", "SUPERVISOR_IDS": " , "}
        ).require_runnable()
    assert _required(caught.value) == {"PRACTICE_NAME", "SUPERVISOR_IDS"}


def test_every_channel_only_when_said_so_with_a_star() -> None:
    settings = load_settings({**RUNNABLE, "ALLOWED_CHANNEL_IDS": " * "})

    assert settings.problems == () and settings.any_channel
    assert settings.channel_allowed("C0ANYWHERE1") and settings.channel_allowed("D0DIRECT01")
    settings.require_runnable()
    load_settings(
        {**RUNNABLE, "ALLOWED_CHANNEL_IDS": "*", "REMINDER_CHANNEL_ID": "C0X1"}
    ).require_runnable()


def test_the_digest_channel_must_be_a_staff_channel() -> None:
    settings = load_settings({**RUNNABLE, "REMINDER_CHANNEL_ID": "C0PUBLIC1"})
    with pytest.raises(ConfigError) as caught:
        settings.require_runnable()
    assert caught.value.problems == ["REMINDER_CHANNEL_ID must be one of ALLOWED_CHANNEL_IDS."]

    load_settings({**RUNNABLE, "REMINDER_CHANNEL_ID": "C0STAFF01"}).require_runnable()


def test_dotenv_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "# staff laptop\n"
        "PRACTICE_NAME=Maple Street Pediatrics\n"
        "PORT=4000\n"
        'PORTAL_URL="https://portal.example.com/register"\n'
        "REMINDER_TIME=09:15\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    for name in ("PRACTICE_NAME", "PORTAL_URL", "REMINDER_TIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORT", "5000")  # the real environment beats .env

    env = read_environment()
    assert env["PRACTICE_NAME"] == "Maple Street Pediatrics"
    assert env["PORTAL_URL"] == "https://portal.example.com/register"  # quotes removed
    assert env["PORT"] == "5000"

    settings = load_settings()  # env=None: reads .env in the working directory
    assert settings.problems == ()
    assert settings.practice_name == "Maple Street Pediatrics"
    assert settings.portal_url == "https://portal.example.com/register"
    assert settings.reminder_time == time(9, 15)
    assert settings.port == 5000


def test_no_dotenv_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRACTICE_PHONE", "(555) 010-0199")
    env = read_environment()
    assert env["PRACTICE_PHONE"] == "(555) 010-0199"
    assert read_environment(None)["PRACTICE_PHONE"] == "(555) 010-0199"


def test_settings_repr_hides_secrets() -> None:
    settings = load_settings(
        {**RUNNABLE, **SECRETS, "DATABASE_URL": "postgresql://u:SEKRITdbpassword@h/d"}
    )
    assert isinstance(settings, Settings)
    assert "SEKRIT" not in repr(settings)


@pytest.mark.parametrize("value", ["#frontdesk", "frontdesk", "C0STAFF01,#front-desk"])
def test_a_channel_name_is_refused_with_where_to_find_its_id(value: str) -> None:
    [problem] = load_settings({**RUNNABLE, "ALLOWED_CHANNEL_IDS": value}).problems

    assert problem.startswith("ALLOWED_CHANNEL_IDS takes channel IDs, not names (")
    assert "copy the Channel ID at the bottom of the About tab" in problem


def test_reminder_channel_is_one_channel_id() -> None:
    listed = load_settings({**RUNNABLE, "REMINDER_CHANNEL_ID": "C0REMIND1,C0REMIND2"})
    malformed = load_settings({**RUNNABLE, "REMINDER_CHANNEL_ID": "X0REMIND1"})

    assert listed.problems == ("REMINDER_CHANNEL_ID must be one channel ID, not a list (got 2).",)
    assert malformed.problems == (
        "REMINDER_CHANNEL_ID must be a channel ID (C…, or G… for an older private channel; "
        "bad: X0REMIND1).",
    )
    assert "comma list" not in " ".join([*listed.problems, *malformed.problems])


def test_a_range_with_host_bits_set_says_what_to_write_instead() -> None:
    settings = load_settings({"HL7_ALLOWED_SOURCES": "10.0.5.1/24"})
    assert settings.problems == (
        "HL7_ALLOWED_SOURCES has host bits set in 10.0.5.1/24: write the range as 10.0.5.0/24 "
        "or the one address as 10.0.5.1, so it allows exactly what you mean.",
    )
