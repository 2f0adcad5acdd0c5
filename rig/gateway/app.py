"""The gateway as an ASGI application: the Responses API to clients, stateless upstreams
behind it.

Routes (one port):

* ``POST /v1/responses`` - JSON or SSE (``stream: true``);
* ``GET /v1/responses`` upgraded to WebSocket - Responses API WebSocket mode;
* ``GET``/``DELETE /v1/responses/{id}`` - what the gateway stored, by owner;
* ``GET /health`` and ``GET /stats``.

Every request, stateless or not, takes the same path: validate (:mod:`rig.protocol`),
resolve ``previous_response_id`` and check tool pairing (:class:`rig.conversation.Conversations`:
the WebSocket's memory, then the owner's store), rebuild the full context, call the
upstream with it (:mod:`rig.gateway.upstream`), relay its events, and record the finished
response (in the connection's memory; in the store with ``store=true``) before its
terminal event is sent, so a client that reacts to it finds it. WebSocket mode's lanes,
limits and age are :class:`rig.protocol.wsmode.WSModeRules`'. Every failure is the API's
error shape: an HTTP status and ``{"error": ...}``, or an ``error`` event on a WebSocket
that stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from rig.conversation import ConnectionCache, Conversations, StoredResponse, owner_id
from rig.gateway.config import GatewayConfig, UpstreamConfig
from rig.gateway.stats import GatewayStats
from rig.gateway.upstream import CLIENT_KEY, RelayedEvent, Upstream, UpstreamCall, UpstreamError
from rig.protocol.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    PayloadTooLargeError,
    PreviousResponseNotFoundError,
    ServerError,
    ws_error_event,
)
from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.requests import (
    ResponseCreateRequest,
    normalize_input,
    parse_create_request,
    parse_json_object,
)
from rig.protocol.tokens import estimate_tokens
from rig.protocol.ws import parse_client_event
from rig.protocol.wsmode import CLOSE_CODE, CLOSE_REASON, WSModeRules
from rig.serving import (
    bearer,
    check_api_key,
    error_response,
    json_response,
    not_found,
    server_error,
)

__all__ = ["Gateway", "build_app"]

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


def _with_stream_id(data: bytes, stream_id: str | None) -> bytes:
    """An event's JSON with ``stream_id`` appended (no parse: the object's last byte)."""
    if stream_id is None:
        return data
    return data[:-1] + b',"stream_id":' + orjson.dumps(stream_id) + b"}"


@dataclass(slots=True)
class _Turn:
    """A request resolved against the gateway's state, ready for the upstream."""

    request: ResponseCreateRequest
    body: dict[str, Any]
    owner: str
    transcript: list[dict[str, Any]]
    """The full context: the resumed conversation, then the new items."""
    new_items: list[dict[str, Any]]
    prior_tokens: int = 0
    prior_bytes: int = 0


