"""The gateway as an ASGI application: the Responses API to clients, stateless upstreams
behind it.

Routes (one port):

* ``POST /v1/responses`` - JSON or SSE (``stream: true``);
* ``GET /v1/responses`` upgraded to WebSocket - Responses API WebSocket mode;
* ``GET``/``DELETE /v1/responses/{id}`` - what the gateway stored, by owner;
* ``GET /health`` and ``GET /stats``.

Every request, stateless or not, takes the same path: validate (:mod:`rig.protocol`),
resolve ``previous_response_id`` and check tool pairing
(:class:`rig.gateway.state.GatewayState`: the WebSocket's memory, then the checkpoints,
only the caller's), rebuild the full context, call the upstream with it
(:mod:`rig.gateway.upstream`), relay its events, and record the finished response (held by
its connection, checkpointed) before its terminal event is sent, so a client that reacts
to it finds it, on any replica. WebSocket mode's lanes,
limits and age are :class:`rig.protocol.wsmode.WSModeRules`'. Every failure is the API's
error shape: an HTTP status and ``{"error": ...}``, or an ``error`` event on a WebSocket
that stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import psutil
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from rig.conversation import owner_id, pending_calls
from rig.gateway.checkpoints import Conversation, exact_bytes, join_arrays
from rig.gateway.config import GatewayConfig, UpstreamConfig
from rig.gateway.metrics import CONTENT_TYPE_LATEST, GatewayCollector, exposition
from rig.gateway.state import GatewayState, IdleCompaction, SessionCache
from rig.gateway.stats import GatewayStats
from rig.gateway.upstream import (
    ENCRYPTED_REASONING,
    EventBatch,
    RelayedEvent,
    Upstream,
    UpstreamCall,
    UpstreamError,
    without_encrypted_reasoning,
)
from rig.protocol.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    RequestTimeoutError,
    ws_error_event,
)
from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.models import model_object
from rig.protocol.requests import (
    ResponseCreateRequest,
    normalize_input,
    parse_create_request,
    parse_json_object,
)
from rig.protocol.tokens import tokens_in_bytes
from rig.protocol.ws import ClientEventParser
from rig.serving import (
    bearer,
    check_api_key,
    error_response,
    json_response,
    not_found,
    server_error,
)
from rig.serving.body import ClientGone, gone_answer, read_body
from rig.serving.deadlines import Deadlines
from rig.serving.wsmode import LaneRelease, WSModeConnection
from rig.serving.wsproto import SEND_MANY
from rig.traces.recorder import RecordingTurn, TraceRecorder
from rig.traces.shape import scope_head_bytes, ws_frame_header_bytes

__all__ = ["Gateway", "GatewayFront", "build_app"]

log = logging.getLogger("rig.gateway")


def _raw_items(value: Any) -> list[dict[str, Any]]:
    """A request's ``input`` as the items the upstream gets: a string is one user message;
    items stay as the client sent them (validated), so nothing is lost on the way up."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value)


