"""The real app in Socket Mode: a slash command arrives as an envelope over a local websocket
speaking Slack's protocol, is acked with its envelope id, and the card reaches Slack."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import NamedTuple

from bot.config import load_settings
from bot.db import Database
from bot.runtime.process import make_services
from handlers.app import create_app, make_client
from handlers.socket_mode import SocketModeServing
from tests.support.ack_poll import DispatchSleeps, dispatch_sleeps_fixture
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode, fake_socket_mode_fixture
from tests.support.slack_requests import STAFF_USER_ID, command_payload
from tests.support.smtp_server import SmtpServer
from tests.support.stack import stack_env

FIXTURES = (fake_socket_mode_fixture, dispatch_sleeps_fixture)  # imported for their fixtures


class SocketModeBot(NamedTuple):
    database: Database
    handler: SocketModeServing


@contextmanager
def socket_mode_bot(
    database_url: str, fake_slack: FakeSlack, fake_socket_mode: FakeSocketMode, smtp: SmtpServer
) -> Iterator[SocketModeBot]:
    """The real app connected to the local Socket Mode peer, served as `pinbot run` serves it."""
    env = stack_env(database_url, fake_slack, smtp, SLACK_APP_TOKEN="xapp-1-test-token")
    del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
    settings = load_settings(env)
    settings.require_runnable()
    database = Database(settings.database_url)
    fake_slack.add_user(STAFF_USER_ID)
    client = make_client(settings)
    app = create_app(make_services(settings, database, client), client)
    handler = SocketModeServing(app, settings.slack_app_token or "")
    try:
        handler.connect()
        fake_socket_mode.wait_for_connection()
        yield SocketModeBot(database, handler)
    finally:
        handler.close()
        database.dispose()


def add_socketwells(database: Database, count: int) -> None:
    with database.transaction() as session:
        for number in range(1, count + 1):
            family = make_family(session, f"SM-{number}")
            make_guardian(session, family, "Lark", "Socketwell", email=f"lark{number}@example.com")
            make_patient(session, family, "Jay", date(2020, 1, number), last="Socketwell")


def test_family_command_over_socket_mode(
    database_url: str,
    fake_slack: FakeSlack,
    fake_socket_mode: FakeSocketMode,
    smtp_server: SmtpServer,
) -> None:
    with socket_mode_bot(database_url, fake_slack, fake_socket_mode, smtp_server) as bot:
        add_socketwells(bot.database, 1)
        envelope_id = fake_socket_mode.send_envelope(
            "slash_commands", command_payload("/family", "socketwell")
        )
        assert fake_socket_mode.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
        card = fake_slack.wait_for("chat.postMessage")[0]
        assert "Socketwell" in str(card.args["blocks"])
        assert fake_slack.last("apps.connections.open").token == "xapp-1-test-token"


def test_a_list_is_acked_over_socket_mode_without_a_poll(
    database_url: str,
    fake_slack: FakeSlack,
    fake_socket_mode: FakeSocketMode,
    smtp_server: SmtpServer,
    dispatch_sleeps: DispatchSleeps,
) -> None:
    """Issue 22 in Socket Mode: the list travels in the envelope's ack, sent when the listener
    calls ack(); Bolt's runner would poll for it with time.sleep(0.01) first."""
    with socket_mode_bot(database_url, fake_slack, fake_socket_mode, smtp_server) as bot:
        add_socketwells(bot.database, 2)
        envelope_id = fake_socket_mode.send_envelope(
            "slash_commands", command_payload("/family", "socketwell")
        )
        acked = fake_socket_mode.wait_for_ack(envelope_id)
        assert acked["payload"]["text"] == "2 families match."
        assert dispatch_sleeps.callers == []


def sends_at_once(handler: SocketModeServing) -> bool:
    session = handler.client.current_session
    assert session is not None and session.sock is not None
    return bool(session.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_every_socket_mode_connection_sends_an_ack_at_once(
    database_url: str,
    fake_slack: FakeSlack,
    fake_socket_mode: FakeSocketMode,
    smtp_server: SmtpServer,
) -> None:
    """With Nagle's algorithm on, an ack written soon after a pong waited for the peer's
    delayed ACK (up to 40 ms; the lists' p99 through the local peer): the connection, and
    the one made when Slack asks the app to reconnect, must have it off."""
    with socket_mode_bot(database_url, fake_slack, fake_socket_mode, smtp_server) as bot:
        first = bot.handler.client.current_session
        assert sends_at_once(bot.handler)
        fake_socket_mode.send_disconnect()
        fake_socket_mode.wait_for_connection(count=2)
        # The peer counts the connection before the client has taken it up and set it.
        deadline = time.monotonic() + 5
        while not (reconnected := bot.handler.client.current_session is not first) or not (
            sends_at_once(bot.handler)
        ):
            assert time.monotonic() < deadline, f"reconnected: {reconnected}, Nagle still on"
            time.sleep(0.01)
