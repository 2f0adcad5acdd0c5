"""Chat Completions chunks turned into Responses API events, as they arrive (no I/O).

The events themselves come from :class:`rig.protocol.events.ResponseStream`, the builder
the mock uses, so a client of a Chat upstream gets the same numbered sequence, item shapes
and final response object as from a Responses upstream. ``ResponseStream.message`` and
``function_call`` take the pieces of an item as a list and are generators; the chunks of
an upstream arrive one at a time, so each open item is driven by :class:`_LiveItem`: a
list whose iteration hands the generator the next piece when the relay has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.requests import ResponseCreateRequest

__all__ = ["ChatRelay"]


class _Pieces(list[str]):
    """The pieces of one item so far. The builder's ``for piece in pieces`` (its first
    iteration) gets a live iterator that yields what :meth:`push` hands it and stops at
    :meth:`close`; any later iteration (its ``"".join``) sees the plain list."""

    def __init__(self) -> None:
        super().__init__()
        self._next: list[str] = []
        self._closed = False
        self._live_taken = False

    def push(self, piece: str) -> None:
        self._next.append(piece)

    def close(self) -> None:
        self._closed = True

    def __iter__(self) -> Iterator[str]:
        if self._live_taken:
            return super().__iter__()
        self._live_taken = True
        return self._live()

    def _live(self) -> Iterator[str]:
        while True:
            if self._next:
                piece = self._next.pop(0)
                self.append(piece)
                yield piece
            elif self._closed:
                return
            else:  # the relay resumes the builder only after a push or the close
                raise RuntimeError("an item's builder was resumed without a piece")


class _LiveItem:
    """One output item being built: the builder's generator and its live pieces."""

    def __init__(self, events: Iterator[dict[str, Any]], pieces: _Pieces, lead: int):
        self.events = events
        self.pieces = pieces
        self.lead = lead
        """Events the builder yields before it reads its first piece."""

    def open(self) -> list[dict[str, Any]]:
        return [next(self.events) for _ in range(self.lead)]

    def piece(self, text: str) -> list[dict[str, Any]]:
        self.pieces.push(text)
        return [next(self.events)]

    def close(self) -> list[dict[str, Any]]:
        self.pieces.close()
        return list(self.events)


class ChatRelay:
    """One streamed chat completion as one streamed Response: feed each decoded chunk to
    :meth:`feed`, then call :meth:`finish`; each returns the events to send."""

    def __init__(self, request: ResponseCreateRequest, *, obfuscate: bool = True):
        self.stream = ResponseStream(request, obfuscate=obfuscate)
        self._item: _LiveItem | None = None
        self._kind = ""  # "text" or the chat index of the open tool call
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        return [self.stream.created(), self.stream.in_progress()]

    def _switch(self, kind: str, item: _LiveItem | None) -> list[dict[str, Any]]:
        events = self._item.close() if self._item is not None else []
        self._item, self._kind = item, kind
        if item is not None:
            events += item.open()
        return events

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events for one ``chat.completion.chunk``."""
        events: list[dict[str, Any]] = []
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if self._kind != "text":
                    pieces = _Pieces()
                    events += self._switch(
                        "text", _LiveItem(self.stream.message(pieces), pieces, 2)
                    )
                assert self._item is not None
                events += self._item.piece(content)
            for call in delta.get("tool_calls") or ():
                kind = f"call:{call.get('index', 0)}"
                function = call.get("function") or {}
                if kind != self._kind:
                    pieces = _Pieces()
                    builder = self.stream.function_call(
                        function.get("name") or "", pieces, call_id=call.get("id")
                    )
                    events += self._switch(kind, _LiveItem(builder, pieces, 1))
                arguments = function.get("arguments")
                if arguments:
                    assert self._item is not None
                    events += self._item.piece(arguments)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The last events: the open item's end, then ``response.completed`` (or
        ``response.incomplete`` when the upstream stopped at its token limit)."""
        events = self._switch("", None)
        usage = self.usage or {}
        details = usage.get("prompt_tokens_details") or {}
        response_usage = usage_object(
            usage.get("prompt_tokens", 0),
            details.get("cached_tokens", 0) or 0,
            usage.get("completion_tokens", 0),
        )
        if self.finish_reason == "length":
            events.append(self.stream.incomplete(response_usage))
        else:
            events.append(self.stream.completed(response_usage))
        return events
