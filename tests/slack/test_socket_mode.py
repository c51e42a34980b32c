"""The real app in Socket Mode: a slash command arrives as an envelope over a local websocket
speaking Slack's protocol, is acked with its envelope id, and the card reaches Slack."""

from __future__ import annotations

from datetime import date

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.config import load_settings
from bot.db import Database
from bot.runtime.process import make_services
from handlers.app import create_app, make_client
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode, fake_socket_mode_fixture
from tests.support.slack_requests import STAFF_USER_ID, command_payload
from tests.support.smtp_server import SmtpServer
from tests.support.stack import stack_env

FIXTURES = (fake_socket_mode_fixture,)  # imported for its fixture


def test_family_command_over_socket_mode(
    database_url: str,
    fake_slack: FakeSlack,
    fake_socket_mode: FakeSocketMode,
    smtp_server: SmtpServer,
) -> None:
    env = stack_env(database_url, fake_slack, smtp_server, SLACK_APP_TOKEN="xapp-1-test-token")
    del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
    settings = load_settings(env)
    settings.require_runnable()
    database = Database(settings.database_url)
    with database.transaction() as session:
        family = make_family(session, "SM-1")
        make_guardian(session, family, "Lark", "Socketwell", email="lark@example.com")
        make_patient(session, family, "Jay", date(2020, 1, 1), last="Socketwell")
    fake_slack.add_user(STAFF_USER_ID)
    client = make_client(settings)
    app = create_app(make_services(settings, database, client), client)
    handler = SocketModeHandler(app, settings.slack_app_token)
    try:
        handler.connect()
        fake_socket_mode.wait_for_connection()
        envelope_id = fake_socket_mode.send_envelope(
            "slash_commands", command_payload("/family", "socketwell")
        )
        assert fake_socket_mode.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
        card = fake_slack.wait_for("chat.postMessage")[0]
        assert "Socketwell" in str(card.args["blocks"])
        assert fake_slack.last("apps.connections.open").token == "xapp-1-test-token"
    finally:
        handler.close()
        database.dispose()
