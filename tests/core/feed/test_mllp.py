"""The MLLP listener through python-hl7's MLLPClient on 127.0.0.1 (SPEC §8)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_network

import pytest

from bot.feed.ack import answer
from bot.feed.mllp import MAX_FRAME, Framer, FrameTooLarge, MllpServer
from bot.feed.records import FeedMessage
from tests.core.feed.conftest import fixture_bytes
from tests.core.feed.support import CR, EB, SB, client, msa, read_frames, recording, send

A04 = fixture_bytes("adt_a04_newborn_v251.hl7")


def with_id(control_id: str) -> bytes:
    return A04.replace(b"|EP000101|", f"|{control_id}|".encode())


def ignore(message: FeedMessage) -> None:
    del message


def handle(raw: bytes, peer: str) -> bytes:
    assert peer == "127.0.0.1"
    return answer(raw, ignore)


@pytest.fixture
def thread_errors() -> Iterator[list[BaseException | None]]:
    errors: list[BaseException | None] = []
    old = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    yield errors
    threading.excepthook = old
    assert errors == []


@pytest.fixture
def server(thread_errors: list[BaseException | None]) -> Iterator[MllpServer]:
    del thread_errors
    with MllpServer("127.0.0.1", 0, handle=handle, idle_timeout=5.0) as running:
        yield running


def test_answers_in_order_on_one_connection(server: MllpServer) -> None:
    with recording() as log, client(server) as connection:
        for n in range(3):
            assert msa(send(connection, with_id(f"SEQ{n}"))) == ("AA", f"SEQ{n}")
        # Pipelined: three frames in one write, three ACKs back in the same order.
        connection.socket.sendall(b"".join(SB + with_id(f"P{n}") + EB + CR for n in range(3)))
        frames = read_frames(connection.socket, 3)
        assert [msa(frame) for frame in frames] == [("AA", f"P{n}") for n in range(3)]
    assert "P2" in log.text() and "AA" in log.text() and "ADT^A04" in log.text()
    assert "RIVERA" not in log.text() and "ana.rivera" not in log.text()


def test_many_connections_at_once(thread_errors: list[BaseException | None]) -> None:
    del thread_errors
    active, peak, lock = 0, 0, threading.Lock()

    def slow(raw: bytes, peer: str) -> bytes:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return handle(raw, peer)

    results: dict[int, list[tuple[str, str]]] = {}

    def engine(n: int, server: MllpServer) -> None:
        with client(server) as connection:
            results[n] = [msa(send(connection, with_id(f"C{n}M{m}"))) for m in range(4)]

    with MllpServer(handle=slow) as server:
        threads = [threading.Thread(target=engine, args=(n, server)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == {n: [("AA", f"C{n}M{m}") for m in range(4)] for n in range(6)}
    assert peak > 1  # connections were served side by side, not one after the other


def test_oversize_frame_closes_without_ack_and_server_keeps_serving(server: MllpServer) -> None:
    with client(server) as connection:
        # Exactly 1 MiB is allowed (answered AR: it is not HL7)...
        connection.socket.sendall(SB + b"x" * MAX_FRAME + EB + CR)
        assert msa(read_frames(connection.socket, 1)[0]) == ("AR", "")
        # ...one byte more is refused: the connection closes, nothing is answered.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.socket.sendall(SB + b"x" * (MAX_FRAME + 1) + EB + CR)
        assert read_frames(connection.socket) == []
    with client(server) as connection:
        assert msa(send(connection, with_id("AFTER"))) == ("AA", "AFTER")


def test_source_outside_allowed_list_is_closed_unread(
    thread_errors: list[BaseException | None],
) -> None:
    del thread_errors
    calls: list[bytes] = []

    def record(raw: bytes, peer: str) -> bytes:
        calls.append(raw)
        return handle(raw, peer)

    allowed = [ip_network("10.0.0.0/8"), ip_network("192.168.0.0/16")]
    with recording() as log, MllpServer(handle=record, allowed_sources=allowed) as server:
        with client(server) as connection:
            assert connection.socket.recv(1024) == b""  # closed without our sending anything
        assert calls == []
        # The server closes first and then logs: give the log line a moment on a busy machine.
        deadline = time.monotonic() + 2
        while "refused" not in log.text() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "refused" in log.text()


def test_idle_connection_is_closed(thread_errors: list[BaseException | None]) -> None:
    del thread_errors
    limits = {"idle_timeout": 0.5, "frame_timeout": 0.5, "poll_interval": 0.05}
    with MllpServer(handle=handle, **limits) as server:
        with client(server) as connection:
            assert msa(send(connection, with_id("I1"))) == ("AA", "I1")
            started = time.monotonic()
            assert connection.socket.recv(1024) == b""
            assert 0.4 < time.monotonic() - started < 3
        with client(server) as connection:  # a half-sent frame does not keep it open either
            connection.socket.sendall(SB + A04[:40])
            assert read_frames(connection.socket) == []


def test_non_hl7_is_ar_and_the_connection_goes_on(server: MllpServer) -> None:
    with client(server) as connection:
        assert msa(send(connection, b"hello, is this the lab?")) == ("AR", "")
        connection.socket.sendall(b"\r\n stray bytes between frames \x1c\r")
        assert msa(send(connection, with_id("NEXT"))) == ("AA", "NEXT")
        # A frame the sender gave up on (a new start block before its end) is skipped.
        connection.socket.sendall(SB + b"MSH|^~\\&|half" + SB + with_id("RESTART") + EB + CR)
        assert msa(read_frames(connection.socket, 1)[0]) == ("AA", "RESTART")


def test_handler_failure_is_ar_logged_by_type_only(
    thread_errors: list[BaseException | None],
) -> None:
    del thread_errors

    def broken(raw: bytes, peer: str) -> bytes:
        if b"BOOM" in raw:
            raise RuntimeError("RIVERA ana.rivera@example.com")  # PHI in the text
        return handle(raw, peer)

    with recording() as log, MllpServer(handle=broken) as server, client(server) as connection:
        assert msa(send(connection, with_id("BOOM"))) == ("AR", "BOOM")
        assert msa(send(connection, with_id("OK"))) == ("AA", "OK")
    assert "RuntimeError" in log.text()
    assert "RIVERA" not in log.text() and "ana.rivera" not in log.text()
    assert all(record.exc_info is None for record in log.records)


def test_stop_lets_the_message_in_flight_finish(thread_errors: list[BaseException | None]) -> None:
    del thread_errors
    entered = threading.Event()

    def slow(raw: bytes, peer: str) -> bytes:
        entered.set()
        time.sleep(0.4)
        return handle(raw, peer)

    server = MllpServer(handle=slow)
    server.start()
    port = server.port
    with client(server) as connection:
        connection.socket.sendall(SB + with_id("LAST") + EB + CR)
        assert entered.wait(5)
        started = time.monotonic()
        server.stop(timeout=5)
        assert time.monotonic() - started < 3
        assert [msa(frame) for frame in read_frames(connection.socket)] == [("AA", "LAST")]
    assert server.open_connections == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_framer_edges() -> None:
    framer = Framer(max_frame=10)
    framer.feed(b"junk" + SB + b"abc")
    assert framer.next_frame() is None
    framer.feed(b"def" + EB + CR + b"\n" + SB + b"x" + EB)
    assert framer.next_frame() == b"abcdef"
    assert framer.next_frame() == b"x"
    assert framer.next_frame() is None
    framer.feed(SB + b"12345678901")
    with pytest.raises(FrameTooLarge):
        framer.next_frame()
