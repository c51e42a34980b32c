"""`pinbot run` as a real process, as an IT person starts it: HTTP mode answers /healthz and
signed commands on PORT; Socket Mode connects to Slack's websocket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.fake_socket_mode import FakeSocketMode, fake_socket_mode_fixture
from tests.support.paths import REPO_ROOT
from tests.support.slack_requests import SlackSender, http_request
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import SIGNING_SECRET, stack_env

FIXTURES = (fake_socket_mode_fixture,)  # imported for its fixture
REPO = str(REPO_ROOT)
BIND = "127.0.0.2"


@contextmanager
def pinbot_run(env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.runtime.cli", "run"],
        cwd=cwd,
        text=True,
        # PYTHONPATH: the checkout under test, also when another one is installed in the venv.
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "PYTHONPATH": REPO, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if http_request(url, timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("pinbot did not answer /healthz within 20 s")


def test_http_mode_process(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    port = free_port()
    # HTTP_BIND: another loopback address (all of 127/8 is the loopback on Linux), so the
    # test sees that pinbot listens there and not on every address.
    env = stack_env(database_url, fake_slack, smtp_server, PORT=str(port), HTTP_BIND=BIND)
    with pinbot_run(env, tmp_path) as process:
        base = f"http://{BIND}:{port}"
        _wait_until_healthy(f"{base}/healthz", process)
        with pytest.raises(OSError):
            http_request(f"http://127.0.0.1:{port}/healthz", timeout=1)
        reply = SlackSender(base, SIGNING_SECRET).command(
            "/pinbot", "help", channel_id="C0FRONTDESK"
        )
        assert reply.status == 200 and "/family" in reply.text
        forged = SlackSender(base, "wrong-secret").command("/pinbot", "help")
        assert forged.status == 401


def test_socket_mode_process(
    database_url: str,
    fake_slack: FakeSlack,
    fake_socket_mode: FakeSocketMode,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    env = stack_env(database_url, fake_slack, smtp_server, SLACK_APP_TOKEN="xapp-1-test")
    del env["SLACK_SIGNING_SECRET"]
    with pinbot_run(env, tmp_path) as process:
        fake_socket_mode.wait_for_connection(timeout=20)
        assert process.poll() is None
        assert fake_slack.last("apps.connections.open").token == "xapp-1-test"
