"""What the end-to-end benchmarks run against, all on loopback: the bot as a separate process
(`pinbot run` in HTTP mode: waitress, the outbox worker, the scheduler, exactly as deployed),
the bare-Bolt floor app the same way, the test suite's fake Slack Web API and local SMTP
server in this process, with hooks that time when a given message, upload or email arrives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from bench import stores
from tests.support.fake_slack import FakeSlack, Reply
from tests.support.fake_socket_mode import FakeSocketMode
from tests.support.slack_requests import SlackSender
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import SIGNING_SECRET, SUPERVISOR_ID, stack_env

STAFF_IDS = tuple(f"U0BENCH{n:02d}" for n in range(40))
APP_TOKEN = "xapp-1-bench"  # Socket Mode: the fake Slack takes any app-level token
UPLOAD_DONE = "files.completeUploadExternal"


class _Arrivals:
    """Waiters keyed by (kind, key): the first arrival of that key sets the waiter's time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], _Waiter] = {}

    def expect(self, kind: str, key: str) -> _Waiter:
        waiter = _Waiter()
        with self._lock:
            self._waiting[(kind, key)] = waiter
        return waiter

    def arrived(self, kind: str, key: str | None) -> None:
        if key is None:
            return
        with self._lock:
            waiter = self._waiting.pop((kind, key), None)
        if waiter is not None:
            waiter.at = time.perf_counter()
            waiter.event.set()


@dataclass
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    at: float = 0.0

    def wait(self, timeout: float = 30) -> float:
        if not self.event.wait(timeout):
            raise TimeoutError("nothing arrived in time")
        return self.at


class BenchSlack(FakeSlack):
    """The test suite's fake Slack, keeping no call history (a load run makes thousands) and
    telling `arrivals` when a message is posted in a channel or an upload completes."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals = _Arrivals()
        self.counts: dict[str, int] = {}
        self.last_response: dict[str, dict[str, Any]] = {}

    def _record(self, method: str, args: dict[str, Any], token: str | None, reply: Reply) -> Reply:
        with self._lock:
            self.counts[method] = self.counts.get(method, 0) + 1
        if method == "views.publish":  # the Home tab, keyed by the user it was published to
            self.arrivals.arrived("publish", str(args.get("user_id")))
        if method in ("chat.postMessage", UPLOAD_DONE, "views.open"):
            response = json.loads(reply.body) if reply.body.startswith(b"{") else {}
            if method == "chat.postMessage":
                channel = str(args.get("channel"))
                with self._lock:
                    self.last_response[channel] = response
                self.arrivals.arrived("message", channel)
            elif method == UPLOAD_DONE:
                self.arrivals.arrived("upload", str(args.get("channel_id")))
            else:
                view = response.get("view") or {}
                channel = _meta_channel(str(view.get("private_metadata") or ""))
                with self._lock:
                    self.last_response[f"view:{channel}"] = response
                self.arrivals.arrived("view", channel)
        return reply


class BenchSocketMode(FakeSocketMode):
    """The test suite's Socket Mode peer, noting when each envelope's ack came (perf_counter):
    for one app, as `serve` starts one app per peer."""

    def __init__(self) -> None:
        super().__init__()
        self.acked_at: dict[str, float] = {}

    def _record(self, message: dict[str, Any]) -> None:
        if "envelope_id" in message:
            self.acked_at[str(message["envelope_id"])] = time.perf_counter()
        super()._record(message)


def _meta_channel(meta: str) -> str | None:
    try:
        return str(json.loads(meta).get("channel_id"))
    except (ValueError, AttributeError):
        return None


class BenchSmtp(SmtpServer):
    """The test suite's SMTP server; tells `arrivals` each recipient whose message it took."""

    def __init__(self, arrivals: _Arrivals) -> None:
        super().__init__(port=free_port())
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.received.clear()  # keep nothing: a load run sends many
        for address in envelope.rcpt_tos:
            self.arrivals.arrived("email", address.lower())
        return reply


