"""What `pinbot run` does once started, before it serves: leave its start-up objects out of
the garbage collector's full collections (issue 22: they were the slowest /family requests)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from bot.runtime import process


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


@pytest.mark.usefixtures("unfrozen")
def test_start_up_objects_are_left_out_of_full_collections() -> None:
    start_up = [object() for _ in range(10)]  # stands for what start-up built (kept alive)
    process.freeze_start_up_objects()
    assert gc.get_freeze_count() >= len(start_up)
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle made after start-up is still collected
    del garbage
    assert gc.collect() >= 1


def test_run_freezes_after_the_warm_up_and_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    monkeypatch.setattr(process, "warm_search_cache", lambda _db: steps.append("warm up"))
    monkeypatch.setattr(process, "freeze_start_up_objects", lambda: steps.append("freeze"))

    def start_background(_services: object) -> None:
        steps.append("background")
        raise SystemExit(0)  # enough: the rest is serving

    monkeypatch.setattr(process, "start_background", start_background)
    for name in ("make_client", "verify_tokens", "make_services", "create_app"):
        monkeypatch.setattr(process, name, lambda *_a, **_k: None)
    settings = SimpleNamespace(portal_api=SimpleNamespace(configured=False))
    with pytest.raises(SystemExit):
        process.run(settings, object())  # type: ignore[arg-type]
    assert steps == ["warm up", "freeze", "background"]
