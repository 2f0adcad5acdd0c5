"""The mock provider as an ASGI application: thin HTTP and WebSocket shells over the engine.

Routes (one port):

* ``POST /v1/responses`` - JSON or SSE (``stream: true``);
* ``GET /v1/responses`` upgraded to WebSocket - Responses API WebSocket mode;
* ``GET``/``DELETE /v1/responses/{id}`` - stored responses;
* ``POST /v1/chat/completions`` - JSON or SSE;
* ``GET /health`` and ``GET /stats``;
* ``POST /admin/drop-websockets`` - only when started with ``--admin``: drop every
  WebSocket of the process at once (a reconnect storm); answers ``{"dropped": n}``.

Every failure a client can cause is answered with the OpenAI error shape: an HTTP status
and ``{"error": {...}}``, or an ``error`` event on a WebSocket that stays open.

The shells hold no protocol rules of their own: requests are validated by
:mod:`rig.protocol`, WebSocket mode's lanes, limits and age by
:class:`rig.protocol.wsmode.WSModeRules`, conversation state and ownership by
:mod:`rig.conversation`, what the model says and when by the engine. Every streamed answer
(SSE events, chat chunks, WebSocket frames) leaves through one paced loop,
:func:`stream_paced`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from rig.conversation import ConnectionCache, owner_id
from rig.limits import RateLimiter, Verdict
from rig.limits import Scope as LimitScope
from rig.mock.engine import PreparedTurn, TurnEngine
from rig.mock.latency import LatencyModel
from rig.mock.stats import Stats
from rig.protocol.chat import chat_completion, chat_usage, parse_chat_request
from rig.protocol.errors import (
    APIError,
    InvalidRequestError,
    RequestTimeoutError,
    ServerError,
    ws_error_event,
)
from rig.protocol.models import MOCK_MODEL, model_list, model_object
from rig.protocol.requests import (
    ResponseCreateEvent,
    ResponseCreateRequest,
    parse_create_request,
    parse_json_object,
)
from rig.protocol.sse import DONE, encode_data, encode_event
from rig.protocol.ws import encode_server_event, parse_client_event
from rig.serving import (
    bearer,
    check_api_key,
    error_response,
    json_response,
    not_found,
    server_error,
)
from rig.serving.body import DEFAULT_BODY_TIMEOUT_S, ClientGone, gone_answer, read_body
from rig.serving.deadlines import Deadlines
from rig.serving.wsmode import LaneRelease, WSModeConnection
from rig.traces.recorder import RecordingTurn, TraceRecorder
from rig.traces.shape import scope_head_bytes, ws_frame_header_bytes

__all__ = ["MockSettings", "StreamingFront", "build_app", "stream_paced"]

log = logging.getLogger("rig.mock")


@dataclass(frozen=True)
class MockSettings:
    """Behaviour of one mock process that is not the latency model."""

    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 8 * 1024 * 1024
    ws_max_age_s: float = 3600.0
    ws_max_age_jitter_s: float = 0.0
    """Each WebSocket's age limit is drawn this much below ``ws_max_age_s`` at most."""
    admin: bool = False
    """Serve the admin routes (``POST /admin/drop-websockets``)."""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    """Longest wait for the next part of a request body."""
    preset: LatencyModel = field(default_factory=LatencyModel)
    limiter: RateLimiter | None = None
    key_organizations: Mapping[str, str] = field(default_factory=dict, repr=False)
    """API key -> organisation id (from a limits file): an organisation's keys share
    ownership of its stored responses."""


def _header_pairs(verdict: Verdict | None) -> list[tuple[bytes, bytes]]:
    if verdict is None:
        return []
    return [(k.encode(), v.encode()) for k, v in verdict.headers.items()]


E = TypeVar("E")

EventWriter = Callable[[list[bytes], bool], Awaitable[None]]
"""Writes encoded events to the client: ``write(chunks, last)``, ``last`` with the final
batch of a stream (possibly empty)."""

