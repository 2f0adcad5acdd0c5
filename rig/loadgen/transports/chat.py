"""Chat Completions with streaming (``chat``): the full ``messages`` every turn, the
classic stateless baseline, on one keep-alive connection."""

from __future__ import annotations

from typing import Any

import orjson

from rig.loadgen.target import Target
from rig.loadgen.transports.base import TurnInput, TurnOutcome, TurnTiming
from rig.loadgen.transports.http import OverHTTP, body_sink, written
from rig.loadgen.wire import WireCounter
from rig.protocol.client import ChatStreamReader, chat_body, error_result
from rig.protocol.transcript import chat_tools

__all__ = ["ChatTransport"]


class ChatTransport(OverHTTP):
    """Chat Completions with streaming: the full ``messages`` every turn."""

    name = "chat"

    def __init__(self, target: Target, counter: WireCounter, **kw: Any):
        super().__init__(target, counter, **kw)
        self._tools = chat_tools(self.tools)
        self._headers = {"Content-Type": "application/json", **target.auth_headers()}

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        body = chat_body(
            model=self.target.model,
            instructions=self.instructions,
            tools=self._tools,
            transcript=turn.transcript,
            metadata=turn.metadata,
        )
        payload = orjson.dumps(body)
        reader = ChatStreamReader()
        timing.sent()  # before a connect the request may need: its time is the turn's
        result = self.connection.request(
            "POST",
            self.target.base_path + "/chat/completions",
            payload,
            self._headers,
            body_sink(reader.feed_sse, timing),
            # Bytes add up over attempts (a rate-limited attempt's bytes were sent too).
            on_written=written(timing, outcome, len(payload)),
        )
        outcome.body_bytes_recv += result.body_bytes
        if result.status != 200:
            outcome.apply(error_result(result.status, result.error_body, result.headers))
        else:
            outcome.apply(reader.result())
