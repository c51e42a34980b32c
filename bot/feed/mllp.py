"""The MLLP listener (SPEC §8): frames are 0x0B <message> 0x1C 0x0D; every frame is answered
on its connection, in order, with whatever `handle(message_bytes, peer_ip)` returns.

Threads: one daemon thread accepts, one daemon thread per connection shakes hands (TLS),
reads, calls `handle` and writes the ACK; nothing here blocks the caller's threads, and no
connection (a slow handshake, a slow frame) holds up the accept loop or another connection.
Rules:

- a connection from outside `allowed_sources` is closed before a byte is read; so is one past
  `max_connections` in all or `max_per_source` from one address (sources.py: refusals are
  logged once per source per minute, with a count of the rest);
- with `tls` (an `ssl.SSLContext`, bot/certificates.py `server_context`), the handshake must
  finish within `handshake_timeout` seconds; one that fails (no client certificate, one from
  another CA, plain MLLP, a timeout) is closed unanswered and logged with the source and the
  reason, once per source per minute;
- bytes outside a frame are discarded (a stray CR after 0x1C, line noise, a keep-alive); a new
  0x0B inside an unfinished frame means the sender gave that frame up, so reading restarts there;
- a frame over `max_frame` bytes (1 MiB) closes the connection without an ACK;
- a frame not complete `frame_timeout` seconds (60) after its first byte closes the connection
  without an ACK: the clock is not reset by each byte, so a sender trickling a frame cannot hold
  a slot for ever;
- a connection with no frame for `idle_timeout` seconds (60) is closed (bytes outside frames
  do not count as activity);
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
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Network, IPv6Network, ip_network

from bot.feed.ack import internal_error_ack
from bot.feed.framing import CR, EB, MAX_FRAME, SB, Framer, FrameTooLarge
from bot.feed.message import read_header
from bot.feed.sources import (
    OncePerMinute,
    Slots,
    is_allowed,
    is_any_ipv6,
    listening_socket,
    source_address,
)

log = logging.getLogger(__name__)

LOOPBACK: tuple[IPv4Network | IPv6Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
Handle = Callable[[bytes, str], bytes]
_SAFE = re.compile(rb"[^A-Za-z0-9_^.-]")
# OpenSSL's reasons for a failed handshake, in the words an interface analyst looks for.
_HANDSHAKE_MEANINGS = {
    "WRONG_VERSION_NUMBER": "not TLS: a plain MLLP sender?",
    "HTTP_REQUEST": "not TLS: an HTTP request",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the sender has no client certificate",
    "CERTIFICATE_VERIFY_FAILED": "the client certificate does not verify against HL7_TLS_CLIENT_CA",
}


class MllpServer:
    def __init__(
        self,
        bind: str = "127.0.0.1",
        port: int = 0,
        *,
        handle: Handle,
        allowed_sources: Iterable[IPv4Network | IPv6Network] = LOOPBACK,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float = 60.0,
        frame_timeout: float = 60.0,
        handshake_timeout: float = 10.0,
        max_frame: int = MAX_FRAME,
        max_connections: int = 64,
        max_per_source: int = 8,
        refusal_log_period: float = 60.0,
        poll_interval: float = 0.2,
    ) -> None:
        self._bind, self._port, self._handle = bind, port, handle
        self._allowed = tuple(allowed_sources)
        self._tls, self._handshake_timeout = tls, handshake_timeout
        self._idle, self._frame_timeout, self._max_frame = idle_timeout, frame_timeout, max_frame
        self._slots = Slots(max_connections, max_per_source)
        self._refusals = OncePerMinute(log, period=refusal_log_period)
        self._poll = poll_interval
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
        listener = listening_socket(self._bind, self._port)
        listener.settimeout(self._poll)
        self._listener, self._port = listener, listener.getsockname()[1]
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name="hl7-accept", daemon=True)
        self._acceptor.start()
        log.info("hl7 listener on %s (%s)", self._where(), self._describe())

    def _where(self) -> str:
        return f"[{self._bind}]:{self._port}" if ":" in self._bind else f"{self._bind}:{self._port}"

    def _describe(self) -> str:
        if self._tls is None:
            security = "plain MLLP"
        elif self._tls.verify_mode == ssl.CERT_REQUIRED:
            security = "TLS, client certificates required"
        else:
            security = "TLS"
        if is_any_ipv6(self._bind):
            reach = "IPv4 and IPv6" if socket.has_dualstack_ipv6() else "IPv6 only"
            return f"{security}; {reach}"
        return security

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
        self._refusals.flush(everything=True)
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
                self._refusals.flush()
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                log.warning("hl7 accept failed (%s)", type(error).__name__)
                time.sleep(self._poll)
                continue
            self._admit(conn, source_address(str(address[0])))

    def _admit(self, conn: socket.socket, peer: str) -> None:
        """A thread for the connection, or closed unread (not one byte of a refused source's
        data is looked at)."""
        if not is_allowed(peer, self._allowed):
            conn.close()
            self._refusals.warning(
                peer, "hl7 connection from %s refused: not in HL7_ALLOWED_SOURCES", peer
            )
            return
        if (full := self._slots.take(peer)) is not None:
            conn.close()
            self._refusals.warning(peer, "hl7 connection from %s refused: %s", peer, full)
            return
        thread = threading.Thread(
            target=self._serve, args=(conn, peer), name=f"hl7-{peer}", daemon=True
        )
        with self._lock:
            self._connections[thread] = conn
        thread.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        try:
            if self._tls is not None:
                conn = self._shake_hands(conn, peer)
            self._converse(conn, peer)
        except _HandshakeFailed as failure:
            self._refusals.warning(
                peer, "hl7 TLS handshake with %s failed (%s): closed unanswered", peer, failure
            )
        except FrameTooLarge:
            log.warning(
                "hl7 frame from %s over %d bytes: connection closed, no ACK", peer, self._max_frame
            )
        except OSError as error:
            log.info("hl7 connection from %s ended (%s)", peer, type(error).__name__)
        except Exception as error:  # never a traceback: the type says enough, text may be PHI
            log.error("hl7 connection from %s failed (%s)", peer, type(error).__name__)
        finally:
            with self._lock:
                conn = self._connections.pop(threading.current_thread(), conn)
            _shutdown(conn)
            self._slots.give_back(peer)

    def _shake_hands(self, conn: socket.socket, peer: str) -> ssl.SSLSocket:
        """The TLS connection, once the handshake is done: within `handshake_timeout` seconds
        in all (CPython's handshake keeps one deadline across its reads)."""
        assert self._tls is not None
        secured = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._lock:  # stop() must shut the socket that is in use now
            self._connections[threading.current_thread()] = secured
        secured.settimeout(self._handshake_timeout)
        try:
            secured.do_handshake()
        except ssl.SSLError as error:
            reason = error.reason or type(error).__name__
            if isinstance(error, ssl.SSLCertVerificationError):  # which check the client failed
                reason = f"{reason}: {error.verify_message}"
            raise _HandshakeFailed(reason) from None
        except TimeoutError:
            raise _HandshakeFailed(f"not done within {self._handshake_timeout:g} s") from None
        except OSError as error:
            raise _HandshakeFailed(type(error).__name__) from None
        log.info("hl7 TLS from %s (%s)", peer, secured.version())
        return secured

    def _converse(self, conn: socket.socket, peer: str) -> None:
        framer = Framer(self._max_frame)
        conn.settimeout(self._poll)
        last_frame = time.monotonic()  # the last ACK sent, or the connection's start
        frame_began: float | None = None  # when the frame being read started arriving
        log.info("hl7 connection from %s", peer)
        while not self._stopping.is_set():
            frame = framer.next_frame()
            if frame is not None:
                ack = self._answer(frame, peer)
                conn.settimeout(max(self._idle, 1.0))
                conn.sendall(SB + ack + EB + CR)
                conn.settimeout(self._poll)
                last_frame, frame_began = time.monotonic(), None
                continue
            now = time.monotonic()
            if framer.in_frame:
                if frame_began is None:
                    frame_began = now
                if now - frame_began > self._frame_timeout:
                    log.warning(
                        "hl7 frame from %s not complete within %g s: connection closed, no ACK",
                        peer,
                        self._frame_timeout,
                    )
                    return
            elif now - last_frame > self._idle:
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


class _HandshakeFailed(Exception):
    """The TLS handshake failed; the text is the reason (OpenSSL's, e.g. WRONG_VERSION_NUMBER,
    with what it usually means)."""

    def __init__(self, reason: str) -> None:
        meaning = _HANDSHAKE_MEANINGS.get(reason.split(":")[0])
        super().__init__(f"{reason}; {meaning}" if meaning else reason)


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
