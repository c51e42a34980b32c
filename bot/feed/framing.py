"""MLLP framing (SPEC §8): a frame is 0x0B <message> 0x1C 0x0D. The listener (mllp.py) feeds
the bytes it reads to a `Framer` and answers each frame it gets back."""

from __future__ import annotations

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
MAX_FRAME = 1 << 20


class FrameTooLarge(Exception):
    pass


class Framer:
    """Splits a byte stream into MLLP frames' contents."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._max = max_frame

    @property
    def in_frame(self) -> bool:
        """A frame has started and is not complete yet."""
        return self._in_frame

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
