"""What the app factory logs when `pinbot run` starts it, as an IT person reads it."""

from __future__ import annotations

import logging

import pytest
from slack_bolt import App
from slack_bolt.logger import get_bolt_logger

from handlers.app import create_app, make_client
from tests.support.stack import Stack


def test_the_token_in_the_environment_starts_bolt_without_a_false_warning(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As a .env file or a systemd EnvironmentFile leaves it: Bolt reads it on its own too.
    monkeypatch.setenv("SLACK_BOT_TOKEN", stack.settings.slack_bot_token or "")
    caplog.set_level(logging.INFO)
    create_app(stack.services, make_client(stack.settings))
    get_bolt_logger(App).warning("another warning of Bolt's")

    bolt = [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")]
    assert bolt == ["another warning of Bolt's"]  # only the one false line is dropped
