"""Settings from the environment (or a `.env` file), per SPEC §2.

Every problem is one plain line naming the variable; secrets are never echoed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.certificates import NamedFile, file_problems
from bot.db import normalize_url, sqlite_file
from bot.text import EMAIL_ADDRESS

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///pinbot.db"
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
ANY_CHANNEL = "*"  # ALLOWED_CHANNEL_IDS=* : commands work in every channel (said by `pinbot check`)

NO_TOKENS_GUIDANCE = (
    "pinbot needs a Slack app to talk to. Create one from manifest.yml "
    "(https://api.slack.com/apps > Create New App > From a manifest), install it to your "
    "workspace, then set SLACK_BOT_TOKEN (xoxb-..., OAuth & Permissions) and either "
    "SLACK_APP_TOKEN (xapp-..., an app-level token with connections:write, for Socket Mode) "
    "or SLACK_SIGNING_SECRET (Basic Information, for HTTP mode), together with PORTAL_URL, "
    "PRACTICE_NAME, PRACTICE_PHONE, SUPERVISOR_IDS and ALLOWED_CHANNEL_IDS (the staff "
    "channel's ID, where commands work), in the environment or in a .env file "
    "(copy .env.example). To look around first without Slack, run `.venv/bin/pinbot demo` "
    "to load a sample practice."
)


SOCKET_OR_HTTP_GUIDANCE = (
    "SLACK_APP_TOKEN is required for Socket Mode (the manifest's default): Basic Information > "
    "App-Level Tokens > Generate, with connections:write, gives the xapp-... token. For HTTP "
    "mode instead, set SLACK_SIGNING_SECRET (Basic Information) and socket_mode_enabled: false "
    "in the manifest."
)


class ConfigError(Exception):
    """Configuration is missing or malformed; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    username: str | None
    password: str | None = field(repr=False)
    starttls: bool
    mail_from: str | None

    @property
    def configured(self) -> bool:
        return bool(self.host and self.mail_from)


Network = IPv4Network | IPv6Network
LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
ACCOUNT_FIELDS = ("PID-18", "GT1-2")


class _Listener:
    """A listener pinbot serves when its port is set, over TLS when a certificate is."""

    port: int | None
    tls_cert: Path | None

    @property
    def configured(self) -> bool:
        return self.port is not None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True)
class FeedSettings(_Listener):
    """The live EHR feed (SPEC §8): an HL7 v2 MLLP listener when `port` is set."""

    port: int | None
    bind: str
    allowed_sources: tuple[Network, ...]
    chart_id_type: str
    account_field: str  # "PID-18" or "GT1-2"
    silent_hours: int  # 0 = never warn
    # MLLP over TLS (HL7_TLS_CERT/KEY); with a client CA, mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None


