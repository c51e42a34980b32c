"""The bot with its HL7 listener started as `pinbot run` starts it (bot.runtime.process
.start_feed), for tests that send messages with python-hl7's own MLLPClient on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hl7.client import MLLPClient

from bot.feed.mllp import MllpServer
from bot.runtime.process import start_feed
from tests.core.feed.conftest import fixture_bytes
from tests.core.feed.support import msa, send
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import Stack, build_stack


@dataclass
class FeedStack:
    stack: Stack
    server: MllpServer

    @contextmanager
    def connection(self) -> Iterator[Any]:
        client = MLLPClient("127.0.0.1", self.server.port)
        client.socket.settimeout(10)
        try:
            yield client
        finally:
            client.close()

    def send(self, raw: bytes) -> tuple[str, str]:
        """One message on a new connection: (MSA-1, MSA-2) of its ACK."""
        with self.connection() as client:
            return msa(send(client, raw))

    def send_file(self, name: str, **replace: str) -> tuple[str, str]:
        return self.send(with_values(fixture_bytes(name), **replace))


def with_values(raw: bytes, **replace: str) -> bytes:
    """A fixture with some text replaced (a new control id, another chart): old=new pairs
    given as keyword names old → value new, e.g. EP000101="EP-2"."""
    for old, new in replace.items():
        raw = raw.replace(old.encode(), new.encode())
    return raw


def build_feed_stack(
    database_url: str,
    fake_slack: FakeSlack,
    smtp: SmtpServer,
    limits: dict[str, Any] | None = None,
    **overrides: str,
) -> Iterator[FeedStack]:
    """The bot and its listener; `limits` shortens the listener's timeouts and caps."""
    for stack in build_stack(
        database_url, fake_slack, smtp, HL7_PORT=str(free_port()), **overrides
    ):
        server = start_feed(stack.services, **(limits or {}))
        assert server is not None
        try:
            yield FeedStack(stack, server)
        finally:
            server.stop()


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def word(number: int) -> str:
    """A distinct made-up name part for each number (no digits: names with digits look odd)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += _LETTERS[digit]
        if not number:
            return "Tes" + letters


def synthetic_a04(number: int, *, prefix: str = "B") -> bytes:
    """A distinct ADT^A04 (v2.5.1, CR segments): child, account and mother all new."""
    name = word(number).upper()
    return (
        "MSH|^~\\&|EPIC|SUNNYPEDS|PINBOT|SUNNYPEDS|20250314093012||ADT^A04^ADT_A01|"
        f"{prefix}-{number:06d}|P|2.5.1\r"
        "EVN|A04|20250314093012\r"
        f"PID|1||MRN-{prefix}{number:06d}^^^SUNNYPEDS^MR||{name}^ROWAN||20200101|F||||||||||"
        f"ACCT-{prefix}{number:06d}\r"
        f"NK1|1|{name}^DANA|MTH||^PRN^PH^^1^555^0100000~^NET^Internet^dana.{number}@example.com\r"
    ).encode()
