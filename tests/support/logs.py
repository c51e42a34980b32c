"""The log as `pinbot run` writes it (pinbot's handler and formatter), into a buffer a test
can read instead of stderr."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest

from bot import logs


class Log(io.StringIO):
    """Where the log goes in a test; written from several threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def said(self) -> str:
        with self.lock:
            return self.getvalue()


@pytest.fixture(name="pinbot_log")
def pinbot_log_fixture() -> Iterator[Log]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure()
    log = Log()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(log)
    try:
        yield log
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