class Gateway:
    """State shared by the handlers of one gateway process."""

    def __init__(
        self,
        config: GatewayConfig,
        conversations: Conversations,
        stats: GatewayStats,
        upstreams: Mapping[UpstreamConfig, Upstream],
    ):
        self.config = config
        self.conversations = conversations
        self.stats = stats
        self.upstreams = upstreams

    # -- shared steps -----------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Raise :class:`AuthenticationError` unless a configured key was presented (any
        caller is let in when no key is configured). With ``client_keys: pass-through`` a
        key is required, and kept (:data:`CLIENT_KEY`) for this caller's upstream calls."""
        check_api_key(self.config.api_keys, headers)
        key = bearer(headers) if self.config.pass_through else None
        if self.config.pass_through and not key:
            raise AuthenticationError(
                "You didn't provide an API key. Provide it in an Authorization header "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        CLIENT_KEY.set(key)

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
        connection: ConnectionCache | None = None,
    ) -> _Turn:
        """Resolve ``previous_response_id`` (counting where it was found, or the miss),
        check tool pairing, and rebuild the full context."""
        new_items = _raw_items(body.get("input"))
        normal = normalize_input(request)
        previous = request.previous_response_id
        turn = _Turn(request, body, owner, new_items, new_items)
        if previous:
            try:
                resumed = await self.conversations.resume(
                    previous, normal, owner=owner, connection=connection
                )
            except PreviousResponseNotFoundError:
                self.stats.add("misses_not_found")
                raise
            self.stats.add("hits_store" if resumed.from_store else "hits_connection")
            prior = resumed.stored
            turn.transcript = prior.transcript + new_items
            turn.prior_tokens = prior.context_tokens
            turn.prior_bytes = prior.context_bytes
        else:
            self.conversations.begin(normal)
        if not turn.transcript:
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
        connection: ConnectionCache | None = None,
        lane: str = "",
    ) -> None:
        """A response finished: its conversation (context plus output) in the connection's
        memory, and in the store as its owner's with ``store=true``."""
        output = list(response.get("output") or ())
        added = len(orjson.dumps(turn.new_items)) + len(orjson.dumps(output))
        stored = StoredResponse(
            response=response,
            transcript=turn.transcript + output,
            context_tokens=turn.prior_tokens + estimate_tokens(" " * added),
            context_bytes=turn.prior_bytes + added,
        )
        await self.conversations.record(
            response["id"],
            stored,
            owner=turn.owner,
            store=bool(turn.request.store),
            connection=connection,
            lane=lane,
        )

    def upstream_events(self, turn: _Turn) -> AsyncIterator[RelayedEvent]:
        """The upstream call for ``turn``, as events."""
        upstream = self.upstreams[self.config.upstream_for(turn.request.model)]
        call = UpstreamCall(
            turn.request, turn.body, turn.transcript, _obfuscate(turn.body), CLIENT_KEY.get()
        )
        return upstream.stream(call)

    async def relay(
        self,
        turn: _Turn,
        emit: Callable[[RelayedEvent], Awaitable[None]],
        on_terminal: Callable[[RelayedEvent], Awaitable[None]],
        events: AsyncIterator[RelayedEvent],
        first: RelayedEvent,
    ) -> RelayedEvent:
        """Send ``first`` and the rest of ``events`` with ``emit``; before the terminal
        event, await ``on_terminal`` (record it). The terminal event; raises
        :class:`UpstreamError` when the stream ends without one, or the upstream's error."""
        event: RelayedEvent | None = first
        while event is not None:
            if event.terminal:
                await on_terminal(event)
                await emit(event)
                self.stats.add(
                    "responses_completed" if event.type != "response.failed" else "responses_failed"
                )
                return event
            await emit(event)
            event = await anext(events, None)
        raise UpstreamError("The upstream's stream ended before the response did.")

    async def open_upstream(self, turn: _Turn) -> tuple[AsyncIterator[RelayedEvent], RelayedEvent]:
        """Call the upstream and wait for its first event (a refusal raises here, before
        anything was sent to the client)."""
        events = self.upstream_events(turn)
        first = await anext(events, None)
        if first is None:
            raise UpstreamError("The upstream answered with an empty stream.")
        return events, first

    async def read_body(self, request: Request) -> bytes:
        """The request body, refused with 413 past ``max_body_bytes``."""
        limit = self.config.max_body_bytes
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        self.stats.add("client_bytes_in", size)
        return b"".join(chunks)

    def failed(self, error: APIError) -> Response:
        self.stats.add("errors")
        response = error_response(error)
        self.stats.add("client_bytes_out", len(response.body))
        return response

    # -- HTTP -------------------------------------------------------------------------

    async def create_response(self, request: Request) -> Response:
        """``POST /v1/responses``: JSON, or SSE with ``stream: true``."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            raw = await self.read_body(request)
            body = parse_json_object(raw)
            create = parse_create_request(body)
            if create.background:
                raise InvalidRequestError(
                    "'background' is not supported by the gateway.",
                    param="background",
                    code="unsupported_parameter",
                )
            turn = await self.prepare(create, body, self.owner(request.headers))
            self.stats.add("in_flight")
            try:
                events, first = await self.open_upstream(turn)
            except BaseException:
                self.stats.add("in_flight", -1)
                raise
        except APIError as error:
            return self.failed(error)
        except ClientDisconnect:
            return Response(status_code=400)
        if create.stream:
            return _EventStream(self, turn, events, first)
        try:
            terminal = await self.relay(turn, _nothing, self._recorder(turn), events, first)
        except APIError as error:
            return self.failed(error)
        finally:
            self.stats.add("in_flight", -1)
        assert terminal.response is not None
        if terminal.type == "response.failed":
            detail = (terminal.response.get("error") or {}).get("message") or "failed"
            return self.failed(UpstreamError(f"The upstream's response failed: {detail}"))
        payload = orjson.dumps(terminal.response)
        self.stats.add("client_bytes_out", len(payload))
        return Response(payload, media_type="application/json")

    def _recorder(
        self, turn: _Turn, connection: ConnectionCache | None = None, lane: str = ""
    ) -> Callable[[RelayedEvent], Awaitable[None]]:
        async def record(event: RelayedEvent) -> None:
            if event.type != "response.failed" and event.response is not None:
                await self.record(turn, event.response, connection, lane)

        return record

    async def get_response(self, request: Request) -> Response:
        """``GET /v1/responses/{id}``: the caller's own stored response, else 404."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            owner = self.owner(request.headers)
            stored = await self.conversations.retrieve(owner, request.path_params["response_id"])
        except APIError as error:
            return self.failed(error)
        return json_response(stored.response)

    async def delete_response(self, request: Request) -> Response:
        """``DELETE /v1/responses/{id}``."""
        self.stats.add("http_requests")
        response_id = request.path_params["response_id"]
        try:
            self.authenticate(request.headers)
            await self.conversations.delete(self.owner(request.headers), response_id)
        except APIError as error:
            return self.failed(error)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    async def health(self, request: Request) -> Response:
        """``GET /health``."""
        return json_response({"status": "ok"})

    async def stats_endpoint(self, request: Request) -> Response:
        """``GET /stats``: the counters, and each upstream's dialect and URL."""
        totals = self.stats.snapshot()
        totals["upstreams"] = [
            {"base_url": u.base_url, "dialect": u.dialect} for u in self.config.upstreams
        ]
        return json_response(totals)

    # -- WebSocket --------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        """Responses API WebSocket mode on ``/v1/responses``."""
        try:
            self.authenticate(websocket.headers)
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
        try:
            await _WSConnection(self, websocket, self.owner(websocket.headers)).run()
        finally:
            self.stats.add("connections_open", -1)


