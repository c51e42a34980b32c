"""The whole bot as Slack sees it: the real Bolt app served by waitress on loopback, its Web
API pointed at FakeSlack, welcome emails to a real local SMTP server, on SQLite or PostgreSQL.

Tests talk to it only the way Slack does (signed HTTP requests) and look at what came out
(Web API calls, uploaded PDFs, received emails, database rows)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from bot.config import Settings, load_settings
from bot.db import Database
from bot.runtime.process import make_services
from bot.services import Services
from handlers.app import create_app, make_client
from handlers.serving import make_wsgi_app
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import (
    CHANNEL_ID,
    STAFF_USER_ID,
    Response,
    SlackSender,
    block_actions_payload,
    serve_wsgi,
    view_submission_payload,
)
from tests.support.smtp_server import SmtpServer

T = TypeVar("T")
SIGNING_SECRET = "test-signing-secret-not-real"
SUPERVISOR_ID = "U0SUPER01"
PORTAL_URL = "https://portal.example.org/register"


# A synthetic secret for tests (SPEC §12): PINBOT_KEY overrides the key file.
TEST_PINBOT_KEY = "test-only-pinbot-key-0123456789abcdef"


def stack_env(
    database_url: str, fake_slack: FakeSlack, smtp: SmtpServer, **overrides: str
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.url,
        "DATABASE_URL": database_url,
        "PORTAL_URL": PORTAL_URL,
        "PRACTICE_NAME": "Maple Grove Pediatrics (test)",
        "PRACTICE_PHONE": "555-010-9999",
        "SUPERVISOR_IDS": SUPERVISOR_ID,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "MAIL_FROM": "Maple Grove <pinbot@clinic.example.org>",
        "PINBOT_KEY": TEST_PINBOT_KEY,
        # Required to run; tests post from many channels (the scoping tests set a list).
        "ALLOWED_CHANNEL_IDS": "*",
        **overrides,
    }


@dataclass
class Stack:
    settings: Settings
    database: Database
    services: Services
    fake_slack: FakeSlack
    smtp: SmtpServer
    sender: SlackSender
    sent: list[Response] = field(default_factory=list)

    def command(self, command: str, text: str, **fields: str) -> Response:
        fields.setdefault("channel_id", CHANNEL_ID)
        return self.sender.command(command, text, **fields)

    def click(self, action_id: str, value: str | None, **fields: Any) -> Response:
        fields.setdefault("response_url", self.fake_slack.response_url("actions"))
        return self.sender.block_action(block_actions_payload(action_id, value, **fields))

    def opened_view(self, index: int = -1) -> dict[str, Any]:
        """The view the bot opened (as Slack returned it, with its id)."""
        return self.fake_slack.calls_to("views.open")[index].response["view"]

    def submit(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], **fields: Any
    ) -> Response:
        payload = view_submission_payload(view["callback_id"], values, view=view, **fields)
        return self.sender.view_submission(payload)

    def deliver(self) -> int:
        """Run the outbox now (the production worker also runs it in the background)."""
        return self.services.outbox.deliver_due()

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        return [call.args for call in self.fake_slack.calls_to(method)]

    def cards(self) -> list[dict[str, Any]]:
        return [
            a
            for a in self.posted()
            if any(b.get("block_id") == "family_actions" for b in _blocks(a))
        ]


def eventually(check: Callable[[], T], timeout: float = 5) -> T:
    """Poll `check` until it returns without an AssertionError: the bot finishes its work
    after ack(), on its own threads."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def build_stack(
    database_url: str, fake_slack: FakeSlack, smtp: SmtpServer, **overrides: str
) -> Iterator[Stack]:
    fake_slack.add_user(STAFF_USER_ID, name="frontdesk")
    fake_slack.add_user(SUPERVISOR_ID, name="supervisor")
    settings = load_settings(stack_env(database_url, fake_slack, smtp, **overrides))
    assert not settings.problems, settings.problems
    database = Database(settings.database_url)
    client = make_client(settings)
    services = make_services(settings, database, client)
    app = create_app(services, client)
    with serve_wsgi(make_wsgi_app(app, database), threads=4) as base_url:
        yield Stack(
            settings=settings,
            database=database,
            services=services,
            fake_slack=fake_slack,
            smtp=smtp,
            sender=SlackSender(base_url, SIGNING_SECRET, response_urls=fake_slack.response_url),
        )
    database.dispose()


@pytest.fixture
def stack(database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server)