@contextmanager
def serving(slack: FakeSlack, smtp: SmtpServer, staff_ids: Iterable[str]) -> Iterator[None]:
    """Start the fake Slack (with the staff and a supervisor as users) and the SMTP server;
    stop both afterwards."""
    slack.start()
    for user in staff_ids:
        slack.add_user(user, name=f"staff-{user[-4:]}")
    slack.add_user(SUPERVISOR_ID, name="supervisor")
    controller = Controller(smtp, hostname=smtp.host, port=smtp.port, ready_timeout=10)
    controller.start()
    try:
        yield
    finally:
        controller.stop()
        slack.stop()


@contextmanager
def slack_and_smtp() -> Iterator[tuple[BenchSlack, BenchSmtp]]:
    slack = BenchSlack()
    smtp = BenchSmtp(slack.arrivals)
    with serving(slack, smtp, STAFF_IDS):
        yield slack, smtp


@dataclass
class Served:
    """A server process on loopback and a signed-request sender for it."""

    process: subprocess.Popen[bytes]
    base_url: str
    sender: SlackSender
    log_path: Path

    def rss_kib(self) -> dict[str, int]:
        """Current (VmRSS) and peak (VmHWM) resident memory of the process, KiB."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def cpu_seconds(self) -> float:
        """User + system CPU the process and its live child processes (the portal API's) have
        used so far, every thread, from /proc."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if stat.parent.name == str(self.process.pid) or fields[1] == str(self.process.pid):
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Ask the bot to stop; kill it if it hasn't within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    log_path: Path,
    *,
    waiting_for: str,
    timeout: float = 120,
) -> None:
    """Until `ready()` says so; an exited process fails at once, with the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}; see {log_path}:\n"
                + log_path.read_text()[-2000:]
            )
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{waiting_for} after {timeout}s; see {log_path}")


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 120
) -> None:
    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    wait_ready(process, healthy, log_path, waiting_for="server not healthy", timeout=timeout)


@contextmanager
def serve(
    kind: str,
    database_url: str,
    slack: BenchSlack,
    smtp: SmtpServer,
    label: str,
    *,
    spans: Path | None = None,
    bolt_poll: bool = False,
    env: dict[str, str] | None = None,
    socket: FakeSocketMode | None = None,
) -> Iterator[Served]:
    """Run `pinbot run` ("bot") or the bare Bolt app ("floor") as a child process. With
    `spans`, the bot writes each /family's timing spans there (bench/spans.py). With
    `bolt_poll`, the bot keeps Bolt's own listener runner, which polls for the ack every 10 ms
    (the code before issue 22), so both can be measured side by side. `env`: more settings
    (PORTAL_API_PORT, for instance). With `socket`, the app runs in Socket Mode connected to
    that peer (the fake Slack's apps.connections.open points there while it starts) instead of
    HTTP mode; requests then go through the peer, not the `sender`, which has no server."""
    port = free_port()
    env = {
        **os.environ,
        **stack_env(database_url, slack, smtp),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if socket is None:
        env.pop("SLACK_APP_TOKEN", None)  # HTTP mode
    else:
        env["SLACK_APP_TOKEN"] = APP_TOKEN
        slack.socket_mode_url = socket.url
    log_dir = stores.CACHE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    mode = "-socket" if socket is not None else ""
    log_path = log_dir / f"{kind}{'-poll' if bolt_poll else ''}{mode}-{label}.log"
    code = (
        "from bot.runtime.cli import main; raise SystemExit(main(['run']))"
        if kind == "bot"
        else "from bench.floor_app import main; main()"
    )
    if spans is not None and kind == "bot":
        code = f"import bench.spans; bench.spans.install({str(spans)!r}); " + code
    if bolt_poll and kind == "bot":
        code = "import handlers.ack_runner as r; r.install = lambda app: None; " + code
    repo = Path(__file__).resolve().parent.parent
    with log_path.open("wb") as log:
        # cwd: an empty folder, so no developer's .env is read
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            env={**env, "PYTHONPATH": str(repo)},
            cwd=log_dir,
            stdout=log,
            stderr=log,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        if socket is None:
            wait_healthy(process, base_url, log_path)
        else:  # a Socket Mode app serves no HTTP: it is ready once connected to its peer
            wait_ready(
                process,
                lambda: socket.connection_count > 0,
                log_path,
                waiting_for="no Socket Mode connection",
            )
        yield Served(process, base_url, SlackSender(base_url, SIGNING_SECRET, timeout=30), log_path)
    finally:
        stop(process)