async def _nothing(event: RelayedEvent) -> None:
    """A non-streamed answer sends no events."""


def _sse(event: RelayedEvent) -> bytes:
    return b"event: " + event.type.encode() + b"\ndata: " + event.data + b"\n\n"


class _EventStream(Response):
    """A streamed answer: the upstream's events relayed as SSE."""

    def __init__(
        self,
        gateway: Gateway,
        turn: _Turn,
        events: AsyncIterator[RelayedEvent],
        first: RelayedEvent,
    ):
        super().__init__(media_type="text/event-stream")
        self.gateway = gateway
        self.turn = turn
        self.events = events
        self.first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        stats = gateway.stats

        async def emit(event: RelayedEvent) -> None:
            chunk = _sse(event)
            stats.add("client_bytes_out", len(chunk))
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

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
                await emit(RelayedEvent("error", payload))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stats.add("in_flight", -1)
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]


@dataclass(slots=True)
class _Create:
    """A ``response.create`` the connection accepted, its decoded body and its size."""

    request: ResponseCreateRequest
    body: dict[str, Any]
    stream_id: str | None


class _WSConnection:
    """One client WebSocket: the asyncio shell around :class:`WSModeRules` (lanes,
    in-flight and stream limits, age), its memory, one task per response."""

    def __init__(self, gateway: Gateway, websocket: WebSocket, owner: str):
        self.gateway = gateway
        self.stats = gateway.stats
        self.websocket = websocket
        self.owner = owner
        self.cache = ConnectionCache()
        self.rules: WSModeRules[_Create] = WSModeRules()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self.gone = False

    async def send(self, data: bytes) -> None:
        self.stats.add("client_bytes_out", len(data))
        await self.websocket.send_text(data.decode())

    async def send_error(self, error: APIError, stream_id: str | None = None) -> None:
        self.stats.add("errors")
        await self.send(orjson.dumps(ws_error_event(error, stream_id=stream_id)))

    def _start(self, creates: list[_Create]) -> None:
        if self.gone:
            return
        for create in creates:
            task = asyncio.ensure_future(self._respond(create))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        expiry = asyncio.ensure_future(self._expire(self.gateway.config.ws_max_age_s))
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                raw = text.encode() if text is not None else (message.get("bytes") or b"")
                self.stats.add("client_bytes_in", len(raw))
                if not self.closing:
                    await self.handle(raw)
        except WebSocketDisconnect:
            return
        finally:
            self.gone = True
            expiry.cancel()
            for task in list(self.tasks):
                task.cancel()

    async def handle(self, raw: bytes) -> None:
        limit = self.gateway.config.max_message_bytes
        if len(raw) > limit:
            await self.send_error(
                PayloadTooLargeError(f"Message of {len(raw)} bytes exceeds the limit of {limit}.")
            )
            return
        try:
            event = parse_client_event(raw)
            body = parse_json_object(raw)
        except APIError as error:
            await self.send_error(error)
            return
        try:
            ready = self.rules.create(_Create(event, body, event.stream_id), event.stream_id)
        except APIError as error:
            await self.send_error(error, event.stream_id)
            return
        self._start(ready)

    async def _respond(self, create: _Create) -> None:
        gateway = self.gateway
        stream_id = create.stream_id
        lane = stream_id or ""
        ready: list[_Create] | None = None
        counted = False
        try:
            try:
                turn = await gateway.prepare(create.request, create.body, self.owner, self.cache)
                if create.body.get("generate") is False:
                    ready = await self._warm_up(turn, stream_id)
                    return
                gateway.stats.add("in_flight")
                counted = True
                events, first = await gateway.open_upstream(turn)
            except APIError as error:
                await self.send_error(error, stream_id)
                return

            async def emit(event: RelayedEvent) -> None:
                await self.send(_with_stream_id(event.data, stream_id))

            record = gateway._recorder(turn, self.cache, lane)

            async def on_terminal(event: RelayedEvent) -> None:
                # Recorded, then the lane freed, then the terminal event sent: a client
                # that waits for it and continues on the same lane finds this response.
                nonlocal ready
                await record(event)
                ready = self.rules.done(stream_id)

            try:
                await gateway.relay(turn, emit, on_terminal, events, first)
            except APIError as error:
                await self.send_error(error, stream_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not take the connection down silently
            log.exception("response failed")
            with contextlib.suppress(Exception):
                failure = ServerError("The server had an error processing your request.")
                await self.send_error(failure, stream_id)
        finally:
            if counted:
                gateway.stats.add("in_flight", -1)
            self._start(self.rules.done(stream_id) if ready is None else ready)
            if self.rules.should_close:
                await self._close()

    async def _warm_up(self, turn: _Turn, stream_id: str | None) -> list[_Create]:
        """``generate: false``: the state is prepared and recorded as an empty response
        (``response.created`` then ``response.completed``, no output, no usage); no upstream
        call. Its id continues the conversation."""
        self.stats.add("warmups")
        stream = ResponseStream(turn.request, stream_id=stream_id, obfuscate=False)
        await self.send(orjson.dumps(stream.created()))
        usage = usage_object(0, 0, 0)
        await self.gateway.record(
            turn, stream.snapshot("completed", usage), self.cache, stream_id or ""
        )
        ready = self.rules.done(stream_id)
        await self.send(orjson.dumps(stream.completed(usage)))
        return ready

    async def _expire(self, max_age_s: float) -> None:
        await asyncio.sleep(max_age_s)
        if self.rules.expire(max_age_s):
            await self._close()

    async def _close(self) -> None:
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send_error(self.rules.close_error())
            await self.websocket.close(code=CLOSE_CODE, reason=CLOSE_REASON)


def build_app(gateway: Gateway) -> Starlette:
    """The gateway's ASGI application."""
    routes = [
        Route("/v1/responses", gateway.create_response, methods=["POST"]),
        WebSocketRoute("/v1/responses", gateway.websocket),
        Route("/v1/responses/{response_id}", gateway.get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", gateway.delete_response, methods=["DELETE"]),
        Route("/health", gateway.health, methods=["GET"]),
        Route("/stats", gateway.stats_endpoint, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={404: not_found, 405: not_found, 500: server_error}
    )
    app.state.gateway = gateway
    return app