def _obfuscate(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_obfuscation") is False)


def _stream_id_tail(stream_id: str) -> bytes:
    """What replaces an event's closing brace to append ``stream_id`` (no parse)."""
    return b',"stream_id":' + orjson.dumps(stream_id) + b"}"


Emit = Callable[[EventBatch, int, int], Awaitable[None]]
"""Sends events ``start`` to ``stop`` of a batch to the client."""


@dataclass(slots=True)
class _Turn:
    """A request resolved against the gateway's state, ready for the upstream."""

    request: ResponseCreateRequest
    body: dict[str, Any]
    owner: str
    context: bytes
    """The full context as a JSON array: the resumed conversation, then the new items
    (spliced as bytes, never decoded: the upstream gets it as it is)."""
    added: bytes
    """The new items as a JSON array."""
    prior: Conversation | None = None
    upstream_key: str | None = field(default=None, repr=False)
    """The client's key, passed through to the upstream (``client_keys: pass-through``)."""
    started: float = field(default_factory=time.perf_counter)
    """``time.perf_counter()`` when the gateway began on it (its request parsed)."""
    call: UpstreamCall | None = None
    trace: RecordingTurn | None = None
    """Its turn in the trace being recorded (``--record``), ended when it is recorded."""


class Gateway:
    """State shared by the handlers of one gateway process."""

    def __init__(
        self,
        config: GatewayConfig,
        state: GatewayState,
        stats: GatewayStats,
        upstreams: Mapping[UpstreamConfig, Upstream],
        recorder: TraceRecorder | None = None,
        compaction: IdleCompaction | None = None,
    ):
        self.config = config
        self.state = state
        self.stats = stats
        self.deadlines = Deadlines()
        """The WebSockets' age limits, on one loop timer."""
        self.upstreams = upstreams
        self.recorder = recorder
        """Writes a trace of every session (``--record``); ``None``: no recording work."""
        self.compaction = compaction
        """Packs idle conversations (``--compact-after``); ``None``: never."""
        self.connections: set[_WSConnection] = set()
        self.client_events = ClientEventParser()
        """WebSocket frames validated, the tools they resend validated once."""
        self.draining = False
        self._process = psutil.Process()
        stats.registry.register(GatewayCollector(self.figures, stats.histograms))

    # -- shared steps -----------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """Raise :class:`AuthenticationError` unless a configured key was presented (any
        caller is let in when no key is configured). With ``client_keys: pass-through`` a
        key is required and returned: this caller's upstream calls carry it."""
        check_api_key(self.config.api_keys, headers)
        key = bearer(headers) if self.config.pass_through else None
        if self.config.pass_through and not key:
            raise AuthenticationError(
                "You didn't provide an API key. Provide it in an Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        return key

    def owner(self, headers: Mapping[str, str]) -> str:
        """Who owns what this caller creates: its key's organisation in the configuration,
        else its key (a digest, never the key)."""
        key = bearer(headers)
        return owner_id(key, self.config.organization_of(key))

    async def prepare(
        self,
        request: ResponseCreateRequest,
        body: dict[str, Any],
        owner: str,
        cache: SessionCache | None = None,
        upstream_key: str | None = None,
    ) -> _Turn:
        """Resolve ``previous_response_id`` (:class:`GatewayState` counts where it was
        found, or why not), check tool pairing, and rebuild the full context."""
        added = orjson.dumps(_raw_items(body.get("input")))
        normal = normalize_input(request)
        previous = request.previous_response_id
        turn = _Turn(request, body, owner, added, added, upstream_key=upstream_key)
        if previous:
            prior = await self.state.resume(previous, normal, owner=owner, cache=cache)
            turn.prior = prior
            turn.context = prior.transcript_with(added)
        else:
            self.state.begin(normal)
        if turn.context == b"[]":
            raise InvalidRequestError(
                "Missing required parameter: 'input'. Provide input items or a "
                "previous_response_id.",
                param="input",
                code="missing_required_parameter",
            )
        return turn

    async def record(
        self,
        turn: _Turn,
        response: dict[str, Any],
        cache: SessionCache | None = None,
        lane: str = "",
    ) -> None:
        """A response finished: its conversation (context plus output) held by the
        connection and checkpointed (:meth:`GatewayState.record` says when)."""
        output = orjson.dumps(response.get("output") or [])
        prior = turn.prior
        tokens = tokens_in_bytes(len(turn.added) + len(output))
        stored = bool(turn.request.store)
        conversation = Conversation(
            owner=turn.owner,
            stored=stored,
            response=exact_bytes(orjson.dumps(response)) if stored else b"",
            items=join_arrays(turn.added, output),
            context_tokens=(prior.context_tokens if prior else 0) + tokens,
            pending=tuple(pending_calls(response)),
            parent=prior,
            parent_id=turn.request.previous_response_id if prior is not None else None,
        )
        await self.state.record(response["id"], conversation, cache=cache, lane=lane)
        if self.recorder is not None:
            self.recorder.end(turn.trace, response)

    def upstream_events(self, turn: _Turn) -> AsyncGenerator[EventBatch, None]:
        """The upstream call for ``turn``, as batches of events (one per upstream read)."""
        upstream = self.upstreams[self.config.upstream_for(turn.request.model)]
        call = UpstreamCall(
            turn.request, turn.body, turn.context, _obfuscate(turn.body), turn.upstream_key
        )
        turn.call = call
        return upstream.batches(call)

    async def relay(
        self,
        turn: _Turn,
        emit: Emit | None,
        on_terminal: Callable[[RelayedEvent], Awaitable[None]],
        batches: AsyncIterator[EventBatch],
        first: EventBatch,
    ) -> RelayedEvent:
        """Send the events of ``first`` and of the rest of ``batches`` with ``emit`` (a
        batch's events before its terminal one in one call; ``None``: a non-streamed answer
        sends none); before the terminal event, await ``on_terminal`` (record it). The
        terminal event; raises :class:`UpstreamError` when the stream ends without one, or
        the upstream's error."""
        batch: EventBatch | None = first
        start = 0
        if emit is not None and first.stop > 0:  # streamed: the first event's way
            await emit(first, 0, 1)
            self._relayed(turn)
            start = 1
        while batch is not None:
            stop = batch.stop
            if emit is not None and start < stop:
                await emit(batch, start, stop)
            terminal = batch.terminal
            if terminal is not None:
                await on_terminal(terminal)
                if emit is not None:
                    await emit(batch, stop, stop + 1)
                self.stats.add(
                    "responses_completed"
                    if terminal.type != "response.failed"
                    else "responses_failed"
                )
                return terminal
            batch = await anext(batches, None)
            start = 0
        raise UpstreamError("The upstream's stream ended before the response did.")

    def _relayed(self, turn: _Turn) -> None:
        """The first event was written: count the gateway's own share of the time."""
        ttfb = turn.call.timing.get("ttfb_s", 0.0) if turn.call is not None else 0.0
        own = max(0.0, time.perf_counter() - turn.started - ttfb)
        self.stats.add("relay_us", int(own * 1e6))
        self.stats.add("relayed_first")
        self.stats.observe("relay_seconds", own)

    async def open_upstream(
        self, turn: _Turn
    ) -> tuple[AsyncGenerator[EventBatch, None], EventBatch]:
        """Call the upstream and wait for its first events (a refusal raises here, before
        anything was sent to the client)."""
        batches = self.upstream_events(turn)
        try:
            first = await anext(batches, None)
            while first is not None and not first:
                first = await anext(batches, None)
        except BaseException:
            await batches.aclose()
            raise
        if first is None:
            raise UpstreamError("The upstream answered with an empty stream.")
        return batches, first

    async def read_body(self, request: Request) -> bytes:
        """The request body (:func:`rig.serving.body.read_body`: 413 past
        ``max_body_bytes``, 408 when it stalls longer than ``body_timeout_s``;
        :class:`ClientGone` if the client left), counted."""
        body = await read_body(
            request, limit=self.config.max_body_bytes, timeout_s=self.config.body_timeout_s
        )
        self.stats.add("client_bytes_in", len(body))
        return body

    def failed(self, error: APIError) -> Response:
        """Count and render an error response (closing the connection after a 408: the
        rest of the stalled body may still arrive)."""
        self.stats.add("errors")
        response = error_response(error)
        if isinstance(error, RequestTimeoutError):
            response.headers["connection"] = "close"
        self.stats.add("client_bytes_out", len(response.body))
        return response

    def gone(self, request: Request) -> Response:
        """The client left before its request was read: counted, then
        :func:`rig.serving.body.gone_answer`."""
        self.stats.add("client_disconnects")
        return gone_answer(request, log)

    # -- HTTP -------------------------------------------------------------------------

    async def create_response(self, request: Request) -> Response:
        """``POST /v1/responses``: JSON, or SSE with ``stream: true``."""
        self.stats.add("http_requests")
        try:
            upstream_key = self.authenticate(request.headers)
            raw = await self.read_body(request)
            body = parse_json_object(raw)
            create = parse_create_request(body)
            if create.background:
                raise InvalidRequestError(
                    "'background' is not supported by the gateway.",
                    param="background",
                    code="unsupported_parameter",
                )
            owner = self.owner(request.headers)
            turn = await self.prepare(create, body, owner, upstream_key=upstream_key)
            if self.recorder is not None:
                turn.trace = self.recorder.begin(
                    raw,
                    transport="sse" if create.stream else "http",
                    header_bytes=scope_head_bytes(request.scope),
                    user_agent=request.headers.get("user-agent"),
                )
            self.stats.add("in_flight")
            try:
                events, first = await self.open_upstream(turn)
            except BaseException:
                self.stats.add("in_flight", -1)
                self.abandon(turn)
                raise
        except APIError as error:
            return self.failed(error)
        except ClientGone:
            return self.gone(request)
        if create.stream:
            return _EventStream(self, turn, events, first)
        try:
            terminal = await self.relay(turn, None, self._recorder(turn), events, first)
        except APIError as error:
            return self.failed(error)
        finally:
            self.stats.add("in_flight", -1)
            self.abandon(turn)
            await _close_events(events)
        assert terminal.response is not None
        if terminal.type == "response.failed":
            detail = (terminal.response.get("error") or {}).get("message") or "failed"
            return self.failed(UpstreamError(f"The upstream's response failed: {detail}"))
        # The response as the client sees it (the recorded copy may hold more, such as
        # the encrypted reasoning the gateway asked for to carry the conversation on).
        response = terminal.response
        if ENCRYPTED_REASONING not in (create.include or ()):
            response = without_encrypted_reasoning(response)
        payload = orjson.dumps(response)
        self.stats.add("client_bytes_out", len(payload))
        return Response(payload, media_type="application/json")

    def abandon(self, turn: _Turn) -> None:
        """The turn ends without a response to record: its trace turn is dropped (nothing
        once it was recorded)."""
        if self.recorder is not None:
            self.recorder.abandon(turn.trace)

    def _recorder(
        self, turn: _Turn, cache: SessionCache | None = None, lane: str = ""
    ) -> Callable[[RelayedEvent], Awaitable[None]]:
        async def record(event: RelayedEvent) -> None:
            if event.type != "response.failed" and event.response is not None:
                await self.record(turn, event.response, cache, lane)

        return record

    async def get_response(self, request: Request) -> Response:
        """``GET /v1/responses/{id}``: the caller's own stored response, else 404; the
        reasoning's encrypted content only with ``include=reasoning.encrypted_content``
        (``include[]`` as the SDK sends it), as the API answers."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            owner = self.owner(request.headers)
            stored = await self.state.retrieve(owner, request.path_params["response_id"])
        except APIError as error:
            return self.failed(error)
        include = request.query_params.getlist("include") + request.query_params.getlist(
            "include[]"
        )
        if ENCRYPTED_REASONING in include or b'"encrypted_content"' not in stored.response:
            return Response(stored.response, media_type="application/json")
        return json_response(without_encrypted_reasoning(stored.response_object()))

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models``: the model names the configuration routes, and the list of
        the upstream that takes every other name (asked with its key, or the client's
        under ``client_keys: pass-through``)."""
        self.stats.add("http_requests")
        try:
            upstream_key = self.authenticate(request.headers)
            named = [model for upstream in self.config.upstreams for model in upstream.models]
            models = {model: model_object(model) for model in named}
            catch_all = next((u for u in self.config.upstreams if not u.models), None)
            if catch_all is not None:
                answer = await self.upstreams[catch_all].get_json("/models", upstream_key)
                for entry in answer.get("data") or ():
                    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                        models.setdefault(entry["id"], entry)
        except APIError as error:
            return self.failed(error)
        return json_response({"object": "list", "data": list(models.values())})

    async def get_model(self, request: Request) -> Response:
        """``GET /v1/models/{id}``: a name the configuration routes, else the upstream that
        would serve it answers."""
        self.stats.add("http_requests")
        model = request.path_params["model_id"]
        try:
            upstream_key = self.authenticate(request.headers)
            upstream = self.config.upstream_for(model)
            if model in upstream.models:
                return json_response(model_object(model))
            answer = await self.upstreams[upstream].get_json(
                f"/models/{quote(model, safe='')}", upstream_key
            )
        except APIError as error:
            return self.failed(error)
        return json_response(answer)

    async def delete_response(self, request: Request) -> Response:
        """``DELETE /v1/responses/{id}``."""
        self.stats.add("http_requests")
        response_id = request.path_params["response_id"]
        try:
            self.authenticate(request.headers)
            await self.state.delete(self.owner(request.headers), response_id)
        except APIError as error:
            return self.failed(error)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    def figures(self) -> dict[str, Any]:
        """Every counter, and what is measured when asked (``/stats``, ``/metrics``)."""
        figures = self.stats.snapshot()
        memory = self.state.memory
        figures["sessions"] = len(memory)
        figures["session_bytes"] = memory.bytes
        figures["compaction_backlog"] = self.compaction.backlog if self.compaction else 0
        figures["memory_rss_bytes"] = self._process.memory_info().rss
        figures["checkpoint_up"] = int(self.state.checkpoint_up)
        figures["draining"] = int(self.draining)
        return figures

    async def health(self, request: Request) -> Response:
        """``GET /health``: 200 ``ok``; 200 ``degraded`` while the checkpoint store does
        not answer (the gateway serves on connection memory); 503 ``draining`` once it
        shuts down (a load balancer stops sending new clients)."""
        if self.draining:
            return json_response({"status": "draining"}, 503)
        if await self.state.probe():
            return json_response({"status": "ok", "checkpoints": "ok"})
        return json_response({"status": "degraded", "checkpoints": "unavailable"})

    async def stats_endpoint(self, request: Request) -> Response:
        """``GET /stats``: the figures, and each upstream's URL, dialect and protocol."""
        totals = self.figures()
        totals["upstreams"] = [
            {"base_url": u.base_url, "dialect": u.dialect, "http2": u.http2}
            for u in self.config.upstreams
        ]
        return json_response(totals)

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus text."""
        return Response(exposition(self.stats), media_type=CONTENT_TYPE_LATEST)

    async def drain(self, timeout_s: float) -> None:
        """Shutting down: ``/health`` answers 503, every WebSocket accepts no new
        response, finishes the accepted ones, then sends the documented close
        (``websocket_connection_limit_reached``, close code 1000) so its client reconnects
        - to another replica - and continues from the checkpoints; waits at most
        ``timeout_s`` for the last one."""
        self.draining = True
        self.stats.set("draining", 1)
        for connection in list(self.connections):
            await connection.drain()
        deadline = time.monotonic() + timeout_s
        while self.connections and time.monotonic() < deadline:
            waiting = [c.closed for c in self.connections]
            await asyncio.wait(waiting, timeout=max(0.0, deadline - time.monotonic()))

    # -- WebSocket --------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket, send: Send) -> None:
        """Responses API WebSocket mode on ``/v1/responses``; ``send`` is the server's own
        (:class:`GatewayFront`)."""
        try:
            upstream_key = self.authenticate(websocket.headers)
        except APIError as error:
            self.stats.add("errors")
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(error_response(error))
            else:
                await websocket.close(code=1008, reason=error.code or "refused")
            return
        await websocket.accept()
        self.stats.add("connections_open")
        self.stats.add("connections_total")
        owner = self.owner(websocket.headers)
        connection = _WSConnection(self, websocket, send, owner, upstream_key)
        self.connections.add(connection)
        try:
            if self.draining:
                await connection.drain()
            await connection.run()
        finally:
            self.connections.discard(connection)
            if self.recorder is not None:
                self.recorder.connection_closed(connection)
            connection.cache.close()
            connection.closed.set_result(None)
            self.stats.add("connections_open", -1)


async def _close_events(events: AsyncIterator[EventBatch]) -> None:
    """Finish an upstream call's event stream early or late (releases its slot)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


def _sse(kinds: list[bytes], datas: list[bytes]) -> bytes:
    """Events as SSE messages (``event: <type>`` then ``data: <json>`` each)."""
    pairs = zip(kinds, datas, strict=True)
    return b"".join([b"event: " + kind + b"\ndata: " + data + b"\n\n" for kind, data in pairs])


class _EventStream(Response):
    """A streamed answer: the upstream's events relayed as SSE."""

    def __init__(
        self,
        gateway: Gateway,
        turn: _Turn,
        events: AsyncIterator[EventBatch],
        first: EventBatch,
    ):
        super().__init__(media_type="text/event-stream")
        self.gateway = gateway
        self.turn = turn
        self.events = events
        self.first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        stats = gateway.stats

        async def send_chunk(chunk: bytes) -> None:
            stats.add("client_bytes_out", len(chunk))
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def emit(batch: EventBatch, start: int, stop: int) -> None:
            await send_chunk(_sse(batch.kinds[start:stop], batch.datas[start:stop]))

        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            try:
                await gateway.relay(
                    self.turn, emit, gateway._recorder(self.turn), self.events, self.first
                )
            except APIError as error:  # mid-stream: the status line is gone
                stats.add("errors")
                payload = orjson.dumps(ws_error_event(error))
                await send_chunk(_sse([b"error"], [payload]))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stats.add("in_flight", -1)
            gateway.abandon(self.turn)
            await _close_events(self.events)


@dataclass(slots=True)
class _Create:
    """A ``response.create`` the connection accepted, and its decoded body."""

    request: ResponseCreateRequest
    body: dict[str, Any]
    stream_id: str | None
    raw: bytes | None = None
    """The message as received, kept only while recording."""


class _WSConnection(WSModeConnection[_Create]):
    """One client WebSocket of the gateway: the shared WebSocket-mode shell
    (:class:`rig.serving.wsmode.WSModeConnection`) relaying each response from the
    upstream, with the connection's memory."""

    def __init__(
        self,
        gateway: Gateway,
        websocket: WebSocket,
        send: Send,
        owner: str,
        upstream_key: str | None,
    ):
        super().__init__(
            websocket,
            max_age_s=gateway.config.ws_max_age_s,
            max_message_bytes=gateway.config.max_message_bytes,
            deadlines=gateway.deadlines,
        )
        self.gateway = gateway
        self._send = send
        self.stats = gateway.stats
        self.owner = owner
        self.upstream_key = upstream_key
        self.cache = gateway.state.memory.cache()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.send_many = SEND_MANY in websocket.scope.get("extensions", {})
        """The server takes several messages in one send (:mod:`rig.serving.wsproto`)."""
        self.handshake_bytes = scope_head_bytes(websocket.scope) if gateway.recorder else 0
        self.user_agent = websocket.headers.get("user-agent") if gateway.recorder else None
        """Read now: the handshake's headers are let go once the connection runs."""

    def parse(self, raw: bytes) -> _Create:
        body, event = self.gateway.client_events.parse(raw)
        kept = raw if self.gateway.recorder is not None else None
        return _Create(event, body, event.stream_id, kept)

    def received(self, size: int) -> None:
        self.stats.add("client_bytes_in", size)

    def crashed(self) -> None:
        self.stats.add("responses_failed")

    async def send(self, data: bytes) -> None:
        self.stats.add("client_bytes_out", len(data))
        await self._send({"type": "websocket.send", "text": data.decode()})

    async def send_texts(self, texts: list[bytes]) -> None:
        """Several messages in order: in one send where the server takes it."""
        if not self.send_many:
            for text in texts:
                await self.send(text)
            return
        self.stats.add("client_bytes_out", sum(map(len, texts)))
        await self._send({"type": SEND_MANY, "texts": texts})

    async def send_error(self, error: APIError, stream_id: str | None = None) -> None:
        self.stats.add("errors")
        await self.send(orjson.dumps(ws_error_event(error, stream_id=stream_id)))

    async def respond(self, create: _Create, lane: LaneRelease[_Create]) -> None:
        gateway = self.gateway
        stream_id = create.stream_id
        turn = await gateway.prepare(
            create.request, create.body, self.owner, self.cache, self.upstream_key
        )
        if gateway.recorder is not None and create.raw is not None:
            turn.trace = gateway.recorder.begin(
                create.raw,
                transport="ws",
                header_bytes=ws_frame_header_bytes(len(create.raw)),
                user_agent=self.user_agent,
                connection=self,
                lane=stream_id,
                handshake_bytes=self.handshake_bytes,
            )
        if create.body.get("generate") is False:
            await self._warm_up(turn, lane)
            return
        gateway.stats.add("in_flight")
        try:
            events, first = await gateway.open_upstream(turn)

            tail = None if stream_id is None else _stream_id_tail(stream_id)

            async def emit(batch: EventBatch, start: int, stop: int) -> None:
                datas = batch.datas
                texts = datas if start == 0 and stop == len(datas) else datas[start:stop]
                if tail is not None:
                    texts = [data[:-1] + tail for data in texts]
                await self.send_texts(texts)

            record = gateway._recorder(turn, self.cache, stream_id or "")

            async def on_terminal(event: RelayedEvent) -> None:
                # Recorded, then the lane freed, then the terminal event sent: a client
                # that waits for it and continues on the same lane finds this response.
                await record(event)
                lane.release()

            try:
                await gateway.relay(turn, emit, on_terminal, events, first)
            finally:
                await _close_events(events)  # its upstream slot and connection, now
        finally:
            gateway.stats.add("in_flight", -1)
            gateway.abandon(turn)

    async def _warm_up(self, turn: _Turn, lane: LaneRelease[_Create]) -> None:
        """``generate: false``: the state is prepared and recorded as an empty response
        (``response.created`` then ``response.completed``, no output, no usage); no upstream
        call. Its id continues the conversation."""
        self.stats.add("warmups")
        stream = ResponseStream(turn.request, stream_id=lane.stream_id, obfuscate=False)
        await self.send(orjson.dumps(stream.created()))
        usage = usage_object(0, 0, 0)
        await self.gateway.record(
            turn, stream.snapshot("completed", usage), self.cache, lane.stream_id or ""
        )
        lane.release()
        await self.send(orjson.dumps(stream.completed(usage)))


class GatewayFront:
    """The outermost ASGI app: WebSocket mode goes straight to its handler with the
    server's own ``send`` (a message per relayed event: Starlette's ``WebSocket.send_text``
    and its exception middleware's ``send`` wrapper cost a coroutine each per event, as in
    the mock's front); everything else (and lifespan) goes through Starlette."""

    def __init__(self, gateway: Gateway, app: Starlette):
        self.gateway = gateway
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope.get("path") == "/v1/responses":
            await self.gateway.websocket(WebSocket(scope, receive, send), send)
            return
        await self.app(scope, receive, send)

    @property
    def router(self) -> Any:
        """Starlette's router (its lifespan context is configurable)."""
        return self.app.router


def build_app(gateway: Gateway) -> GatewayFront:
    """The gateway's ASGI application."""
    routes = [
        Route("/v1/responses", gateway.create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", gateway.get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", gateway.delete_response, methods=["DELETE"]),
        Route("/v1/models", gateway.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", gateway.get_model, methods=["GET"]),
        Route("/health", gateway.health, methods=["GET"]),
        Route("/stats", gateway.stats_endpoint, methods=["GET"]),
        Route("/metrics", gateway.metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={404: not_found, 405: not_found, 500: server_error}
    )
    app.state.gateway = gateway
    return GatewayFront(gateway, app)
