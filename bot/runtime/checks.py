"""`pinbot check`: is everything the bot needs in place? Each line says what, in plain words."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.certificates import certificate_info, server_context
from bot.config import ConfigError, Settings
from bot.db import Database, safe_url, why_unreachable
from bot.delivery.smtp import MailError, check_sender, describe_security
from bot.documents.locale import available_languages, locale_problems
from bot.feed.sources import is_any_ipv6, listening_socket
from models import utcnow

SMTP_CHECK_TIMEOUT = 10.0
TLS_RENEW_WITHIN = timedelta(days=30)
_ANYONE_ALLOWED = (
    "any program that can connect from HL7_ALLOWED_SOURCES may send messages (with loopback, "
    "any program on this machine)"
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    # Works, but kept less safely than it should be (e.g. a database file others can read).
    warning: bool = False

    @property
    def verdict(self) -> str:
        return "FAIL" if not self.ok else "WARN" if self.warning else "ok "


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
                "ALLOWED_CHANNEL_IDS is *: pinbot's commands work in EVERY channel and "
                "direct message of the workspace, and anyone in them sees family records. "
                "List the staff channels' IDs instead.",
                warning=True,
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
        why = why_unreachable(settings.database_url, error)
        return CheckResult("database", False, f"can't reach {where}: {why}")
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
    try:  # bound as the listener binds it (dual stack on ::)
        listening_socket(feed.bind, feed.port or 0).close()
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
    settings: Settings, *, check_slack: Callable[[Settings], list[CheckResult]]
) -> list[CheckResult]:
    """Every check; `check_slack` (tokens, Socket Mode, channel membership) comes from the
    composition root, the one place that talks to Slack's Web API."""
    from bot.runtime.keeping import check_keeping  # it builds CheckResults: imported late

    return [
        *check_configuration(settings),
        *check_channels(settings),
        check_database(settings),
        check_smtp(settings),
        *check_slack(settings),
        *check_locales(settings.default_language),
        *check_feed(settings),
        *check_feed_reach(settings),
        *check_feed_tls(settings),
        *check_keeping(settings),
    ]


def check_feed_reach(settings: Settings) -> list[CheckResult]:
    """Where the HL7 listener binds against who may connect: a contradiction is a FAIL;
    nothing when they agree or HL7_PORT is not set."""
    feed = settings.feed
    if not feed.configured or any(p.startswith("HL7_ALLOWED_SOURCES ") for p in settings.problems):
        return []  # no feed, or the sources are the default only because the value is bad
    try:
        bind = ip_address(feed.bind)
    except ValueError:
        return []  # a host name: check_feed says whether it binds
    if all(network.is_loopback for network in feed.allowed_sources) and not bind.is_loopback:
        where = "every network" if bind.is_unspecified else f"the network of {feed.bind}"
        return [_hl7(False, (
            f"contradictory: HL7_BIND={feed.bind} listens on {where}, but HL7_ALLOWED_SOURCES "
            "allows only this machine (loopback, its default), so an interface engine elsewhere "
            "is refused. Set HL7_ALLOWED_SOURCES to the engine's address, or HL7_BIND=127.0.0.1 "
            "if the engine (or a TLS tunnel) runs on this machine"
        ))]  # fmt: skip
    if bind.is_loopback and not any(net.is_loopback for net in feed.allowed_sources):
        return [_hl7(False, (
            f"contradictory: HL7_BIND={feed.bind} listens only to this machine, but "
            "HL7_ALLOWED_SOURCES allows only other machines, so nothing can connect. Set "
            "HL7_BIND to this machine's address on the engine's network (or 0.0.0.0)"
        ))]  # fmt: skip
    if is_any_ipv6(feed.bind) and not socket.has_dualstack_ipv6():
        return [_hl7(True, "HL7_BIND=:: takes IPv6 only on this system: for IPv4 use 0.0.0.0")]
    return []


def check_feed_tls(settings: Settings, now: datetime | None = None) -> list[CheckResult]:
    """The HL7 TLS files load (certificate and key as a pair, the client CA) and are not about
    to expire (a FAIL within 30 days); a note when the feed is plain MLLP."""
    feed = settings.feed
    if not feed.configured:
        return []
    if feed.tls_cert is None or feed.tls_key is None:
        return [_hl7(True, (
            f"plain MLLP (HL7_TLS_CERT not set): {_ANYONE_ALLOWED}; keep the engine on the "
            "practice LAN or a VPN, or use mutual TLS (HL7_TLS_CERT, HL7_TLS_KEY, "
            "HL7_TLS_CLIENT_CA)"
        ))]  # fmt: skip
    if any(problem.startswith("HL7_TLS_") for problem in settings.problems):
        return [_hl7(False, "TLS not checked: fix the HL7_TLS_ lines above first")]
    try:
        server_context(feed.tls_cert, feed.tls_key, feed.tls_client_ca)
    except (ssl.SSLError, OSError) as error:
        return [_hl7(False, f"TLS: HL7_TLS_CERT and HL7_TLS_KEY don't load ({error})")]
    now = now or utcnow()
    ok, expiry = _expiry("HL7_TLS_CERT", feed.tls_cert, now)
    results = [_hl7(ok, f"TLS 1.2 or newer; HL7_TLS_CERT and HL7_TLS_KEY load as a pair; {expiry}")]
    if feed.tls_client_ca is None:
        results.append(_hl7(True, (
            f"no HL7_TLS_CLIENT_CA: {_ANYONE_ALLOWED}; set it to require the engine's client "
            "certificate (mutual TLS)"
        )))  # fmt: skip
    else:
        ok, expiry = _expiry("HL7_TLS_CLIENT_CA", feed.tls_client_ca, now)
        results.append(_hl7(ok, (
            f"mutual TLS: only engines with a certificate signed by HL7_TLS_CLIENT_CA connect; "
            f"{expiry}"
        )))  # fmt: skip
    return results


def _expiry(variable: str, path: Path, now: datetime) -> tuple[bool, str]:
    info = certificate_info(path)
    left, on = info.expires - now, f"{info.expires:%Y-%m-%d}"
    if left <= timedelta(0):
        return False, f"{variable} ({info.subject}) EXPIRED on {on}: renew it"
    if left < TLS_RENEW_WITHIN:
        days = "less than a day" if left.days < 1 else f"{left.days} day{'s' * (left.days > 1)}"
        soon = f"expires on {on}, in {days}: renew it before then"
        return False, f"{variable} ({info.subject}) {soon}"
    return True, f"{variable} ({info.subject}) is valid until {on} ({left.days} days)"


def _hl7(ok: bool, detail: str) -> CheckResult:
    return CheckResult("hl7", ok, detail)
