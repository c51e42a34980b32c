"""Helpers for the MLLP tests: a real python-hl7 MLLPClient on loopback and a log recorder."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hl7
from hl7.client import MLLPClient

from bot.feed.mllp import MllpServer

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@contextmanager
def recording(name: str = "bot.feed") -> Iterator[Recorder]:
    recorder = Recorder()
    logger = logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(old_level)


def client(server: MllpServer, timeout: float = 5.0) -> Any:
    connection = MLLPClient("127.0.0.1", server.port)
    connection.socket.settimeout(timeout)
    return connection


def read_frames(sock: socket.socket, count: int | None = None) -> list[bytes]:
    """Frames' contents until `count` are read or the server closes the connection."""
    data, frames = b"", list[bytes]()
    while count is None or len(frames) < count:
        while (end := data.find(EB + CR)) >= 0:
            start = data.find(SB)
            frames.append(data[start + 1 : end])
            data = data[end + 2 :]
        if count is not None and len(frames) >= count:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    return frames


def send(connection: Any, raw: bytes) -> bytes:
    """send_message through the library's client, completed if the ACK came in pieces."""
    reply: bytes = connection.send_message(raw)
    while reply and not reply.endswith(EB + CR):
        more = connection.socket.recv(65536)
        if not more:
            break
        reply += more
    return reply


def msa(frame: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK frame, read with python-hl7; framing stripped."""
    message = hl7.parse(frame.strip(SB + EB + CR).decode("utf-8", "replace"))
    return str(message["MSA.1"]), str(message["MSA.2"])
