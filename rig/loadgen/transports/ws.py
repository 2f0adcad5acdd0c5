"""Responses API WebSocket mode, one connection per session: ``ws`` (``store=false``) and
``ws_stored`` (``store=true``), ``previous_response_id`` and the new items every turn.

With ``--ws-fallback N`` a session whose WebSocket attempts failed N times in a row (a
refused or failed connect or upgrade, a connection that broke beyond the protocol's
recoveries, a stream that went idle) continues over HTTP with the full context and
``store=false``, for the rest of its life, as Codex does; its turns are then marked
``fallback`` (its records keep the transport it was configured with)."""

from __future__ import annotations

import time
from typing import Any

from rig.loadgen.target import Target
from rig.loadgen.transports.base import (
    MAX_RECOVERIES,
    Transport,
    TurnInput,
    TurnOutcome,
    TurnTiming,
)
from rig.loadgen.transports.http import HTTPTransport
from rig.loadgen.wire import TcpInfo, WireCounter
from rig.loadgen.ws import WSConnection
from rig.protocol.client import ResponsesStreamReader, TurnResult
from rig.protocol.ws import CONNECTION_LIMIT_CODE, encode_client_event

__all__ = ["WSTransport"]


class WSTransport(Transport):
    """Responses API WebSocket mode: ``ws`` (``store=false``) or ``ws_stored``."""

    chained = True
    watches_idle = True

    def __init__(
        self,
        target: Target,
        counter: WireCounter,
        *,
        store: bool,
        resume: bool = False,
        deflate: bool = False,
        **kw: Any,
    ):
        super().__init__(target, counter, **kw)
        self._common = kw
        self.store = store
        self.resume = resume or store
        """Continue with ``previous_response_id`` on a new connection (a target that
        checkpoints, like the gateway, resumes; else the documented full resend)."""
        self.deflate = deflate
        """Offer permessage-deflate on each connection (``--ws-deflate``)."""
        self.name = "ws_stored" if store else "ws"
        self.connection: WSConnection | None = None
        self.connects = 0
        self.failures = 0
        """WebSocket attempts failed in a row (``--ws-fallback`` counts them)."""
        self.fallback: HTTPTransport | None = None
        """Where the session's turns go once it fell back to HTTP."""

    def _connect(self) -> WSConnection:
        """A new WebSocket to the next of the target's URLs (TCP, TLS, upgrade)."""
        dialled = self._dial()
        connection = WSConnection.handshake(
            dialled.wire,
            dialled.endpoint.ws_url,
            headers=self.target.auth_headers(),
            watch=self.idle,
            deflate=self.deflate,
        )
        self.connects += 1
        return connection

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        if self.fallback is not None:
            outcome.fallback = True
            self.fallback._timing = timing  # its connects are this turn's
            try:
                self.fallback._attempts(turn, outcome, timing)
            finally:
                self.fallback._timing = None
            return
        chained = True
        failure: ConnectionError | None = None
        for _ in range(MAX_RECOVERIES + 1):
            timing.sent()  # the handshake counts toward the turn's time and bytes
            if self.connection is None or not self.connection.open:
                if self.connection is not None or self.connects:
                    # A new connection after the first: memory of the old one is gone
                    # (unless the target checkpoints it: --ws-resume).
                    if self.connection is not None:  # closed since the last turn: a break
                        outcome.broke(timing)
                    outcome.retries += 1
                    chained = chained and self.resume
                self.connection = self._set_up(self._connect)
            payload = encode_client_event(self._body(turn, chained))
            try:
                result = self._exchange(self.connection, payload, outcome, timing)
            except ConnectionError as exc:  # WSClosedError, or a reset
                # Closed or reset under us (age limit, restart): reconnect and resend.
                failure = exc
                outcome.broke(timing)
                self.connection.close()
                self.connection = None
                continue
            outcome.apply(result)
            if outcome.error_code == CONNECTION_LIMIT_CODE:  # the age limit: closed under us
                outcome.broke(timing)
                self.connection.close()
                self.connection = None
                continue
            if outcome.resend_in_full(chained):  # previous_response_not_found
                chained = False
                continue
            return
        outcome.status = "error"
        outcome.error = outcome.error or f"connection kept closing; gave up (last: {failure})"
        outcome.broken = failure is not None

    def body_size(self, turn: TurnInput) -> int:
        """Bytes of the first attempt's ``response.create`` message."""
        if self.fallback is not None:
            return self.fallback.body_size(turn)
        return len(encode_client_event(self._body(turn, True)))

    def _failed(self, outcome: TurnOutcome) -> bool:
        """Count a failed WebSocket attempt; at ``--ws-fallback`` of them in a row, go on
        over HTTP (the turn is tried again there at once)."""
        if self.fallback is not None:
            return False
        self.failures += 1
        limit = self.stream.ws_fallback
        if not limit or self.failures < limit:
            return False
        self._drop()
        self.fallback = HTTPTransport(self.target, self.counter, chained=False, **self._common)
        self.fallback.connection.watch = self.idle  # this transport's attempts arm it
        return True

    def _succeeded(self) -> None:
        self.failures = 0

    def _exchange(
        self, connection: WSConnection, payload: bytes, outcome: TurnOutcome, timing: TurnTiming
    ) -> TurnResult:
        began = time.perf_counter()
        connection.send_text(payload)
        timing.uploaded(time.perf_counter() - began)
        outcome.body_bytes_sent += len(payload)  # written: a stale connection takes it too
        reader = ResponsesStreamReader()
        feed, mark = reader.feed_messages, timing.mark

        def handle(messages: list[bytes]) -> bool:
            marks = feed(messages)
            if marks:
                mark(marks)
            return reader.raw is not None

        try:
            connection.stream(handle)
        finally:
            outcome.body_bytes_recv += reader.body_bytes
        connection.unreceive(reader.leftover)  # e.g. a stale age-limit error
        return reader.result()

    def _drop(self) -> None:
        if self.connection is not None:
            self.connection.abort()
            self.connection = None
        if self.fallback is not None:
            self.fallback._drop()

    @property
    def close_has_bytes(self) -> bool:
        """An open WebSocket closes with a handshake: 8 bytes up, 4 down (code 1000)."""
        return self.connection is not None and self.connection.open

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the WebSocket's connection (or, after a fallback, of
        the HTTP one)."""
        if self.fallback is not None:
            return self.fallback.tcp_info()
        return self.connection.wire.tcp_info() if self.connection is not None else None

    def close(self) -> None:
        """Close the WebSocket: the closing handshake, the server's answer read."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.fallback is not None:
            self.fallback.close()
