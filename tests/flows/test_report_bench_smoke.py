"""bench/report_bench.py runs end to end at a tiny size (SQLite), so it never rots. No timing
is asserted: the figures are for `python -m bench.report_bench` to print."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report_bench


def test_the_report_bench_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_bench.main(["--tiny", "--stores", "sqlite", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[report · sqlite · 100]" in out, out
    for line in ("report query", "chart render", "home (cold)", "home (cached)"):
        assert line in out, out
    assert "40 PINs" in out, out
