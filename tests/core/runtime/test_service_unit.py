"""docs/pinbot.service, the systemd unit the README's "Run it as a service" installs: systemd
itself checks it (`systemd-analyze verify`, with warnings counted as failures), run against
this checkout's own `pinbot` so that the command it starts exists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

UNIT = REPO_ROOT / "docs" / "pinbot.service"
INSTALLED_AT = "/opt/pinbot"  # where the unit as shipped expects the checkout


def test_the_unit_runs_pinbot_from_its_checkout() -> None:
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert f"ExecStart={INSTALLED_AT}/.venv/bin/pinbot run" in lines
    assert f"WorkingDirectory={INSTALLED_AT}" in lines  # where pinbot finds its .env
    assert "RestartPreventExitStatus=2" in lines  # a configuration problem is not retried


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: apt-get install systemd; .ci/run does)",
)
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("pinbot")
    assert script.is_file(), "the tests run from the checkout's .venv (make test)"
    unit = tmp_path / "pinbot.service"
    text = UNIT.read_text(encoding="utf-8")
    unit.write_text(text.replace(f"{INSTALLED_AT}/.venv/bin/pinbot", str(script)), "utf-8")

    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr
