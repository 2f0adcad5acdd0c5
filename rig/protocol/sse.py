"""Server-sent events: encoding as the APIs send them, and an incremental decoder.

Responses API streams name each event (``event: response.output_text.delta``); Chat
Completions sends bare ``data:`` lines and ends with ``data: [DONE]``. The decoder follows
the WHATWG event-stream rules (LF, CRLF or CR line ends; ``:`` comments; multi-line
``data``) and is fed arbitrary byte chunks, as they come off a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["DONE", "SSEDecoder", "SSEMessage", "encode_data", "encode_event"]

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

    __slots__ = ("_buffer", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Consume ``chunk``; return every message it completes, in order."""
        if self._pending_cr:
            # A CR ended the previous chunk; a LF starting this one belongs to it.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                self._pending_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        messages: list[SSEMessage] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
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
        self._buffer = buffer[start:]
        return messages

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)


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
