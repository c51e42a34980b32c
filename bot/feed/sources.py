"""Who may reach the MLLP listener, how many connections each source may hold, and how
often a refusal is logged (SPEC §8).

- `listening_socket`: HL7_BIND=:: takes IPv4 engines too (dual stack) where the system can.
- A peer is named by its address as the interface engine's IT person knows it: an IPv4 engine
  reaching a dual-stack listener arrives as ::ffff:10.0.4.12 and is 10.0.4.12.
- `Slots`: the global cap keeps pinbot's threads bounded; the per-source cap keeps one source
  (a looping script, a misconfigured engine) from taking every slot from the real engine.
- `OncePerMinute`: a refused or failed connection is logged once per source and kind per
  minute; the tries left out are counted and said in one line when the minute is over (or
  when the listener stops), so 2,000 refused tries make two lines, not 2,000.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

Network = IPv4Network | IPv6Network


def source_address(peer: str) -> str:
    """'::ffff:10.0.4.12' -> '10.0.4.12'; 'fe80::1%eth0' -> 'fe80::1'; others as they are."""
    try:
        address: IPv4Address | IPv6Address = ip_address(peer.split("%")[0])
    except ValueError:
        return peer
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def is_any_ipv6(bind: str) -> bool:
    """HL7_BIND is ::, the IPv6 'any' address (dual stack where the system allows it)."""
    try:
        return ip_address(bind) == IPv6Address("::")
    except ValueError:
        return False


def listening_socket(bind: str, port: int) -> socket.socket:
    """Bound and listening; `::` takes IPv4 too where the system has dual-stack sockets
    (IPV6_V6ONLY off), since an engine configured with this host's IPv4 address must reach it."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    dual_stack = is_any_ipv6(bind) and socket.has_dualstack_ipv6()
    return socket.create_server((bind, port), family=family, backlog=64, dualstack_ipv6=dual_stack)


def is_allowed(source: str, networks: Iterable[Network]) -> bool:
    try:
        address = ip_address(source)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)


class Slots:
    """Open connections, counted in total and per source."""

    def __init__(self, total: int, per_source: int) -> None:
        self.total, self.per_source = total, per_source
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, source: str) -> str | None:
        """None when a slot was taken for `source`; else why not, for the log."""
        with self._lock:
            if self._open.total() >= self.total:
                return f"{self.total} connections already open (the most pinbot takes)"
            if self._open[source] >= self.per_source:
                return f"{self.per_source} connections already open from that address"
            self._open[source] += 1
            return None

    def give_back(self, source: str) -> None:
        with self._lock:
            self._open[source] -= 1
            if self._open[source] <= 0:
                del self._open[source]


@dataclass
class _Window:
    started: float
    message: str
    args: tuple[object, ...]
    left_out: int = 0


class OncePerMinute:
    """Warnings about one source and one kind of event (the message template): the first goes
    out at once; the same again within `period` seconds is only counted, and the count goes
    out in one line when the period is over (`flush`, called as time passes) or at the end.
    At most `max_sources` sources are followed at once; beyond that (a scan from many
    addresses) they share one window, so the log stays bounded whatever the traffic."""

    OTHERS = "other sources"

    def __init__(
        self,
        logger: logging.Logger,
        *,
        period: float = 60.0,
        max_sources: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._period, self._max, self._clock = logger, period, max_sources, clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def warning(self, source: str, message: str, *args: object) -> None:
        """Logs `message % args` (args name the source) unless `source` had that message less
        than a period ago."""
        now = self._clock()
        with self._lock:
            due = self._expired(now)
            key = (source, message)
            if key not in self._windows and len(self._windows) >= self._max:
                key = (self.OTHERS, message)
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(now, message, args)
                due.append((message, args, 0))
            else:
                window.left_out += 1
                window.args = args
        self._say(due)

    def flush(self, *, everything: bool = False) -> None:
        """Says the counts of periods that are over (all of them, at the end)."""
        with self._lock:
            due = self._expired(float("inf") if everything else self._clock())
            if everything:
                self._windows.clear()
        self._say(due)

    def _expired(self, now: float) -> list[tuple[str, tuple[object, ...], int]]:
        due = []
        for key, window in list(self._windows.items()):
            if now - window.started < self._period:
                continue
            if window.left_out:
                due.append((window.message, window.args, window.left_out))
                # The count stands for this period's line: the next period starts now.
                self._windows[key] = _Window(now, window.message, window.args)
            else:
                del self._windows[key]
        return due

    def _say(self, lines: list[tuple[str, tuple[object, ...], int]]) -> None:
        for message, args, left_out in lines:
            if left_out:
                self._log.warning(
                    message
                    + " (and %d more like it since the last such line, not logged one by one)",
                    *args,
                    left_out,
                )
            else:
                self._log.warning(message, *args)
