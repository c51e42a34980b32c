"""Catches an answer waiting on a sleep-poll (issue 22): records every `time.sleep` made on a
thread while it is inside `App.dispatch`, the thread that answers Slack's HTTP request or Socket
Mode envelope. Bolt's own runner polls `ack.response` there with `time.sleep(0.01)`; the
signalled runner (handlers/ack_runner.py) must never sleep there. Judged by the mechanism, not
by a timing: a single sleep on that thread is a failure, however short."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App, BoltRequest, BoltResponse


class DispatchSleeps:
    def __init__(self) -> None:
        self.callers: list[str] = []  # "module:function" of each sleep on a dispatching thread
        self._dispatching = threading.local()

    def inside(self) -> bool:
        return bool(getattr(self._dispatching, "inside", False))

    def set_inside(self, inside: bool) -> None:
        self._dispatching.inside = inside


@pytest.fixture(name="dispatch_sleeps")
def dispatch_sleeps_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[DispatchSleeps]:
    sleeps = DispatchSleeps()
    real_dispatch, real_sleep = App.dispatch, time.sleep

    def dispatch(self: App, req: BoltRequest) -> BoltResponse:
        sleeps.set_inside(True)
        try:
            return real_dispatch(self, req)
        finally:
            sleeps.set_inside(False)

    def sleep(seconds: float, *args: Any) -> None:
        if sleeps.inside():
            caller = sys._getframe(1)
            sleeps.callers.append(f"{caller.f_globals.get('__name__')}:{caller.f_code.co_name}")
        real_sleep(seconds, *args)

    monkeypatch.setattr(App, "dispatch", dispatch)
    # Bolt calls `time.sleep` through the module, so every caller sees this one.
    monkeypatch.setattr(time, "sleep", sleep)
    yield sleeps
