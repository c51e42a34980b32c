"""The MLLP listener (SPEC §8): frames are 0x0B <message> 0x1C 0x0D; every frame is answered
on its connection, in order, with whatever `handle(message_bytes, peer_ip)` returns.

Threads: one daemon thread accepts, one daemon thread per connection reads, calls `handle`
and writes the ACK; nothing here blocks the caller's threads. Rules:

- a connection from outside `allowed_sources` is closed before a byte is read;
- bytes outside a frame are discarded (a stray CR after 0x1C, line noise, a keep-alive); a new
  0x0B inside an unfinished frame means the sender gave that frame up, so reading restarts there;
- a frame over `max_frame` bytes (1 MiB) closes the connection without an ACK;
- a connection idle for `idle_timeout` seconds (60) is closed;
- `handle` owns parsing, applying and the ACK (AA/AE/AR). If it raises anyway (a bug, the
  database down), the exception's type, never its text, is logged and the message is answered
  AR with ERR-3 207 "application internal error": HL7's original mode uses AR for failures
  unrelated to the message's content, and interface engines resend it later. The listener
  keeps serving.
- `stop()` stops accepting, lets a message being handled finish and its ACK be sent, reads no
  further frames and closes every connection. A frame not yet fully read gets no ACK, so the
  engine resends it. Whether a change is ever half applied is up to `handle`: it must commit one
  transaction per message, before returning the AA.

Logs carry the peer address, control ids, message types and ACK codes, never message text.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from bot.feed.ack import internal_error_ack
from bot.feed.message import read_header

log = logging.getLogger(__name__)

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
MAX_FRAME = 1 << 20
LOOPBACK: tuple[IPv4Network | IPv6Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
Handle = Callable[[bytes, str], bytes]
_SAFE = re.compile(rb"[^A-Za-z0-9_^.-]")


class FrameTooLarge(Exception):
    pass


class Framer:
    """Splits a byte stream into MLLP frames' contents."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._max = max_frame

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete frame's contents, or None until more bytes arrive. Raises
        FrameTooLarge as soon as a frame is known to exceed the limit."""
        buffer = self._buffer
        if not self._in_frame:
            start = buffer.find(SB)
            if start < 0:
                buffer.clear()
                return None
            del buffer[: start + 1]
            self._in_frame = True
        end = buffer.find(EB)
        if end < 0:
            if (restart := buffer.rfind(SB)) >= 0:
                del buffer[: restart + 1]
            if len(buffer) > self._max:
                raise FrameTooLarge
            return None
        frame = bytes(buffer[:end])
        del buffer[: end + 1]  # the CR after EB is outside any frame: discarded with the rest
        self._in_frame = False
        frame = frame[frame.rfind(SB) + 1 :]
        if len(frame) > self._max:
            raise FrameTooLarge
        return frame


class MllpServer:
    def __init__(
        self,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        handle: Handle,
        allowed_sources: Iterable[IPv4Network | IPv6Network] = LOOPBACK,
        idle_timeout: float = 60.0,
        max_frame: int = MAX_FRAME,
        max_connections: int = 64,
        poll_interval: float = 0.2,
    ) -> None:
        self._bind, self._port, self._handle = bind, port, handle
        self._allowed = tuple(allowed_sources)
        self._idle, self._max_frame = idle_timeout, max_frame
        self._max_connections, self._poll = max_connections, poll_interval
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one chosen for port 0, once started)."""
        return self._port

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> None:
        """Binds and listens (raises OSError when the address is taken); returns once
        connections are being accepted."""
        if self._listener is not None:
            raise RuntimeError("already started")
        family = socket.AF_INET6 if ":" in self._bind else socket.AF_INET
        listener = socket.create_server((self._bind, self._port), family=family, backlog=64)
        listener.settimeout(self._poll)
        self._listener, self._port = listener, listener.getsockname()[1]
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name="hl7-accept", daemon=True)
        self._acceptor.start()
        log.info("hl7 listener on %s:%d", self._bind, self._port)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops accepting, waits up to `timeout` seconds for messages being handled to be
        answered, then closes every connection. Stopping a stopped server does nothing."""
        if self._listener is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            threads = list(self._connections)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = list(self._connections.items())
        for thread, conn in stuck:  # a handler past the deadline: its ACK will not be sent
            _shutdown(conn)
            thread.join(0.5)
        self._listener = self._acceptor = None
        log.info("hl7 listener stopped")

    def __enter__(self) -> MllpServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                log.warning("hl7 accept failed (%s)", type(error).__name__)
                time.sleep(self._poll)
                continue
            peer = str(address[0])
            if not self._allowed_source(peer):
                conn.close()  # unread: not one byte of an unknown source's data is looked at
                log.warning("hl7 connection from %s refused: not in HL7_ALLOWED_SOURCES", peer)
                continue
            with self._lock:
                full = len(self._connections) >= self._max_connections
            if full:
                conn.close()
                log.warning(
                    "hl7 connection from %s refused: %d already open", peer, self._max_connections
                )
                continue
            thread = threading.Thread(
                target=self._serve, args=(conn, peer), name=f"hl7-{peer}", daemon=True
            )
            with self._lock:
                self._connections[thread] = conn
            thread.start()

    def _allowed_source(self, peer: str) -> bool:
        try:
            address: IPv4Address | IPv6Address = ip_address(peer.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self._allowed)

    def _serve(self, conn: socket.socket, peer: str) -> None:
        try:
            self._converse(conn, peer)
        except FrameTooLarge:
            log.warning(
                "hl7 frame from %s over %d bytes: connection closed, no ACK", peer, self._max_frame
            )
        except OSError as error:
            log.info("hl7 connection from %s ended (%s)", peer, type(error).__name__)
        except Exception as error:  # never a traceback: the type says enough, text may be PHI
            log.error("hl7 connection from %s failed (%s)", peer, type(error).__name__)
        finally:
            _shutdown(conn)
            with self._lock:
                self._connections.pop(threading.current_thread(), None)

    def _converse(self, conn: socket.socket, peer: str) -> None:
        framer = Framer(self._max_frame)
        conn.settimeout(self._poll)
        last = time.monotonic()
        log.info("hl7 connection from %s", peer)
        while not self._stopping.is_set():
            frame = framer.next_frame()
            if frame is not None:
                ack = self._answer(frame, peer)
                conn.settimeout(max(self._idle, 1.0))
                conn.sendall(SB + ack + EB + CR)
                conn.settimeout(self._poll)
                last = time.monotonic()
                continue
            if time.monotonic() - last > self._idle:
                log.info("hl7 connection from %s idle: closed", peer)
                return
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                log.info("hl7 connection from %s closed by the peer", peer)
                return
            framer.feed(data)
            last = time.monotonic()

    def _answer(self, frame: bytes, peer: str) -> bytes:
        kind = _message_type(frame)
        try:
            ack = self._handle(frame, peer)
            if not isinstance(ack, bytes):
                raise TypeError("handle returned no bytes")
        except Exception as error:
            log.error("hl7 %s handler failed (%s): answered AR", kind, type(error).__name__)
            try:
                header = read_header(frame)
            except Exception:  # the header is a courtesy; the AR goes out without it
                header = None
            ack = internal_error_ack(header)
        code, control_id = ack_summary(ack)
        log.info("hl7 %s %s from %s: %s", kind, control_id or "-", peer, code or "?")
        return ack


def ack_summary(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK, for the log; empty strings when absent."""
    for segment in re.split(rb"[\r\n]+", ack):
        if segment[:4] == b"MSA|":
            fields = segment.split(b"|")
            values = [_SAFE.sub(b"", f)[:40].decode("ascii") for f in fields[1:3]]
            return values[0], values[1] if len(values) > 1 else ""
    return "", ""


def _message_type(frame: bytes) -> str:
    """MSH-9 of a frame (e.g. "ADT^A04"), read from the first line only, for the log."""
    head = frame.lstrip()[:512].split(b"\r")[0].split(b"\n")[0]
    if head[:3] != b"MSH" or len(head) < 4:
        return "non-HL7"
    fields = head.split(head[3:4])
    return _SAFE.sub(b"", fields[8])[:20].decode("ascii") if len(fields) > 8 else "?"


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
