"""`pinbot check`: is everything the bot needs in place? Each line says what, in plain words."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.config import ConfigError, Settings
from bot.db import Database, safe_url
from bot.delivery.smtp import MailError, check_sender, describe_security
from bot.documents.locale import available_languages, locale_problems

SMTP_CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_configuration(settings: Settings) -> list[CheckResult]:
    try:
        settings.require_runnable()
    except ConfigError as error:
        return [CheckResult("configuration", False, p) for p in error.problems]
    mode = "Socket Mode" if settings.socket_mode else f"HTTP mode on port {settings.port}"
    return [CheckResult("configuration", True, f"complete; the bot will run in {mode}")]


def check_channels(settings: Settings) -> list[CheckResult]:
    """Where commands work; ALLOWED_CHANNEL_IDS=* is allowed but said loudly (a missing value
    is check_configuration's)."""
    if settings.any_channel:
        return [
            CheckResult(
                "channels",
                True,
                "WARNING: ALLOWED_CHANNEL_IDS is *: pinbot's commands work in EVERY channel and "
                "direct message of the workspace, and anyone in them sees family records. "
                "List the staff channels' IDs instead.",
            )
        ]
    if not settings.allowed_channel_ids:
        return []
    return [
        CheckResult(
            "channels", True, "commands work only in " + ", ".join(settings.allowed_channel_ids)
        )
    ]


def check_database(settings: Settings) -> CheckResult:
    if any(problem.startswith("DATABASE_URL ") for problem in settings.problems):
        # Not parseable (or an unsupported backend): safe_url or the driver import would raise.
        return CheckResult(
            "database", False, "not checked: DATABASE_URL is not a sqlite or postgresql URL"
        )
    where = safe_url(settings.database_url)
    try:
        database = Database(settings.database_url)
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database.dispose()
    except SQLAlchemyError as error:
        first = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return CheckResult("database", False, f"can't reach {where}: {first}")
    return CheckResult("database", True, f"reached {where}")


def check_smtp(settings: Settings) -> CheckResult:
    smtp = settings.smtp
    if not smtp.configured:
        return CheckResult(
            "smtp",
            False,
            "SMTP_HOST and MAIL_FROM are not set: welcome emails "
            "can't be sent (PIN letters still print)",
        )
    try:
        check_sender(smtp, timeout=SMTP_CHECK_TIMEOUT)
    except MailError as error:
        return CheckResult("smtp", False, str(error))
    login = "logged in with SMTP_USERNAME" if smtp.username else "no login (SMTP_USERNAME unset)"
    return CheckResult(
        "smtp",
        True,
        f"{smtp.host}:{smtp.port} ({describe_security(smtp)}, {login}) accepts "
        "MAIL_FROM as the sender; no message was sent",
    )


def check_locales(default_language: str = "en") -> list[CheckResult]:
    errors, notes = locale_problems()
    shipped = f"letters in {', '.join(available_languages())}"
    if default_language not in available_languages():
        notes.append(f"DEFAULT_LANGUAGE={default_language} has no locale file: English is used")
    return [CheckResult("languages", False, error) for error in errors] or [
        CheckResult("languages", True, "; ".join([shipped, *notes]))
    ]


def check_feed(settings: Settings) -> list[CheckResult]:
    """The HL7 listener's settings (SPEC §8) and whether its port can be bound now; nothing
    when HL7_PORT is not set (no feed is a valid setup)."""
    feed = settings.feed
    if not feed.configured:
        return []
    sources = ", ".join(str(network) for network in feed.allowed_sources)
    where = f"{feed.bind}:{feed.port}"
    family = socket.AF_INET6 if ":" in feed.bind else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((feed.bind, feed.port or 0))
    except OSError as error:
        return [
            CheckResult(
                "hl7",
                False,
                f"can't listen on {where} ({error.strerror}): another program (or a running "
                f"pinbot) has the port, or HL7_BIND is not an address of this machine; "
                f"allowed sources {sources}",
            )
        ]
    return [CheckResult("hl7", True, f"listener {where} is free; allowed sources {sources}")]


def run_checks(
    settings: Settings, *, check_slack: Callable[[Settings], CheckResult]
) -> list[CheckResult]:
    """Every check; `check_slack` (auth.test) comes from the composition root, the one place
    that talks to Slack's Web API."""
    return [
        *check_configuration(settings),
        *check_channels(settings),
        check_database(settings),
        check_smtp(settings),
        check_slack(settings),
        *check_locales(settings.default_language),
        *check_feed(settings),
    ]
