"""Every benchmark script runs end to end at a tiny size, so `make bench` never rots. No timing
is asserted here: figures are only printed by `make bench` (see bench/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import portal_cpu, portal_load, run_all, stores


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
        "[family_kinds_socket · sqlite",
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


def test_the_portal_load_test_runs_at_a_tiny_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stores, "CACHE_DIR", tmp_path)
    tiny = {"--families": 100, "--pins": 100, "--seconds": 2, "--quiet-seconds": 1}
    rates = {"--failures": 20, "--successes": 2}
    portal_load.main([str(part) for item in {**tiny, **rates}.items() for part in item])
    out = capsys.readouterr().out
    assert "failed attempts:" in out, out
    assert "staff /family ack, load  bot" in out, out
    assert " 429:" not in out and " 500:" not in out, out  # every answer a 404 or a 200


def test_the_portal_cpu_harness_runs_at_a_tiny_size(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for http in ([], ["--http"]):
        monkeypatch.setattr(
            "sys.argv",
            ["portal_cpu", "--store", "sqlite", "--pins", "200", "--attempts", "40", *http],
        )
        portal_cpu.main()
        out = capsys.readouterr().out
        assert "failed attempts" in out and "per failure: 6.00 statements" in out, out
