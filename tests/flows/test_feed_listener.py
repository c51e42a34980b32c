"""The listener's limits against the listener started as `pinbot run` starts it, with its
timeouts and caps shortened so the tests take seconds: a frame trickled byte by byte is closed
at the frame deadline, one source cannot take every slot, 2,000 refused tries make two log
lines, `HL7_BIND=::` takes IPv4 engines too, and a control id's control characters never
reach the log. Linux routes all of 127/8 to loopback: a client bound to 127.0.0.2 is a second
source."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hl7.client import MLLPClient

from bot.logs import FieldsFormatter
from models import FeedMessage, Patient
from tests.core.feed.conftest import fixture_bytes
from tests.core.feed.support import SB, msa, read_frames, recording, send
from tests.flows.feed_support import FeedStack, build_feed_stack
from tests.flows.test_feed import count
from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer
from tests.support.stack import eventually

NEWBORN = fixture_bytes("adt_a04_newborn_v251.hl7")


class MllpClientFrom(MLLPClient):  # type: ignore[misc]  # python-hl7 has no type hints
    """The library's client, connecting from a given loopback address (another source)."""

    def __init__(self, port: int, source: str) -> None:
        self.socket = socket.create_connection(
            ("127.0.0.1", port), timeout=10, source_address=(source, 0)
        )
        self.encoding = "utf-8"


@contextlib.contextmanager
def running(
    database_url: str,
    fake_slack: FakeSlack,
    smtp: SmtpServer,
    limits: dict[str, Any],
    **env: str,
) -> Iterator[FeedStack]:
    yield from build_feed_stack(database_url, fake_slack, smtp, limits=limits, **env)


def with_id(control_id: str) -> bytes:
    return NEWBORN.replace(b"|EP000101|", f"|{control_id}|".encode())


def test_a_trickled_frame_is_closed_at_the_frame_deadline_not_reset_by_each_byte(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    limits = {"frame_timeout": 1.0, "idle_timeout": 30.0, "poll_interval": 0.05}
    with (
        recording() as log,
        running(database_url, fake_slack, smtp_server, limits) as feed,
        socket.create_connection(("127.0.0.1", feed.server.port), timeout=10) as slow,
    ):
        started = time.monotonic()
        closed_after = None
        for byte in SB + NEWBORN:  # one byte every 50 ms: each resets no timer
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.05)
            if time.monotonic() - started > 5:
                break
        assert read_frames(slow) == []  # no ACK: the frame never finished
        closed_after = closed_after or time.monotonic() - started
        assert 0.9 < closed_after < 3, closed_after  # the 1 s deadline, not the 30 s idle one
        assert count(feed, FeedMessage) == 0 and count(feed, Patient) == 0
    assert "not complete within 1 s: connection closed, no ACK" in log.text()


