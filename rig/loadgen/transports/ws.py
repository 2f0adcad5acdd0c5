"""Responses API WebSocket mode, one connection per session: ``ws`` (``store=false``) and
``ws_stored`` (``store=true``), ``previous_response_id`` and the new items every turn."""

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
from rig.loadgen.wire import TcpInfo, WireCounter
from rig.loadgen.ws import WSConnection
from rig.protocol.client import ResponsesStreamReader, TurnResult
from rig.protocol.ws import CONNECTION_LIMIT_CODE, encode_client_event

__all__ = ["WSTransport"]


class WSTransport(Transport):
    """Responses API WebSocket mode: ``ws`` (``store=false``) or ``ws_stored``."""

    chained = True

    def __init__(
        self,
        target: Target,
        counter: WireCounter,
        *,
        store: bool,
        resume: bool = False,
        **kw: Any,
    ):
        super().__init__(target, counter, **kw)
        self.store = store
        self.resume = resume or store
        """Continue with ``previous_response_id`` on a new connection (a target that
        checkpoints, like the gateway, resumes; else the documented full resend)."""
        self.name = "ws_stored" if store else "ws"
        self.connection: WSConnection | None = None
        self.connects = 0

    def _connect(self) -> WSConnection:
        """A new WebSocket to the next of the target's URLs (TCP, TLS, upgrade)."""
        dialled = self._dial()
        connection = WSConnection.handshake(
            dialled.wire, dialled.endpoint.ws_url, headers=self.target.auth_headers()
        )
        self.connects += 1
        return connection

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        chained = True
        failure: ConnectionError | None = None
        for _ in range(MAX_RECOVERIES + 1):
            timing.sent()  # the handshake counts toward the turn's time and bytes
            if self.connection is None or not self.connection.open:
                if self.connection is not None or self.connects:
                    # A new connection after the first: memory of the old one is gone
                    # (unless the target checkpoints it: --ws-resume).
                    outcome.retries += 1
                    chained = chained and self.resume
                self.connection = self._set_up(self._connect)
            payload = encode_client_event(self._body(turn, chained))
            try:
                result = self._exchange(self.connection, payload, outcome, timing)
            except ConnectionError as exc:  # WSClosedError, or a reset
                # Closed or reset under us (age limit, restart): reconnect and resend.
                failure = exc
                self.connection.close()
                self.connection = None
                continue
            outcome.apply(result)
            if outcome.error_code == CONNECTION_LIMIT_CODE:
                self.connection.close()
                self.connection = None
                continue
            if outcome.resend_in_full(chained):  # previous_response_not_found
                chained = False
                continue
            return
        outcome.status = "error"
        outcome.error = outcome.error or f"connection kept closing; gave up (last: {failure})"

    def _exchange(
        self, connection: WSConnection, payload: bytes, outcome: TurnOutcome, timing: TurnTiming
    ) -> TurnResult:
        began = time.perf_counter()
        connection.send_text(payload)
        timing.uploaded(time.perf_counter() - began)
        outcome.body_bytes_sent += len(payload)  # written: a stale connection takes it too
        reader = ResponsesStreamReader()
        feed, mark = reader.feed_messages, timing.mark
        try:
            while reader.raw is None:
                marks = feed(connection.receive())
                if marks:
                    mark(marks)
        finally:
            outcome.body_bytes_recv += reader.body_bytes
        connection.unreceive(reader.leftover)  # e.g. a stale age-limit error
        return reader.result()

    def _drop(self) -> None:
        if self.connection is not None:
            self.connection.abort()
            self.connection = None

    @property
    def close_has_bytes(self) -> bool:
        """An open WebSocket closes with a handshake: 8 bytes up, 4 down (code 1000)."""
        return self.connection is not None and self.connection.open

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's counters of the WebSocket's connection."""
        return self.connection.wire.tcp_info() if self.connection is not None else None

    def close(self) -> None:
        """Close the WebSocket: the closing handshake, the server's answer read."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