@dataclass(frozen=True)
class PortalApiSettings(_Listener):
    """The portal API (SPEC §11): its own listener when `port` is set."""

    port: int | None
    bind: str
    tls_cert: Path | None
    tls_key: Path | None


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = field(repr=False)
    slack_app_token: str | None = field(repr=False)
    slack_signing_secret: str | None = field(repr=False)
    slack_api_url: str
    port: int
    database_url: str = field(repr=False)
    portal_url: str | None
    practice_name: str | None
    practice_phone: str | None
    timezone: ZoneInfo
    supervisor_ids: tuple[str, ...]
    allowed_channel_ids: tuple[str, ...]
    reminder_channel_id: str | None
    reminder_time: time
    smtp: SmtpSettings
    pin_ttl_days: int
    minor_age_limit: int
    pin_letter_ttl_hours: int
    feed: FeedSettings
    default_language: str
    portal_api: PortalApiSettings
    # Where a parent who already has a portal account signs in (add-child letters).
    portal_signin_url: str | None
    # The one secret kept outside the database (SPEC §12): PINBOT_KEY overrides the file.
    key_file: Path
    key_override: str | None = field(repr=False)
    # HTTP mode's bind address (Slack requests, /healthz).
    http_bind: str
    # age public keys `pinbot db backup` encrypts to (comma list); None: owner-only plain files.
    backup_recipient: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def any_channel(self) -> bool:
        """ALLOWED_CHANNEL_IDS is `*`: commands work in every channel and DM."""
        return self.allowed_channel_ids == (ANY_CHANNEL,)

    def channel_allowed(self, channel_id: str | None) -> bool:
        """Whether commands work in `channel_id`; unset ALLOWED_CHANNEL_IDS allows none."""
        return self.any_channel or (
            channel_id is not None and channel_id in self.allowed_channel_ids
        )

    @property
    def has_slack_tokens(self) -> bool:
        return bool(self.slack_bot_token or self.slack_app_token or self.slack_signing_secret)

    def require_runnable(self) -> None:
        """Raise ConfigError listing everything `pinbot run` cannot start without."""
        problems = list(self.problems)
        required = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "PORTAL_URL": self.portal_url,
            "PRACTICE_NAME": self.practice_name,
            "PRACTICE_PHONE": self.practice_phone,
            "SUPERVISOR_IDS": self.supervisor_ids,
        }
        if not self.socket_mode and not self.slack_signing_secret:
            problems.append(SOCKET_OR_HTTP_GUIDANCE)
        for name, value in required.items():
            if not value and not any(p.startswith(name + " ") for p in problems):
                problems.append(
                    f"{name} is required to run the bot; set it in the environment or in .env."
                )
        if not self.allowed_channel_ids and not any(
            p.startswith("ALLOWED_CHANNEL_IDS ") for p in problems
        ):
            problems.append(
                "ALLOWED_CHANNEL_IDS is required to run the bot: the staff channels' IDs "
                "(C…/G…), or * to let commands work in every channel."
            )
        if self.reminder_channel_id and not self.channel_allowed(self.reminder_channel_id):
            # The digest names patients: it goes only to a channel staff commands work in.
            problems.append("REMINDER_CHANNEL_ID must be one of ALLOWED_CHANNEL_IDS.")
        if problems:
            raise ConfigError(problems)


