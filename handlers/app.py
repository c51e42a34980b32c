"""The app factory: builds the Bolt app, installs middleware and registers every handler
module once. Nothing registers itself at import time."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_bolt.logger import get_bolt_logger
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.config import Settings
from bot.services import Services
from handlers import ack_runner, errors, family, home, issue_pins, middleware, name_fix, pinbot
from handlers.directory import Directory

log = logging.getLogger(__name__)

HANDLER_MODULES = (family, issue_pins, name_fix, pinbot, home)


def make_client(settings: Settings) -> WebClient:
    """A Web API client that rides out rate limits, 5xx and dropped connections."""
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class _SameTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment on its own and, handed our client (made
    from that same token), warns at every start that the token "will be unused" (App.__init__
    in slack_bolt/app/app.py). True of its own copy only: in the log an IT person reads on
    day one it looks like a misconfiguration, so that one line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_SAME_TOKEN_WARNING = _SameTokenWarning()


def create_app(services: Services, client: WebClient, *, token_verification: bool = True) -> App:
    settings = services.settings
    get_bolt_logger(App).addFilter(_SAME_TOKEN_WARNING)  # a no-op when already there
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        # Socket Mode requests come over an authenticated websocket, not signed HTTP.
        request_verification_enabled=not settings.socket_mode,
        token_verification_enabled=token_verification,
        # Listeners may run after ack(); slow work (uploads, SMTP) never delays the ack.
        process_before_response=False,
        # A click or submission no listener takes (an older version's button) goes to the
        # error handler, which answers 200 with a sentence instead of Bolt's bare 404.
        raise_error_for_unhandled_request=True,
    )
    ack_runner.install(app)  # answers in an ack's body leave without Bolt's 10 ms poll
    directory = Directory(client, settings.supervisor_ids)
    middleware.install(app, services, directory)
    errors.register(app)
    for module in HANDLER_MODULES:
        module.register(app)
    return app
