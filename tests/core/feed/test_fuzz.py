"""Mutated messages: the parser only ever returns a message or raises a FeedError, and the
listener only ever answers with a valid ACK or closes cleanly; no traceback, no thread dies."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.feed.ack import answer
from bot.feed.errors import FeedError
from bot.feed.message import parse_message
from bot.feed.mllp import MllpServer
from bot.feed.records import FeedMessage
from tests.core.feed.conftest import HL7_DIR, fixture_bytes
from tests.core.feed.support import CR, EB, SB, Recorder, read_frames, send

FIXTURES = [path.read_bytes() for path in sorted(Path(HL7_DIR).glob("*.hl7"))]
SPECIAL = [b"\x0b", b"\x1c", b"\r", b"\n", b"|", b"^", b"~", b"\\", b"&", b"\x00", b"\xff",
           b"\\X", b"\\F\\", b'""', b"MSH|^~\\&|", b"\xc3", b"2.9", b"A40", b"SIU^S12"]  # fmt: skip

mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
    st.floats(0, 1),
    st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=4)),
)


def mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, payload in mutations:
        at = int(where * len(data))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ payload[0]]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(payload) :]
        else:
            data = data[:at]
    return data


frames = st.builds(mutate, st.sampled_from(FIXTURES), st.lists(mutation, max_size=6))


def ignore(message: FeedMessage) -> None:
    del message


@settings(max_examples=300, deadline=None)
@given(st.one_of(frames, st.binary(max_size=300)))
def test_parser_raises_only_feed_errors(raw: bytes) -> None:
    with contextlib.suppress(FeedError):
        parse_message(raw)
    ack = hl7.parse(answer(raw, ignore).decode("latin-1"))
    assert str(ack["MSA.1"]) in ("AA", "AE", "AR")


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[MllpServer, Recorder, list[BaseException | None]]]:
    errors: list[BaseException | None] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    recorder = Recorder()
    logger = logging.getLogger("bot.feed")
    logger.addHandler(recorder)
    server = MllpServer(handle=lambda raw, _peer: answer(raw, ignore), max_frame=4096)
    server.start()
    yield server, recorder, errors
    server.stop()
    logger.removeHandler(recorder)
    threading.excepthook = old_hook


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=3))
def test_listener_answers_or_closes_cleanly(
    fuzz_server: tuple[MllpServer, Recorder, list[BaseException | None]], batch: list[bytes]
) -> None:
    server, recorder, errors = fuzz_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        try:
            sock.sendall(b"".join(SB + raw + EB + CR for raw in batch))
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # an oversize frame: the server closed on us
        replies = read_frames(sock)
    for reply in replies:
        ack = hl7.parse(reply.decode("latin-1"))
        assert str(ack["MSA.1"]) in ("AA", "AE", "AR")
    assert errors == []
    assert not [r for r in recorder.records if r.levelno >= logging.ERROR or r.exc_info]


def test_listener_still_serves_after_fuzzing(
    fuzz_server: tuple[MllpServer, Recorder, list[BaseException | None]],
) -> None:
    from hl7.client import MLLPClient

    with MLLPClient("127.0.0.1", fuzz_server[0].port) as connection:
        connection.socket.settimeout(5)
        assert b"MSA|AA|EP000101" in send(connection, fixture_bytes("adt_a04_newborn_v251.hl7"))