def _split_ids(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


class _Explained(ValueError):
    """A malformed value whose message says exactly what is wrong (after the variable's name)."""


class _Reader:
    """Reads one variable at a time and collects a sentence for each bad one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "")
        value = value.strip() if value else ""
        return value or default

    def parsed(self, name: str, default: Any, parse: Callable[[str], Any], expect: str) -> Any:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except _Explained as explained:
            self.problems.append(f"{name} {explained}")
            return default
        except (ValueError, ZoneInfoNotFoundError):
            self.problems.append(f"{name} must be {expect} (got {raw!r}).")
            return default

    def secret(self, name: str, prefix: str) -> str | None:
        value = self.text(name)
        if value and not value.startswith(prefix):
            # Never echo the value: it may be a real secret pasted into the wrong variable.
            self.problems.append(f"{name} must start with '{prefix}'.")
        return value

    def ids(self, name: str, pattern: re.Pattern[str], expect: str) -> tuple[str, ...]:
        values = _split_ids(self.text(name))
        bad = [v for v in values if not pattern.match(v)]
        if bad:
            listed = ", ".join(bad)
            self.problems.append(f"{name} must be a comma list of {expect} (bad: {listed}).")
        return tuple(v for v in values if pattern.match(v))

    def channel_ids(self, name: str, *, one: bool = False) -> tuple[str, ...]:
        """Channel IDs (C…/G…/D…); a channel's name ("#frontdesk") is refused with where to
        find its ID, which stays the same when the channel is renamed."""
        values = _split_ids(self.text(name))
        bad = [v for v in values if not _CHANNEL_ID.match(v)]
        if one and len(values) > 1:
            self.problems.append(f"{name} must be one channel ID, not a list (got {len(values)}).")
        elif bad and all(v.startswith("#") or v != v.upper() for v in bad):
            self.problems.append(
                f"{name} takes channel IDs, not names ({', '.join(bad)}): in Slack, open the "
                "channel, click its name, and copy the Channel ID at the bottom of the About "
                "tab (it looks like C0123ABCD)."
            )
        elif bad:
            expect = "a channel ID" if one else "a comma list of channel IDs"
            self.problems.append(
                f"{name} must be {expect} (C…, or G… for an older private channel; bad: "
                f"{', '.join(bad)})."
            )
        return tuple(v for v in values if _CHANNEL_ID.match(v))

    def database_url(self, name: str, default: str) -> str:
        raw = self.text(name, default) or default
        try:
            url = make_url(raw.replace("postgres://", "postgresql://", 1))
            supported = url.get_backend_name() in {"sqlite", "postgresql"}
        except (ArgumentError, ValueError):
            supported = False
        if not supported:
            # Never echo the value: a database URL may carry a password.
            self.problems.append(
                f"{name} must be a sqlite:///FILE or postgresql://user@host/db URL."
            )
        return raw


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    if not raw.isdigit():
        raise ValueError(raw)
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError(raw)
    return value


def _zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, OSError) as error:  # "America" is a directory: OSError
        raise ValueError(raw) from error


def _networks(raw: str) -> tuple[Network, ...]:
    """'10.0.4.12, 10.0.5.0/24' -> networks; a bare address is a /32 (or /128). A range with
    host bits set (10.0.5.1/24) is refused: read loosely it would silently allow all of
    10.0.5.0/24 when one address was probably meant."""
    return tuple(_network(part.strip()) for part in raw.split(",") if part.strip())


def _network(text: str) -> Network:
    try:
        return ip_network(text)
    except ValueError:
        loose = ip_network(text, strict=False)  # still not an address at all: the generic line
        address = text.split("/")[0]
        raise _Explained(
            f"has host bits set in {text}: write the range as {loose} or the one address as "
            f"{address}, so it allows exactly what you mean."
        ) from None


def _account_field(raw: str) -> str:
    value = raw.upper().replace(".", "-")
    if value not in ACCOUNT_FIELDS:
        raise ValueError(raw)
    return value


def _language(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", raw):
        raise ValueError(raw)
    return raw.lower()


def _clock(raw: str) -> time:
    hours, minutes = raw.split(":")
    return time(int(hours), int(minutes))


def _bind_address(raw: str) -> str:
    return str(ip_address(raw))


def _url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError(raw)
    return raw


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _email(raw: str) -> str:
    address = raw.rsplit("<", 1)[-1].rstrip(">").strip()
    if not EMAIL_ADDRESS.fullmatch(address):
        raise ValueError(raw)
    return raw


def _age_recipients(raw: str) -> str:
    from bot.backup import parse_recipients  # pyrage: loaded only when a recipient is set

    if not parse_recipients(raw):
        raise ValueError("no recipient")
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def default_key_file(database_url: str) -> Path:
    """pinbot.key beside a SQLite database file, else ./pinbot.key (SPEC §2)."""
    try:
        database = sqlite_file(normalize_url(database_url))
    except (ArgumentError, ValueError):
        database = None
    return database.parent / "pinbot.key" if database else Path("pinbot.key")


def read_environment(env_file: str | os.PathLike[str] | None = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins)."""
    values: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse every variable; malformed ones are collected in `Settings.problems`."""
    read = _Reader(read_environment() if env is None else env)
    api_url = read.parsed("SLACK_API_URL", DEFAULT_SLACK_API_URL, _url, "an http(s) URL")
    smtp = SmtpSettings(
        host=read.text("SMTP_HOST"),
        port=read.parsed("SMTP_PORT", 587, _port, "a port number"),
        username=read.text("SMTP_USERNAME"),
        password=read.text("SMTP_PASSWORD"),
        starttls=read.parsed("SMTP_STARTTLS", True, _bool, "true or false"),
        mail_from=read.parsed("MAIL_FROM", None, _email, "an email address"),
    )
    settings = Settings(
        slack_bot_token=read.secret("SLACK_BOT_TOKEN", "xoxb-"),
        slack_app_token=read.secret("SLACK_APP_TOKEN", "xapp-"),
        slack_signing_secret=read.text("SLACK_SIGNING_SECRET"),
        slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
        port=read.parsed("PORT", 3000, _port, "a port number"),
        database_url=read.database_url("DATABASE_URL", DEFAULT_DATABASE_URL),
        portal_url=read.parsed("PORTAL_URL", None, _url, "an http(s) URL"),
        practice_name=read.text("PRACTICE_NAME"),
        practice_phone=read.text("PRACTICE_PHONE"),
        timezone=read.parsed(
            "PRACTICE_TIMEZONE",
            ZoneInfo("America/New_York"),
            _zone,
            "an IANA time zone such as America/New_York",
        ),
        supervisor_ids=read.ids(
            "SUPERVISOR_IDS", _SLACK_ID, "Slack user IDs (U…/W…) or user group IDs (S…)"
        ),
        allowed_channel_ids=(ANY_CHANNEL,)
        if read.text("ALLOWED_CHANNEL_IDS") == ANY_CHANNEL
        else read.channel_ids("ALLOWED_CHANNEL_IDS"),
        reminder_channel_id=(read.channel_ids("REMINDER_CHANNEL_ID", one=True) or (None,))[0],
        reminder_time=read.parsed("REMINDER_TIME", time(8, 0), _clock, "a time as HH:MM"),
        smtp=smtp,
        pin_ttl_days=read.parsed("PIN_TTL_DAYS", 90, _non_negative_int, "a whole number ≥ 0"),
        minor_age_limit=read.parsed("MINOR_AGE_LIMIT", 18, _non_negative_int, "a whole number ≥ 0"),
        pin_letter_ttl_hours=read.parsed(
            "PIN_LETTER_TTL_HOURS", 24, _non_negative_int, "a whole number ≥ 0"
        ),
        feed=FeedSettings(
            port=read.parsed("HL7_PORT", None, _port, "a port number"),
            bind=read.text("HL7_BIND", "127.0.0.1") or "127.0.0.1",
            allowed_sources=read.parsed(
                "HL7_ALLOWED_SOURCES",
                LOOPBACK,
                _networks,
                "a comma list of IP addresses or CIDR ranges such as 10.0.4.12, 10.0.5.0/24",
            ),
            chart_id_type=(read.text("HL7_CHART_ID_TYPE", "MR") or "MR").upper(),
            account_field=read.parsed(
                "HL7_ACCOUNT_FIELD", "PID-18", _account_field, "PID-18 or GT1-2"
            ),
            silent_hours=read.parsed(
                "HL7_SILENT_HOURS", 24, _non_negative_int, "a whole number of hours ≥ 0"
            ),
            tls_cert=read.parsed("HL7_TLS_CERT", None, _path, "a file path"),
            tls_key=read.parsed("HL7_TLS_KEY", None, _path, "a file path"),
            tls_client_ca=read.parsed("HL7_TLS_CLIENT_CA", None, _path, "a file path"),
        ),
        default_language=read.parsed(
            "DEFAULT_LANGUAGE", "en", _language, "a two-letter ISO 639-1 code such as en or es"
        ),
        portal_api=PortalApiSettings(
            port=read.parsed("PORTAL_API_PORT", None, _port, "a port number"),
            bind=read.text("PORTAL_API_BIND", "127.0.0.1") or "127.0.0.1",
            tls_cert=read.parsed("PORTAL_API_TLS_CERT", None, _path, "a file path"),
            tls_key=read.parsed("PORTAL_API_TLS_KEY", None, _path, "a file path"),
        ),
        portal_signin_url=None,
        key_file=Path("pinbot.key"),
        key_override=read.text("PINBOT_KEY"),
        http_bind=read.parsed(
            "HTTP_BIND", "0.0.0.0", _bind_address, "an IP address such as 0.0.0.0 or 127.0.0.1"
        ),
        backup_recipient=read.parsed(
            "BACKUP_RECIPIENT", None, _age_recipients, "a comma list of age public keys (age1…)"
        ),
        problems=(),
    )
    settings = replace(
        settings,
        portal_signin_url=read.parsed(
            "PORTAL_SIGNIN_URL", settings.portal_url, _url, "an http(s) URL"
        ),
        key_file=read.parsed(
            "PINBOT_KEY_FILE", default_key_file(settings.database_url), _path, "a file path"
        ),
    )
    read.problems += _feed_tls_problems(settings.feed)
    read.problems += _portal_api_problems(settings.portal_api)
    return replace(settings, problems=tuple(read.problems))


def _feed_tls_problems(feed: FeedSettings) -> list[str]:
    return file_problems(
        NamedFile("HL7_TLS_CERT", feed.tls_cert),
        NamedFile("HL7_TLS_KEY", feed.tls_key),
        NamedFile("HL7_TLS_CLIENT_CA", feed.tls_client_ca),
    )


def _portal_api_problems(api: PortalApiSettings) -> list[str]:
    """The certificate and key checked as the feed's are; TLS also needs a port to serve on."""
    problems = file_problems(
        NamedFile("PORTAL_API_TLS_CERT", api.tls_cert),
        NamedFile("PORTAL_API_TLS_KEY", api.tls_key),
    )
    if (api.tls_cert or api.tls_key) and not api.configured:
        problems.append(
            "PORTAL_API_TLS_CERT/KEY are set but PORTAL_API_PORT is not: set the port the "
            "portal API listens on."
        )
    return problems
