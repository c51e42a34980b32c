"""`pinbot run` with PORTAL_API_PORT, as an IT person starts it: the portal API answers on its
own port over HTTPS beside Slack's HTTP mode, from a process of its own that pinbot starts,
restarts and stops: SIGTERM stops both cleanly, and a killed pinbot leaves no API behind."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.flows.test_run_process import REPO, pinbot_run
from tests.support.fake_slack import FakeSlack
from tests.support.portal import HEALTH, VERIFY
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import stack_env
from tests.support.tls import Certificates, certificates_fixture

FIXTURES = (certificates_fixture,)  # imported for its fixture


def _trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _wait_for(
    url: str, process: subprocess.Popen[str], ca_file: Path | None = None
) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            return httpx.get(url, verify=_trusting(ca_file) if ca_file else True, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within 30 s")


def _api_processes(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc), but multiprocessing's own resource
    tracker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"resource_tracker" not in command:
            found.append(int(stat.parent.name))
    return found


def _refused(url: str, ca_file: Path, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.get(url, verify=_trusting(ca_file), timeout=1)
        except httpx.ConnectError:
            return True
        time.sleep(0.1)
    return False


def _api_env(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, certificates: Certificates
) -> tuple[dict[str, str], int, int]:
    port, api_port = free_port(), free_port()
    env = stack_env(
        database_url,
        fake_slack,
        smtp_server,
        PORT=str(port),
        PORTAL_API_PORT=str(api_port),
        PORTAL_API_TLS_CERT=str(certificates.cert_file),
        PORTAL_API_TLS_KEY=str(certificates.key_file),
    )
    return env, port, api_port


def test_run_serves_the_portal_api_over_https_and_stops_on_sigterm(
    database_url: str,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    env, port, api_port = _api_env(database_url, fake_slack, smtp_server, certificates)
    with pinbot_run(env, tmp_path) as process:
        base = f"https://127.0.0.1:{api_port}"
        health = _wait_for(base + HEALTH, process, certificates.ca_file)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        refused = httpx.post(
            base + VERIFY,
            json={"pin": "ABCD-EFGH", "dob": "2020-01-01"},
            headers={"Authorization": "Bearer not-a-key"},
            verify=_trusting(certificates.ca_file),
        )
        assert refused.status_code == 401 and refused.json() == {"error": "unauthorized"}
        assert _wait_for(f"http://127.0.0.1:{port}/healthz", process).status_code == 200
        api_processes = _api_processes(process.pid)
        assert len(api_processes) == 1  # the portal API's own process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        output = process.stdout.read() if process.stdout else ""
        assert "Traceback" not in output
        assert _refused(base + HEALTH, certificates.ca_file)
        assert not Path(f"/proc/{api_processes[0]}").exists()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Supervising the API's process is the same whatever the store: one store is enough."""
    path = tmp_path / "pinbot.db"
    shutil.copyfile(sqlite_template, path)
    path.chmod(0o600)
    return f"sqlite:///{path}"


def test_a_dead_api_process_is_started_again_and_dies_with_pinbot(
    sqlite_url: str,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    env, port, api_port = _api_env(sqlite_url, fake_slack, smtp_server, certificates)
    with pinbot_run(env, tmp_path) as process:
        health = f"https://127.0.0.1:{api_port}{HEALTH}"
        _wait_for(health, process, certificates.ca_file)
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        (first,) = _api_processes(process.pid)
        os.kill(first, signal.SIGKILL)
        assert _refused(health, certificates.ca_file)
        assert _wait_for(health, process, certificates.ca_file).status_code == 200
        (second,) = _api_processes(process.pid)
        assert second != first
        process.kill()  # no SIGTERM, no clean-up: the API must not serve on alone
        process.wait(timeout=15)
        assert _refused(health, certificates.ca_file)


def test_a_certificate_without_its_key_is_one_clear_line(
    database_url: str,
    fake_slack: FakeSlack,
    smtp_server: SmtpServer,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    env = stack_env(
        database_url,
        fake_slack,
        smtp_server,
        PORTAL_API_PORT=str(free_port()),
        PORTAL_API_TLS_CERT=str(certificates.cert_file),
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.runtime.cli", "run"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": REPO, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "PORTAL_API_TLS_KEY is required with PORTAL_API_TLS_CERT (its private key)."
    ]
