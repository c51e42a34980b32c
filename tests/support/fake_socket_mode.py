"""A local Socket Mode endpoint: Slack's envelope protocol over a loopback websocket.

On connect it sends `hello`; `send_envelope` pushes a request to the connected app and returns
its envelope_id; the app's acks (`{"envelope_id": …, "payload": …}`) are recorded and can be
awaited with `wait_for_ack`. Point FakeSlack's apps.connections.open at it (the `fake_socket_mode`
fixture does) and run slack_bolt's SocketModeHandler against the pair.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.fake_slack import APP_ID, FakeSlack

# Slack pings Socket Mode clients; pinging often also wakes slack_sdk's builtin client from its
# blocking 3 s socket read, so SocketModeHandler.close() returns quickly.
PING_INTERVAL = 0.2


class FakeSocketMode:
    """Run with `with FakeSocketMode() as socket_mode:` or start()/stop()."""

    def __init__(self, app_id: str = APP_ID) -> None:
        self.app_id = app_id
        self.acks: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []  # everything the app sent, in order
        self.connection_count = 0
        self._open: list[ServerConnection] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="fake-socket-mode", daemon=True
        )
        self._thread.start()
        started.result(timeout=5)
        return self

    def _run(self, started: Future[None]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(self._serve())
        except BaseException as error:  # report start-up failures to start()
            started.set_exception(error)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.close()

    async def _serve(self) -> Server:
        return await serve(self._handle, "127.0.0.1", 0, ping_interval=PING_INTERVAL)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The ws:// URL apps.connections.open should return."""
        if self._server is None:
            raise RuntimeError("FakeSocketMode is not started")
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/"

    # -- the protocol ---------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        await connection.send(json.dumps(self._hello()))
        with self._changed:
            self._open.append(connection)
            self.connection_count += 1
            self._changed.notify_all()
        try:
            async for raw in connection:
                self._record(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._open.remove(connection)
                self._changed.notify_all()

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }

    def _record(self, message: dict[str, Any]) -> None:
        with self._changed:
            self.received.append(message)
            if "envelope_id" in message:
                self.acks[str(message["envelope_id"])] = message
            self._changed.notify_all()

    def _send(self, message: dict[str, Any], timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._open), timeout):
                raise AssertionError(f"no Socket Mode client connected within {timeout}s")
            connection = self._open[-1]
        if self._loop is None:
            raise RuntimeError("FakeSocketMode is not started")
        future = asyncio.run_coroutine_threadsafe(connection.send(json.dumps(message)), self._loop)
        future.result(timeout=timeout)

    def send_envelope(
        self,
        type: str = "slash_commands",
        payload: dict[str, Any] | None = None,
        *,
        accepts_response_payload: bool = True,
        timeout: float = 5,
    ) -> str:
        """Push a request (slash_commands | interactive | events_api) to the newest connection;
        waits up to `timeout` for one. Returns the envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload or {},
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        self._send(envelope, timeout)
        return envelope_id

    def send_disconnect(self, reason: str = "refresh_requested", timeout: float = 5) -> None:
        """Ask the app to reconnect, as Slack does before recycling a connection."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}
        self._send(message, timeout)

    def wait_for_connection(self, count: int = 1, timeout: float = 5) -> None:
        """Block until `count` connections have been made in total."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.connection_count >= count, timeout):
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} Socket Mode connection(s) "
                    f"(got {self.connection_count})"
                )

    def wait_for_ack(self, envelope_id: str, timeout: float = 5) -> dict[str, Any]:
        """The app's ack for `envelope_id` (with its optional `payload`)."""
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(
                    f"timed out after {timeout}s waiting for the ack of envelope {envelope_id}; "
                    f"received: {self.received}"
                )
            return self.acks[envelope_id]


@pytest.fixture(name="fake_socket_mode")
def fake_socket_mode_fixture(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    """Fixture `fake_socket_mode`: a started FakeSocketMode that the `fake_slack` fixture's
    apps.connections.open points to."""
    with FakeSocketMode() as socket_mode:
        fake_slack.socket_mode_url = socket_mode.url
        yield socket_mode
        fake_slack.socket_mode_url = None
