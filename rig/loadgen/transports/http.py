"""The Responses API over HTTP with SSE: ``http`` (the full context every turn,
``store=false``) and ``http_chained`` (``previous_response_id`` and the new items,
``store=true``), each on one keep-alive connection."""

from __future__ import annotations

from typing import Any

import orjson

from rig.loadgen.http import HTTPConnection
from rig.loadgen.target import Target
from rig.loadgen.transports.base import (
    MAX_RECOVERIES,
    Transport,
    TurnInput,
    TurnOutcome,
    TurnTiming,
)
from rig.loadgen.wire import TcpInfo, TLSWireSocket, WireCounter, WireSocket
from rig.protocol.client import ResponsesStreamReader, error_result

__all__ = ["HTTPTransport", "OverHTTP", "body_sink", "written"]


def body_sink(feed: Any, timing: TurnTiming) -> Any:
    """A body sink for :meth:`HTTPConnection.request`: each piece goes to a reader's
    ``feed_sse``, and the clock is read when the reader reports a mark."""
    mark = timing.mark

    def sink(chunk: bytes) -> None:
        marks = feed(chunk)
        if marks:
            mark(marks)

    return sink


def written(timing: TurnTiming, outcome: TurnOutcome, size: int) -> Any:
    """An ``on_written`` for :meth:`HTTPConnection.request`: the write's time is the turn's
    ``upload_ms``, and its ``size`` body bytes count once written (an attempt whose
    connection then breaks sent them too)."""

    def done(seconds: float) -> None:
        timing.uploaded(seconds)
        outcome.body_bytes_sent += size

    return done


class OverHTTP(Transport):
    """A transport on one keep-alive HTTP/1.1 connection."""

    watches_idle = True

    def __init__(self, target: Target, counter: WireCounter, **kw: Any):
        super().__init__(target, counter, **kw)
        self.connection = HTTPConnection(
            target.host,
            target.port,
            counter,
            tls=self.tls,
            timeout=self.timeout,
            dial=self._at,
            watch=self.idle,
        )

    def _at(self) -> tuple[str, int, WireSocket | TLSWireSocket]:
        """A new keep-alive connection, to the next of the target's URLs."""
        dialled = self._set_up(self._dial)
        return dialled.endpoint.host, dialled.endpoint.port, dialled.wire

    def _drop(self) -> None:
        self.connection.close()

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the keep-alive connection."""
        return self.connection.tcp_info()

    def close(self) -> None:
        """Close the keep-alive connection."""
        self.connection.close()


class HTTPTransport(OverHTTP):
    """Responses API over HTTP with SSE: ``http`` (full context) or ``http_chained``."""

    def __init__(self, target: Target, counter: WireCounter, *, chained: bool, **kw: Any):
        super().__init__(target, counter, **kw)
        self.chained = chained
        self.store = chained
        self.name = "http_chained" if chained else "http"
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **target.auth_headers(),
        }

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        chained = self.chained
        for _ in range(MAX_RECOVERIES + 1):
            body = orjson.dumps(dict(self._body(turn, chained), stream=True))
            reader = ResponsesStreamReader()
            timing.sent()  # before a connect the request may need: its time is the turn's
            result = self.connection.request(
                "POST",
                self.target.base_path + "/responses",
                body,
                self._headers,
                body_sink(reader.feed_sse, timing),
                on_written=written(timing, outcome, len(body)),
            )
            outcome.body_bytes_recv += result.body_bytes
            if result.status != 200:
                outcome.apply(error_result(result.status, result.error_body, result.headers))
            else:
                outcome.apply(reader.result())
            if outcome.resend_in_full(chained):  # previous_response_not_found
                chained = False
                continue
            return

    def body_size(self, turn: TurnInput) -> int:
        """Bytes of the first attempt's request body (``stream: true`` included)."""
        return len(orjson.dumps(dict(self._body(turn, self.chained), stream=True)))
