"""Server-sent events: encoding as the APIs send them, and an incremental decoder.

Responses API streams name each event (``event: response.output_text.delta``); Chat
Completions sends bare ``data:`` lines and ends with ``data: [DONE]``. The decoder follows
the WHATWG event-stream rules (LF, CRLF or CR line ends; ``:`` comments; multi-line
``data``) and is fed arbitrary byte chunks, as they come off a socket.

The decoder's work is linear in what it is fed, however an event is split into chunks
(a chunk that completes no message is only kept; the pieces are joined once, when a blank
line completes one), and it holds at most :data:`MAX_EVENT_BYTES` of one unfinished event:
a target that sends more without ending it gets :class:`SSEEventTooLarge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from rig.errors import RigError

__all__ = [
    "DONE",
    "MAX_EVENT_BYTES",
    "SSEDecoder",
    "SSEError",
    "SSEEventTooLarge",
    "SSEMessage",
    "encode_data",
    "encode_event",
]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest event the decoder holds (16 MiB): a Responses API event carries one delta
or, at the end, the whole response, far below it; more is a stream gone wrong."""


class SSEError(RigError, ValueError):
    """An event stream the decoder cannot read."""


class SSEEventTooLarge(SSEError):
    """An event grew past the decoder's bound without a blank line ending it."""


DONE = b"data: [DONE]\n\n"
"""The terminator of a Chat Completions stream."""


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One dispatched event: its name (``""`` when unnamed) and its data bytes."""

    event: str
    data: bytes


def encode_event(event: dict[str, Any]) -> bytes:
    """A Responses API event as one SSE message: ``event: <type>`` then ``data: <json>``."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_data(payload: dict[str, Any]) -> bytes:
    """A Chat Completions chunk as one SSE message with a bare ``data:`` line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class SSEDecoder:
    """Incremental SSE parser: :meth:`feed` bytes, get the messages they complete.

    Bytes are kept until a blank line completes a message; each message is then read
    whole. The two shapes the APIs send (``event:`` + ``data:``, or one ``data:`` line)
    are read with two ``find`` calls; anything else (comments, ``id``, several ``data``
    lines, fields without a space) goes through the general line-by-line rules.
    """

    __slots__ = ("_last_lf", "_parts", "_pending", "_pending_cr", "copied", "max_event_bytes")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._parts: list[bytes] = []
        """The unfinished message's pieces, LF line ends only, no blank line among them."""
        self._pending = 0
        self._last_lf = False
        self._pending_cr = False
        self.max_event_bytes = max_event_bytes
        self.copied = 0
        """Bytes copied to join pieces of messages: at most three times what was fed
        (each byte is joined once with its message, and may be kept over once before),
        so the work stays linear in the input however finely an event was split."""

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Consume ``chunk``; return every message it completes, in order.

        :class:`SSEEventTooLarge` when an unfinished event would exceed
        :attr:`max_event_bytes` (the decoder is then of no further use).
        """
        if self._pending_cr:
            # A CR ended the previous chunk; a LF starting this one belongs to it.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                self._pending_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return []
        parts = self._parts
        if parts:
            # The pieces held have no blank line: one can only end in this chunk, or
            # straddle the boundary (a held LF, then a LF).
            if not (self._last_lf and chunk[0] == 0x0A) and chunk.find(b"\n\n") < 0:
                self._hold(chunk)
                return []
            parts.append(chunk)
            buffer = b"".join(parts)
            self.copied += len(buffer)
            parts.clear()
            self._pending = 0
        else:
            buffer = chunk
        messages: list[SSEMessage] = []
        start = 0
        limit = self.max_event_bytes
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            if end - start > limit:
                self._too_large(end - start)
            block = buffer[start:end]  # one message's lines, without the blank line
            start = end + 2
            if block.startswith(b"event: "):
                newline = block.find(b"\n")
                if (
                    newline > 0
                    and block.startswith(b"data: ", newline + 1)
                    and block.find(b"\n", newline + 1) < 0
                ):
                    event = block[7:newline].decode("utf-8", "replace")
                    messages.append(SSEMessage(event, block[newline + 7 :]))
                    continue
            elif block.startswith(b"data: ") and block.find(b"\n") < 0:
                messages.append(SSEMessage("", block[6:]))
                continue
            message = _read_block(block)
            if message is not None:
                messages.append(message)
        if start < len(buffer):
            rest = buffer[start:] if start else buffer
            self.copied += len(rest) if start else 0
            self._hold(rest)
        return messages

    def _hold(self, piece: bytes) -> None:
        """Keep ``piece`` of the unfinished message, within the bound."""
        self._pending += len(piece)
        if self._pending > self.max_event_bytes:
            self._too_large(self._pending)
        self._parts.append(piece)
        self._last_lf = piece[-1] == 0x0A

    def _too_large(self, size: int) -> NoReturn:
        raise SSEEventTooLarge(
            f"the target sent an SSE event of more than {self.max_event_bytes:,} bytes "
            f"({size:,} so far) without the blank line that ends it; the stream was abandoned"
        )

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return self._pending


def _read_block(block: bytes) -> SSEMessage | None:
    """A message from its lines by the general rules; None when it has no data.

    A block may start with blank lines (a blank line after a dispatch): they dispatch
    nothing, since no field came before them.
    """
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # a leading blank line, or a ":" comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        # "id" and "retry" carry nothing the rig uses.
    if not data:
        return None
    return SSEMessage(event, b"\n".join(data))