FLUSH_BYTES = 64 * 1024
"""A batch of events is written once it holds this much, even with more due at once (the
transport's flow control sees a long instant answer in pieces of about this size)."""


async def stream_paced(
    timed: Iterable[tuple[float, E]],
    encode: Callable[[E], bytes],
    write: EventWriter,
    stats: Stats,
    gone: Callable[[], bool] | None = None,
    before_last: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Write timed events as the latency model says: wait until each one's offset (from
    now), ``encode`` it; stop early once ``gone()`` says the client left. Await
    ``before_last()`` just before the last event is encoded (a response is recorded, and
    its lane freed, before the client can see it end and act on it). Counts
    ``events_sent`` and ``bytes_out`` once, at the end, for the events handed to
    ``write``. Whether every event was written.

    Events due together are written together: the encoded events wait in a batch, written
    before a sleep, once it holds :data:`FLUSH_BYTES`, and at the end (``last``, the
    events due with the last one included). So an instant answer is one write, not one
    per event; a paced one is written as it was paced.

    The one streaming loop of the mock (SSE events, chat chunks, WebSocket frames): the
    hot path, so nothing is awaited per event and nothing is counted per event in shared
    memory.
    """
    start = time.monotonic()
    sent = 0
    count = 0
    batch: list[bytes] = []
    size = 0

    async def flush(last: bool = False) -> None:
        nonlocal sent, count, batch, size
        chunks = batch
        sent += size
        count += len(chunks)
        batch = []
        size = 0
        await write(chunks, last)

    events = iter(timed)
    upcoming = next(events, None)
    try:
        while upcoming is not None:
            offset, event = upcoming
            upcoming = next(events, None)
            if offset:
                delay = start + offset - time.monotonic()
                if delay > 0.001:
                    if batch:
                        await flush()
                    await asyncio.sleep(delay)
            if gone is not None and gone():
                return False
            if upcoming is None and before_last is not None:
                await before_last()
            chunk = encode(event)
            batch.append(chunk)
            size += len(chunk)
            if size >= FLUSH_BYTES and upcoming is not None:
                await flush()
        await flush(last=True)
        return True
    finally:
        stats.add("events_sent", count)
        stats.add("bytes_out", sent)


def _sse_writer(send: Send, stats: Stats, end: bytes = b"") -> EventWriter:
    """Writes a batch of SSE messages as one body chunk (one chunk of the chunked
    encoding, one socket write); the last batch, then ``end`` (counted in ``bytes_out``),
    ends the body in the same write."""

    async def write(chunks: list[bytes], last: bool) -> None:
        if last and end:
            chunks.append(end)
            stats.add("bytes_out", len(end))
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": not last})

    return write


def _ws_writer(send: Send) -> EventWriter:
    """Writes a batch of events as text frames, one per event (the server's protocol
    writes the frames sent in one step at once: :mod:`rig.serving.wsproto`)."""

    async def write(chunks: list[bytes], last: bool) -> None:
        for payload in chunks:
            await send(_ws_frame(payload))

    return write


def _ws_frame(payload: bytes) -> Message:
    return {"type": "websocket.send", "text": payload.decode()}


class MockApp:
    """State shared by the handlers of one process."""

    def __init__(
        self,
        engine: TurnEngine,
        stats: Stats,
        settings: MockSettings,
        recorder: TraceRecorder | None = None,
    ):
        self.engine = engine
        self.stats = stats
        self.settings = settings
        self.limiter = settings.limiter
        self.websockets: set[_WSConnection] = set()
        """The open WebSockets of this process (what a drop closes)."""
        self.recorder = recorder
        """Writes a trace of every session (``--record``); ``None``: no recording work."""
        self.deadlines = Deadlines()
        """The WebSockets' age limits, on one loop timer."""

    # -- helpers ----------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Raise :class:`AuthenticationError` unless a configured key was presented."""
        check_api_key(self.settings.api_keys, headers)

    def owner(self, headers: Mapping[str, str]) -> str:
        """Who owns what this caller creates (:func:`rig.conversation.owner_id`): its key's
        organisation in the limits file, else its key, else the anonymous owner."""
        key = bearer(headers)
        return owner_id(key, self.settings.key_organizations.get(key) if key else None)

    async def read_body(self, request: Request) -> bytes:
        """The request body (:func:`rig.serving.body.read_body`: 413 beyond the configured
        limit, 408 when it stalls longer than ``body_timeout_s``; :class:`ClientGone` if
        the client left), counted."""
        body = await read_body(
            request,
            limit=self.settings.max_body_bytes,
            timeout_s=self.settings.body_timeout_s,
        )
        self.stats.add("bytes_in", len(body))
        return body

    def failed(self, error: APIError) -> Response:
        """Count and render an error response (closing the connection after a 408: the
        rest of the stalled body may still arrive)."""
        self.stats.add("errors")
        if isinstance(error, RequestTimeoutError):
            return self.error_answer(error, {"connection": "close"})
        return self.error_answer(error)

    def error_answer(self, error: APIError, headers: Mapping[str, str] | None = None) -> Response:
        """``error`` as an HTTP response, its body counted in ``bytes_out`` (a client
        counts it among the response bodies it received, rate limits included)."""
        response = error_response(error, headers)
        self.stats.add("bytes_out", len(response.body))
        return response

    def gone(self, request: Request) -> Response:
        """The client left before its request was read: counted, then
        :func:`rig.serving.body.gone_answer`."""
        self.stats.add("client_disconnects")
        return gone_answer(request, log)

    async def admit(self, headers: Mapping[str, str], input_tokens: int, model: str) -> Verdict:
        """Charge one response to the caller's rate limits (call only with a limiter).
        A refusal is counted here; the caller sends ``verdict.error``."""
        limiter = self.limiter
        assert limiter is not None
        verdict = await limiter.admit(limiter.scopes_for(bearer(headers)), input_tokens, model)
        if verdict.rejection is not None:
            self.stats.add("errors")
            self.stats.add(f"rate_limited_{verdict.rejection.kind}")
        return verdict

    async def settle(self, verdict: Verdict, output_tokens: int) -> None:
        """An admitted response ended: debit its output tokens, free its in-flight slot."""
        if self.limiter is None:
            return
        try:
            await self.limiter.settle(verdict.scopes, output_tokens)
        except Exception:  # the limits store failing must not fail a finished response
            log.exception("could not settle a response's rate limits")

    # -- HTTP -------------------------------------------------------------------------

    async def create_response(self, request: Request) -> Response:
        """``POST /v1/responses``."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            body = await self.read_body(request)
            create = await _off_loop_if_large(len(body), _parse_create, body)
            if create.background:
                raise InvalidRequestError(
                    "'background' is not supported by the mock provider.",
                    param="background",
                    code="unsupported_parameter",
                )
            obfuscate = _include_obfuscation(create)
            turn = await self.engine.prepare(
                create,
                body_bytes=len(body),
                obfuscate=obfuscate,
                owner=self.owner(request.headers),
            )
        except APIError as error:
            return self.failed(error)
        except ClientGone:
            return self.gone(request)
        verdict = None
        if self.limiter is not None:  # with no limits, no limit work at all
            verdict = await self.admit(request.headers, turn.charged_input_tokens, create.model)
            if verdict.error is not None:
                return self.error_answer(verdict.error, verdict.headers)
        recording = None
        if self.recorder is not None:
            recording = _record_http(self.recorder, request, body, create.stream)
        if create.stream:
            return _EventStream(self, turn, verdict, recording)
        try:
            if turn.total_s > 0:
                await asyncio.sleep(turn.total_s)
            turn.run_to_completion()
            stored = await self.engine.finish(turn)
            if self.recorder is not None:
                self.recorder.end(recording, stored.response)
        finally:
            if verdict is not None:
                await self.settle(verdict, turn.output_tokens + turn.reasoning_tokens)
            if self.recorder is not None:
                self.recorder.abandon(recording)  # a no-op once it ended
        self.stats.add(_outcome(turn))
        payload = orjson.dumps(stored.response)
        self.stats.add("bytes_out", len(payload))
        headers = verdict.headers if verdict is not None else None
        return Response(payload, headers=headers, media_type="application/json")

    async def get_response(self, request: Request) -> Response:
        """``GET /v1/responses/{id}``."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            response_id = request.path_params["response_id"]
            owner = self.owner(request.headers)
            stored = await self.engine.conversations.retrieve(owner, response_id)
        except APIError as error:
            return self.failed(error)
        return json_response(stored.response)

    async def delete_response(self, request: Request) -> Response:
        """``DELETE /v1/responses/{id}``."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            response_id = request.path_params["response_id"]
            await self.engine.conversations.delete(self.owner(request.headers), response_id)
        except APIError as error:
            return self.failed(error)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    async def chat_completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
            body = await self.read_body(request)
            chat = await _off_loop_if_large(len(body), _parse_chat, body)
            prepared = self.engine.prepare_chat(chat, body_bytes=len(body))
        except APIError as error:
            return self.failed(error)
        except ClientGone:
            return self.gone(request)
        verdict = None
        if self.limiter is not None:
            verdict = await self.admit(request.headers, prepared.prompt_tokens, chat.model)
            if verdict.error is not None:
                return self.error_answer(verdict.error, verdict.headers)
        self.stats.add("chat_completions")
        if chat.stream:
            include = bool(chat.stream_options and chat.stream_options.include_usage)
            chunks = prepared.timed_chunks(include)
            return _ChunkStream(self, chunks, verdict, prepared.completion_tokens)
        try:
            if prepared.total_s > 0:
                await asyncio.sleep(prepared.total_s)
        finally:
            if verdict is not None:
                await self.settle(verdict, prepared.completion_tokens)
        calls = [(cid, name, "".join(p)) for cid, name, p in prepared.call_pieces]
        usage = chat_usage(
            prepared.prompt_tokens, prepared.cached_tokens, prepared.completion_tokens
        )
        text = "".join(prepared.text_pieces) or None
        completion = chat_completion(chat.model, text, calls, usage, prepared.finish_reason)
        payload = orjson.dumps(completion)
        self.stats.add("bytes_out", len(payload))
        headers = verdict.headers if verdict is not None else None
        return Response(payload, headers=headers, media_type="application/json")

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models``: the rig's default model name (any name is served)."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
        except APIError as error:
            return self.failed(error)
        return json_response(model_list([MOCK_MODEL]))

    async def get_model(self, request: Request) -> Response:
        """``GET /v1/models/{id}``: any id, since any model name is served."""
        self.stats.add("http_requests")
        try:
            self.authenticate(request.headers)
        except APIError as error:
            return self.failed(error)
        return json_response(model_object(request.path_params["model_id"]))

    async def drop_websockets(self) -> int:
        """Drop every open WebSocket of this process at once (responses in flight cut off,
        close code 1012); how many were open. ``SIGUSR1`` and the admin route call it."""
        dropped = 0
        for connection in list(self.websockets):
            if await connection.drop():
                dropped += 1
        self.stats.add("ws_dropped", dropped)
        log.info("dropped %d WebSocket connection(s)", dropped)
        return dropped

    async def admin_drop_websockets(self, request: Request) -> Response:
        """``POST /admin/drop-websockets`` (with ``--admin``; the API keys apply)."""
        try:
            self.authenticate(request.headers)
        except APIError as error:
            return self.failed(error)
        return json_response({"dropped": await self.drop_websockets()})

    async def health(self, request: Request) -> Response:
        """``GET /health``."""
        return json_response({"status": "ok"})

    async def stats_endpoint(self, request: Request) -> Response:
        """``GET /stats``: counters summed over all worker processes."""
        totals: dict[str, Any] = self.stats.total()
        totals["turns"] = totals["responses_completed"] + totals["chat_completions"]
        totals["preset"] = self.settings.preset.name
        return json_response(totals)

    # -- WebSocket --------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket, send: Send) -> None:
        """Responses API WebSocket mode on ``/v1/responses``; ``send`` is the server's own
        ASGI send, used directly on the streaming path."""
        try:
            self.authenticate(websocket.headers)
        except APIError as error:
            self.stats.add("errors")
            await self._deny(websocket, error)
            return
        limiter = self.limiter
        scopes = limiter.scopes_for(bearer(websocket.headers)) if limiter is not None else ()
        if limiter is not None:
            verdict = await limiter.connect(scopes)
            if verdict.error is not None:
                self.stats.add("errors")
                self.stats.add("rate_limited_connections")
                await self._deny(websocket, verdict.error)
                return
        try:
            await websocket.accept()
            self.stats.add("connections_open")
            self.stats.add("connections_total")
            owner = self.owner(websocket.headers)
            connection = _WSConnection(self, websocket, send, scopes, owner)
            self.websockets.add(connection)
            try:
                await connection.run()
            finally:
                self.websockets.discard(connection)
                self.stats.add("connections_open", -1)
                if self.recorder is not None:
                    self.recorder.connection_closed(connection)
        finally:
            if limiter is not None:
                try:
                    await limiter.disconnect(scopes)
                except Exception:
                    log.exception("could not release a connection's rate limits")

    async def _deny(self, websocket: WebSocket, error: APIError) -> None:
        """Refuse a handshake with the error's HTTP status and body (or, on a server
        without the denial-response extension, close before accepting)."""
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(error_response(error))
        else:
            await websocket.close(code=1008, reason=error.code or "refused")


OFF_LOOP_BYTES = 1 << 20
"""Bodies at least this large are parsed and validated in a worker thread: an 8 MiB body
held the event loop (every other connection of the process) for over half a second."""

T = TypeVar("T")


async def _off_loop_if_large(size: int, work: Callable[[bytes], T], body: bytes) -> T:
    if size >= OFF_LOOP_BYTES:
        return await asyncio.to_thread(work, body)
    return work(body)


def _parse_create(body: bytes) -> ResponseCreateRequest:
    return parse_create_request(parse_json_object(body))


def _parse_chat(body: bytes) -> Any:
    return parse_chat_request(parse_json_object(body))


def _outcome(turn: PreparedTurn) -> str:
    """The counter a finished response adds to: warm-ups are not model turns."""
    return "warmups" if turn.warmup else "responses_completed"


def _record_http(
    recorder: TraceRecorder, request: Request, body: bytes, stream: bool
) -> RecordingTurn | None:
    return recorder.begin(
        body,
        transport="sse" if stream else "http",
        header_bytes=scope_head_bytes(request.scope),
        user_agent=request.headers.get("user-agent"),
    )


def _include_obfuscation(create: ResponseCreateRequest) -> bool:
    options = getattr(create, "stream_options", None)
    return not (isinstance(options, dict) and options.get("include_obfuscation") is False)


class _Disconnect:
    """Watches ``receive`` for the client going away while a response streams."""

    def __init__(self, receive: Receive):
        self._task = asyncio.ensure_future(receive())
        self.happened = self._task.done
        """Whether the client went away (a bound method: one call per event)."""

    def cancel(self) -> None:
        self._task.cancel()


class _EventStream(Response):
    """A streamed Responses API answer: SSE events paced by the latency model."""

    def __init__(
        self,
        app: MockApp,
        turn: PreparedTurn,
        verdict: Verdict | None = None,
        recording: RecordingTurn | None = None,
    ):
        super().__init__(media_type="text/event-stream")
        self.app = app
        self.turn = turn
        self.verdict = verdict
        self.recording = recording

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        turn = self.turn
        gone = _Disconnect(receive)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-request-id", turn.stream.response_id.encode()),
                        *_header_pairs(self.verdict),
                    ],
                }
            )
            timed = turn.timed_events()
            finished: list[Any] = []

            async def record() -> None:  # before the terminal event: GET and /stats see it
                finished.append(await app.engine.finish(turn))
                app.stats.add(_outcome(turn))

            write = _sse_writer(send, app.stats)
            if not await stream_paced(timed, encode_event, write, app.stats, gone.happened, record):
                app.stats.add("responses_failed")
                return
            if app.recorder is not None and finished:
                app.recorder.end(self.recording, finished[0].response)
        finally:
            gone.cancel()
            if app.recorder is not None:
                app.recorder.abandon(self.recording)  # a no-op once it ended
            if self.verdict is not None:
                await app.settle(self.verdict, turn.output_tokens + turn.reasoning_tokens)


class _ChunkStream(Response):
    """A streamed chat completion: ``data:`` chunks, then ``data: [DONE]``."""

    def __init__(
        self,
        app: MockApp,
        chunks: Iterator[tuple[float, dict[str, Any]]],
        verdict: Verdict | None = None,
        output_tokens: int = 0,
    ):
        super().__init__(media_type="text/event-stream")
        self.app = app
        self.chunks = chunks
        self.verdict = verdict
        self.output_tokens = output_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stats = self.app.stats
        gone = _Disconnect(receive)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        *_header_pairs(self.verdict),
                    ],
                }
            )
            write = _sse_writer(send, stats, end=DONE)
            await stream_paced(self.chunks, encode_data, write, stats, gone.happened)
        finally:
            gone.cancel()
            if self.verdict is not None:
                await self.app.settle(self.verdict, self.output_tokens)


class StreamingFront:
    """The outermost ASGI app: the two streaming routes go straight to their handlers, with
    the server's own ``send``; everything else (and lifespan) goes through Starlette.

    Starlette's middleware wraps ``send`` in a coroutine per call; on a route that sends a
    frame per token that was measurable (docs/performance.md).
    """

    def __init__(self, mock: MockApp, app: Starlette):
        self.mock = mock
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == "/v1/responses":
            if scope["type"] == "websocket":
                await self.mock.websocket(WebSocket(scope, receive, send), send)
                return
            if scope["method"] == "POST":
                await self._create(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @property
    def router(self) -> Any:
        """Starlette's router (its lifespan context is configurable)."""
        return self.app.router

    async def _create(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.mock.create_response(Request(scope, receive))
        except Exception:
            log.exception("unhandled error")
            response = error_response(
                ServerError("The server had an error processing your request.")
            )
        try:
            await response(scope, receive, send)
        except Exception:  # mid-stream: the status line is gone, so log and end the body
            log.exception("response failed while streaming")


@dataclass(slots=True)
class _Create:
    """A ``response.create`` the connection accepted, and the size of its message."""

    event: ResponseCreateEvent
    size: int
    raw: bytes | None = None
    """The message as received, kept only while recording."""

    @property
    def stream_id(self) -> str | None:
        """Its lane."""
        return self.event.stream_id


class _WSConnection(WSModeConnection[_Create]):
    """One WebSocket connection of the mock: the shared WebSocket-mode shell
    (:class:`rig.serving.wsmode.WSModeConnection`) with the engine producing each response,
    the rate limiter admitting it, and its response cache."""

    def __init__(
        self,
        app: MockApp,
        websocket: WebSocket,
        send: Send,
        scopes: tuple[LimitScope, ...],
        owner: str,
    ):
        super().__init__(
            websocket,
            max_age_s=app.settings.ws_max_age_s,
            max_message_bytes=app.settings.max_message_bytes,
            max_age_jitter_s=app.settings.ws_max_age_jitter_s,
            deadlines=app.deadlines,
        )
        self.app = app
        self._send = send
        self.scopes = scopes
        self.owner = owner
        self.cache = ConnectionCache()
        self.handshake_bytes = scope_head_bytes(websocket.scope) if app.recorder else 0
        self.user_agent = websocket.headers.get("user-agent") if app.recorder else None
        """Read now: the handshake's headers are let go once the connection runs."""

    def parse(self, raw: bytes) -> _Create:
        if self.app.recorder is not None:
            return _Create(parse_client_event(raw), len(raw), raw)
        return _Create(parse_client_event(raw), len(raw))

    def received(self, size: int) -> None:
        self.app.stats.add("bytes_in", size)

    def crashed(self) -> None:
        self.app.stats.add("responses_failed")

    async def send_error(self, error: APIError, stream_id: str | None = None) -> None:
        self.app.stats.add("errors")
        payload = encode_server_event(ws_error_event(error, stream_id=stream_id))
        self.app.stats.add("bytes_out", len(payload))
        self.app.stats.add("events_sent")
        await self._send(_ws_frame(payload))

    async def respond(self, create: _Create, lane: LaneRelease[_Create]) -> None:
        event = create.event
        stream_id = event.stream_id
        app = self.app
        turn = await app.engine.prepare(
            event,
            body_bytes=create.size,
            connection=self.cache,
            stream_id=stream_id,
            obfuscate=_include_obfuscation(event),
            owner=self.owner,
        )
        limiter = app.limiter
        verdict: Verdict | None = None
        if limiter is not None:
            verdict = await limiter.admit(self.scopes, turn.charged_input_tokens, event.model)
            if verdict.error is not None:
                assert verdict.rejection is not None
                app.stats.add(f"rate_limited_{verdict.rejection.kind}")
                raise verdict.error  # refused: nothing to settle
        recorder = app.recorder
        recording = None
        if recorder is not None and create.raw is not None:
            recording = recorder.begin(
                create.raw,
                transport="ws",
                header_bytes=ws_frame_header_bytes(create.size),
                user_agent=self.user_agent,
                connection=self,
                lane=stream_id,
                handshake_bytes=self.handshake_bytes,
            )
        try:
            finished: list[Any] = []

            async def finish() -> None:
                # Recorded (connection memory, store), then the lane is free, then the
                # terminal event goes out: a client that waits for it and sends the next
                # create on the same lane is never refused as busy, and finds this
                # response. What may start now starts after the terminal event is sent.
                finished.append(
                    await app.engine.finish(turn, connection=self.cache, lane=stream_id or "")
                )
                lane.release()

            await stream_paced(
                turn.timed_events(), encode_server_event, _ws_writer(self._send), app.stats,
                before_last=finish,
            )  # fmt: skip
            app.stats.add(_outcome(turn))
            if recorder is not None and finished:
                recorder.end(recording, finished[0].response)
        finally:
            if verdict is not None:
                await app.settle(verdict, turn.output_tokens + turn.reasoning_tokens)
            if recorder is not None:
                recorder.abandon(recording)


def build_app(
    engine: TurnEngine,
    stats: Stats,
    settings: MockSettings,
    recorder: TraceRecorder | None = None,
) -> StreamingFront:
    """The mock provider's ASGI application (recording every session with ``recorder``)."""
    mock = MockApp(engine, stats, settings, recorder)
    routes = [
        Route("/v1/responses", mock.create_response, methods=["POST"]),  # via the front
        Route("/v1/responses/{response_id}", mock.get_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", mock.delete_response, methods=["DELETE"]),
        Route("/v1/chat/completions", mock.chat_completions, methods=["POST"]),
        Route("/v1/models", mock.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", mock.get_model, methods=["GET"]),
        Route("/health", mock.health, methods=["GET"]),
        Route("/stats", mock.stats_endpoint, methods=["GET"]),
    ]
    if settings.admin:
        routes.append(Route("/admin/drop-websockets", mock.admin_drop_websockets, methods=["POST"]))
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, 500: server_error},
    )
    app.state.mock = mock
    return StreamingFront(mock, app)
