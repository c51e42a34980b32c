"""Who holds a claim on outgoing work, and the heartbeat that keeps it while they work.

A claim names its owner (host, process, a random tag) and lasts LEASE (bot/delivery/outbox.py).
The owner renews it every HEARTBEAT while it delivers and records, so a slow SMTP server or a
long upload never lets another replica take the work; a process that dies stops renewing and
its claim lapses within LEASE. Only the owner may record what happened (bot/delivery/worker.py
checks `claimed_by`), so a claim that was lost is never recorded twice."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


def owner_name() -> str:
    """This process's name on its claims: readable for an operator, unique per Outbox."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Heartbeat:
    """Calls `renew` every `every` seconds on a daemon thread until the block ends; `renew`
    returns False once the claim is no longer ours (nothing more to renew)."""

    def __init__(self, renew: Callable[[], bool], every: float) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinbot-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._renew():
                    log.warning("delivery claim lost before it was recorded")
                    return
            except Exception as error:  # the database hiccuped: the next beat tries again
                failure = type(error).__name__
                log.warning("renewing a delivery claim failed", extra={"error": failure})
