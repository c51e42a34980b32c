"""Socket Mode serving of the Bolt app: Bolt's own adapter, on a connection with Nagle's
algorithm off.

An ack that carries the answer (a list of families, a hint, a dialog's errors) is one small
websocket frame, often written soon after a pong to Slack's ping, which nothing answers and
the server acknowledges late (delayed ACK, up to 40 ms on Linux). With Nagle on, the kernel
holds the frame until that acknowledgement comes: measured through a local peer, the lists'
p99 was 44-46 ms against 13-16 ms without (bench/RESULTS.md, "Issue 22 in Socket Mode").
slack_sdk's builtin client sets TCP_NODELAY only on a connection through a proxy
(slack_sdk/socket_mode/builtin/internals.py, `_establish_new_socket_connection`); waitress
sets it on every HTTP connection, so HTTP mode never had the stall.
"""

from __future__ import annotations

import socket

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin import SocketModeClient

BOLT_PING_INTERVAL = 10  # seconds: SocketModeHandler's default (slack_sdk's client has 5)


class _NoDelayClient(SocketModeClient):
    """slack_sdk's builtin client; every connection it makes (the first and each reconnect
    go through `connect`) sends each frame at once."""

    def connect(self) -> None:
        super().connect()
        session = self.current_session
        if session is not None and session.sock is not None:
            session.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SocketModeServing(SocketModeHandler):
    """Bolt's SocketModeHandler (`start`, `connect`, `close`, and its `handle`, which runs
    the app) on `_NoDelayClient`. Bolt's __init__ builds its client and starts that client's
    threads at once, so the same construction is done here with ours in its place."""

    def __init__(self, app: App, app_token: str) -> None:
        self.app = app
        self.app_token = app_token
        self.client = _NoDelayClient(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            proxy=app.client.proxy,
            ping_interval=BOLT_PING_INTERVAL,
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
