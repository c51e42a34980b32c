"""Every benchmark script runs end to end at a tiny size, so `make bench` never rots. No timing
is asserted here: figures are only printed by `make bench` (see bench/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run_all


def test_every_benchmark_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_all.main(
        [
            "--tiny",
            "--stores",
            "sqlite",
            "--cache",
            str(tmp_path),
            "--markdown",
            str(tmp_path / "results.md"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for header in (
        "[letters",
        "[import · sqlite",
        "[search · sqlite",
        "[family_e2e · sqlite",
        "[family_kinds · sqlite",
        "[batch4 · sqlite",
        "[ack_load_paced · sqlite",
        "[memory · sqlite",
        "[hl7 · sqlite",
        "[hl7_backfill · sqlite",
    ):
        assert header in out, out
    assert "FAILED" not in out, out
    assert "Targets (issue 5):" in out
    assert list((tmp_path / "results").glob("*.json"))
    assert "| search | sqlite |" in (tmp_path / "results.md").read_text()
