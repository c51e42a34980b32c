"""Fixture files for the feed tests: tests/data/hl7, synthetic people only."""

from __future__ import annotations

from pathlib import Path

HL7_DIR = Path(__file__).resolve().parents[2] / "data" / "hl7"


def fixture_bytes(name: str) -> bytes:
    return (HL7_DIR / name).read_bytes()
