"""The common WebSocket frame, read without websockets' parser; every other one with it.

websockets' sans-I/O parser (a generator per frame, an ``Opcode`` enum and a ``Frame``
dataclass built for each) costs about 3 µs a frame, and a streaming turn at one token per
delta is some 375 frames: with the reads in one loop (:mod:`rig.loadgen.readloop`), half of
what a `ws` turn costs the load generator. No compiled reader from a well-kept library
accepts and rejects what websockets does (docs/performance.md, "WebSocket frame reader").
So websockets stays the parser, and this module only takes the frames that leave it
nothing to decide: a whole, final, unmasked text or binary frame with no reserved bit, at
most ``max_size`` long, arriving while the connection is open, no fragmented message is
in progress and websockets is between frames. For such a frame websockets' parser would
only hand the payload over; here it is handed over directly. Everything else - control
frames, fragments, masked or reserved or oversized frames, invalid opcodes, anything once
the connection is closing or websockets has failed - goes to websockets as it arrived,
one frame at a time, so that websockets is again between frames before the next simple
one is taken. ``tests/unit/test_loadgen_wsframes.py`` feeds fuzzed frame streams, cut
anywhere, to websockets alone and through this module and checks every message, error,
state and byte sent agree after each read.

A simple frame whose bytes have not all arrived is held here (websockets has not seen it);
at the end of the stream it goes to websockets first, which then fails as it would have.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.protocol import State

__all__ = ["FrameSplitter", "frame_length"]

_OPEN = State.OPEN
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82


def frame_length(buf: bytes | bytearray, p: int = 0) -> int | None:
    """The whole length (header, mask and payload) of the frame that starts at ``buf[p]``,
    or ``None`` while its length field has not all arrived."""
    n = len(buf) - p
    if n < 2:
        return None
    second = buf[p + 1]
    length = second & 0x7F
    head = 6 if second & 0x80 else 2
    if length == 126:
        if n < 4:
            return None
        length = int.from_bytes(buf[p + 2 : p + 4], "big")
        head += 2
    elif length == 127:
        if n < 10:
            return None
        length = int.from_bytes(buf[p + 2 : p + 10], "big")
        head += 8
    return head + length


class FrameSplitter:
    """Splits a client connection's incoming bytes between the common frame, read here,
    and websockets' parser, for everything else (module docstring)."""

    __slots__ = ("_carry", "_head", "_owed", "on", "protocol")

    def __init__(self, protocol: ClientProtocol, received: bytes = b""):
        """``received``: the frame bytes websockets has already been given (those that
        came with the answer to the upgrade), so as to know where its frames end."""
        self.protocol = protocol
        self.on = True
        """False once websockets has failed or the connection is no longer open: from
        then on every byte goes to websockets."""
        self._carry = b""
        """The start of a simple frame, held here (websockets has not seen it)."""
        self._owed = 0
        """Bytes websockets still needs to finish the frame it is in."""
        self._head = b""
        """The start of a frame websockets is in, before its length field is complete."""
        self._skip(received)

    def _skip(self, given: bytes) -> None:
        """Follow the frame boundaries of bytes websockets was given."""
        p, n = 0, len(given)
        while p < n:
            if self._owed:
                taken = min(self._owed, n - p)
                self._owed -= taken
                p += taken
                continue
            if self._head:
                given = self._head + given[p:]
                p, n = 0, len(given)
                self._head = b""
            total = frame_length(given, p)
            if total is None:
                self._head = given[p:]
                return
            self._owed = total

    def feed(
        self,
        data: bytes,
        messages: list[bytes],
        forward: Callable[[bytes], None],
    ) -> None:
        """Take ``data`` (one read): the payload of every simple frame is appended to
        ``messages``; what is not simple goes to ``forward``, which gives it to websockets
        and collects what websockets makes of it, in stream order."""
        if not self.on:
            forward(data)
            return
        buf = self._carry + data if self._carry else data
        self._carry = b""
        protocol = self.protocol
        max_size = protocol.max_size
        p, n = 0, len(buf)
        while p < n:
            if self._owed or self._head:  # websockets is inside a frame: its bytes first
                p = self._forward_frame(buf, p, forward)
                continue
            if protocol.state is not _OPEN or protocol.parser_exc is not None:
                self.on = False  # websockets decides everything from here on
                forward(buf[p:])
                return
            first = buf[p]
            simple = first in (_FIN_TEXT, _FIN_BINARY)
            if not simple or protocol.cur_size is not None:  # (a fragmented message)
                p = self._forward_frame(buf, p, forward)
                continue
            if n - p < 2:
                self._carry = buf[p:]
                return
            second = buf[p + 1]
            if second & 0x80:  # masked: websockets refuses it
                p = self._forward_frame(buf, p, forward)
                continue
            length = second & 0x7F
            head = 2
            if length >= 126:
                head = 4 if length == 126 else 10
                if n - p < head:
                    self._carry = buf[p:]  # its length field is still coming
                    return
                length = int.from_bytes(buf[p + 2 : p + head], "big")
            if max_size is not None and length > max_size:
                p = self._forward_frame(buf, p, forward)
                continue
            end = p + head + length
            if end > n:
                self._carry = buf[p:]
                return
            messages.append(buf[p + head : end])
            p = end

    def _forward_frame(self, buf: bytes, p: int, forward: Callable[[bytes], None]) -> int:
        """Give websockets the rest of the frame it is in, or else the frame that starts
        at ``buf[p]`` (as much of it as arrived); where the bytes given end."""
        if self._owed:
            end = p + self._owed
        else:  # its header is ``_head`` (empty: none of it given yet) and what follows
            total = frame_length(self._head + buf[p : p + 10])
            end = len(buf) if total is None else p + total - len(self._head)
        end = min(end, len(buf))
        piece = buf[p:end]
        self._skip(piece)
        forward(piece)
        return end

    def eof(self, forward: Callable[[bytes], None]) -> None:
        """The stream ended: what is held goes to websockets (which then fails on it as it
        would have, with the end of the stream)."""
        if self._carry:
            carry, self._carry = self._carry, b""
            forward(carry)