def test_the_frame_deadline_does_not_count_the_quiet_between_frames(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    limits = {"frame_timeout": 0.5, "idle_timeout": 30.0, "poll_interval": 0.05}
    with (
        running(database_url, fake_slack, smtp_server, limits) as feed,
        feed.connection() as client,
    ):
        assert msa(send(client, with_id("Q1"))) == ("AA", "Q1")
        time.sleep(1.2)  # longer than a frame may take, well inside the idle rule
        assert msa(send(client, with_id("Q2"))) == ("AA", "Q2")


def test_one_source_cannot_take_every_slot(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    limits = {"max_per_source": 3, "max_connections": 4}
    with (
        recording() as log,
        running(database_url, fake_slack, smtp_server, limits) as feed,
        contextlib.ExitStack() as held,
    ):
        port = feed.server.port
        busy = [held.enter_context(MllpClientFrom(port, "127.0.0.1")) for _ in range(3)]
        for n, client in enumerate(busy):  # each is being served: a slot each
            assert msa(send(client, with_id(f"HELD{n}")))[0] == "AA"
        with MllpClientFrom(port, "127.0.0.1") as fourth:  # the cap + 1th from one source
            assert fourth.socket.recv(1024) == b""  # closed unread
        # Another source still gets in while the first holds its three.
        other = held.enter_context(MllpClientFrom(port, "127.0.0.2"))
        assert msa(send(other, with_id("OTHER")))[0] == "AA"
        # The global cap (4) still holds across sources.
        with MllpClientFrom(port, "127.0.0.3") as fifth:
            assert fifth.socket.recv(1024) == b""
        # A slot given back is a slot again.
        busy[0].close()
        eventually(lambda: _accepts(port, "127.0.0.1"))
    text = log.text()
    assert "refused: 3 connections already open from that address" in text
    assert "refused: 4 connections already open (the most pinbot takes)" in text


def _accepts(port: int, source: str) -> None:
    with MllpClientFrom(port, source) as client:
        try:
            reply = send(client, with_id(f"BACK{time.monotonic_ns()}"))
        except OSError:
            reply = b""
        assert reply and msa(reply)[0] == "AA"


def test_two_thousand_refused_tries_make_two_log_lines(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    env = {"HL7_ALLOWED_SOURCES": "192.0.2.0/24"}
    with recording() as log, running(database_url, fake_slack, smtp_server, {}, **env) as feed:
        for _ in range(2000):
            with socket.create_connection(("127.0.0.1", feed.server.port), timeout=10) as raw:
                assert raw.recv(1) == b""  # closed by the listener: this try was seen
        with MllpClientFrom(feed.server.port, "127.0.0.2") as other:  # another source: its own line
            assert other.socket.recv(1) == b""
        assert count(feed, FeedMessage) == 0
    lines = [line for line in log.text().splitlines() if "refused" in line]
    assert lines[:2] == [
        "hl7 connection from 127.0.0.1 refused: not in HL7_ALLOWED_SOURCES",
        "hl7 connection from 127.0.0.2 refused: not in HL7_ALLOWED_SOURCES",
    ]
    # The rest counted, and said once the listener stopped (or the minute was over).
    assert lines[2:] == [
        "hl7 connection from 127.0.0.1 refused: not in HL7_ALLOWED_SOURCES (and 1999 more like it "
        "since the last such line, not logged one by one)"
    ]


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6")
def test_bind_any_ipv6_takes_ipv4_engines_too(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    with (
        recording() as log,
        running(database_url, fake_slack, smtp_server, {}, HL7_BIND="::") as feed,
    ):
        assert feed.send(NEWBORN) == ("AA", "EP000101")  # the library's IPv4 client
        with socket.create_connection(("::1", feed.server.port), timeout=10) as six:
            six.sendall(SB + with_id("SIX") + b"\x1c\r")
            assert msa(read_frames(six, 1)[0]) == ("AA", "SIX")
    assert "(plain MLLP; IPv4 and IPv6)" in log.text()
    assert "hl7 connection from 127.0.0.1" in log.text()  # not ::ffff:127.0.0.1


def test_control_characters_in_a_control_id_never_reach_the_log(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer
) -> None:
    hostile = "EP\x1b[2J\x1b]0;owned\x07\u202eX"
    missing_dob = fixture_bytes("adt_a04_missing_dob_v231.hl7")
    control_id = missing_dob.split(b"|")[9]
    formatter = FieldsFormatter("%(levelname)s %(name)s: %(message)s")
    with recording("") as log, running(database_url, fake_slack, smtp_server, {}) as feed:
        assert feed.send(with_id(hostile))[0] == "AA"
        assert feed.send(missing_dob.replace(control_id, hostile.encode()))[0] == "AE"
    lines = [formatter.format(record) for record in log.records if record.name.startswith("bot")]
    feed_lines = [line for line in lines if "hl7 " in line and "EP" in line]
    assert feed_lines  # the ids are logged...
    for line in lines:  # ...and no line holds a raw control or bidi character
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in line), line
