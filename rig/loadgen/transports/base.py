"""What every transport shares: a turn's input and outcome, its clock, the retry loop.

A transport carries the turns of one agent session. It builds each body and reads each
answer through :mod:`rig.protocol.client` (no protocol code here), counts bytes on the
session's :class:`~rig.loadgen.wire.WireCounter` and times with one monotonic clock.
Recovery follows the protocol: a ``previous_response_not_found`` answer, or a WebSocket
that closed (age limit, restart), is recovered by resending the full context without
``previous_response_id`` - or, with ``store=true``, by continuing from the store over a
new connection - and the turn is recorded with status ``reconnected``. A turn, recoveries
included, has one deadline (``timeout``, the ``--request-timeout``): one timer per turn,
not one per read. A rate-limited attempt is repeated as the retry policy says.

Connections that break are handled as agents do (:class:`~rig.loadgen.backoff.StreamPolicy`,
Codex's rules): an attempt whose stream stays silent for the idle timeout
(:class:`~rig.loadgen.idle.IdleWatch`), or whose connection was refused, reset or closed
beyond the protocol's own recoveries, is repeated with back-off a few times, then the turn
gives up; a turn that succeeded after a break is ``reconnected``. Each break is counted
(``breaks``), with the request bytes sent again after it (``resent_bytes``) and the time
from the first break to the target's next answer (``recover_ms``).

Nothing raised in a turn leaves it: the connection modules translate their libraries'
exceptions into the rig's own (:class:`~rig.errors.RigError`), which become an ``error``
turn with that cause, and the failed connection is dropped, never reused.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gevent
import orjson

from rig.errors import RigError
from rig.loadgen import registry
from rig.loadgen.backoff import DEFAULT_STREAM_POLICY, RetryPolicy, StreamPolicy
from rig.loadgen.dial import Dialled, dial, rotation
from rig.loadgen.http import HTTPProtocolError
from rig.loadgen.idle import IdleWatch, StreamIdleTimeout
from rig.loadgen.link import Link
from rig.loadgen.registry import TransportContext
from rig.loadgen.target import Target
from rig.loadgen.wire import TcpInfo, WireCounter
from rig.loadgen.ws import WSHandshakeError
from rig.metrics.records import Status
from rig.protocol.client import FIRST_DELTA, FIRST_EVENT, TurnResult, error_result, responses_body

__all__ = [
    "DEFAULT_RETRY",
    "MAX_RECOVERIES",
    "STOPPED",
    "TRANSPORT_NAMES",
    "Rejection",
    "Transport",
    "TurnInput",
    "TurnOutcome",
    "TurnTiming",
    "make_transport",
]

log = logging.getLogger(__name__)

_Connection = TypeVar("_Connection")

TRANSPORT_NAMES = registry.names()
MAX_RECOVERIES = 2
STOPPED = "stopped: the run ended while the turn was waiting for the target"
"""The cause recorded for a turn cut off when its session was stopped."""


@dataclass
class TurnInput:
    """What the agent sends this turn, in Responses API item form."""

    transcript: list[dict[str, Any]]
    """The whole conversation so far, ending with this turn's new items."""
    new_items: list[dict[str, Any]]
    """Items added since the previous response (the user prompt, or tool outputs)."""
    previous_response_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    instructions: str | None = None
    """This turn's instructions, instead of the transport's (a trace replay's sizes)."""
    tools: list[dict[str, Any]] | None = None
    """This turn's tools, instead of the transport's (a trace replay's sizes)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """More body fields (``generate: false`` for a WebSocket warm-up)."""


DEFAULT_RETRY = RetryPolicy()
"""Honour retry-after with jittered exponential back-off (rig.loadgen.backoff)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One attempt a rate limit refused: when, which limit, what the target said."""

    ts: float
    limit: str
    retry_after_ms: float
    remaining: int
    waited_ms: float = 0.0
    """How long the session then waited before trying again (0: it gave up)."""


@dataclass
class TurnOutcome:
    """What came back, and what it cost on the wire and in time."""

    status: Status = "ok"
    response_id: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    bytes_sent: int = 0
    bytes_recv: int = 0
    body_bytes_sent: int = 0
    body_bytes_recv: int = 0
    ttfb_ms: float = 0.0
    ttft_ms: float = 0.0
    turn_ms: float = 0.0
    connect_ms: float = 0.0
    """Time this turn spent opening connections (TCP, TLS, WebSocket upgrade; every
    attempt's, failed ones included); 0 when it reused an open connection."""
    upload_ms: float = 0.0
    """Time this turn spent writing its request(s) to the socket (every attempt's)."""
    recover_ms: float = 0.0
    """From the first break of the connection to the first event of the target's next
    answer, for a turn that then succeeded (0: no break, or the turn failed)."""
    retries: int = 0
    error: str = ""
    error_code: str | None = None
    limit: str = ""
    """For a rate-limited attempt: which limit (requests, tokens, inflight, connections)."""
    retry_after_s: float | None = None
    """For a rate-limited attempt: how long the target asked the client to wait."""
    remaining: int = -1
    """For a rate-limited attempt: what the target said was left of that limit (-1: not said)."""
    retryable: bool = True
    """For a rate-limited attempt: ``False`` when waiting cannot help (request too large)."""
    rejections: list[Rejection] = field(default_factory=list)
    """Every rate-limited attempt of this turn, retried or not."""
    rate_limit_retries: int = 0
    """Attempts repeated after a rate limit (besides ``retries``, the recoveries)."""
    stopped: bool = False
    """The session was stopped (the run ended) while the turn waited: the turn is recorded
    as an ``error`` with cause :data:`STOPPED`, and the caller must stop too."""
    breaks: int = 0
    """Connections that broke under this turn (reset, closed, refused, idle-timed out),
    each followed by a reconnect, a repeat, or the turn's end."""
    stream_retries: int = 0
    """Attempts repeated after a broken connection (``--stream-retries``)."""
    fallback: bool = False
    """Carried over HTTP because the session fell back from WebSocket (``--ws-fallback``)."""
    broken: bool = False
    """The last attempt failed on its connection (counted in ``breaks``): another attempt
    may succeed."""
    refused: bool = False
    """The last attempt's WebSocket upgrade was refused (not by a rate limit)."""
    body_at_break: int = 0
    """``body_bytes_sent`` when the first break happened."""

    @property
    def resent_bytes(self) -> int:
        """Request body bytes sent after the first break: the context sent again."""
        return self.body_bytes_sent - self.body_at_break if self.breaks else 0

    def broke(self, timing: TurnTiming) -> None:
        """The connection broke under the turn (counted, and the clock of recovery starts)."""
        if not self.breaks:
            self.body_at_break = self.body_bytes_sent
        self.breaks += 1
        timing.broke()

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The function calls the model made."""
        return [item for item in self.output if item.get("type") == "function_call"]

    def apply(self, result: TurnResult) -> None:
        """Take an attempt's result, replacing whatever an earlier attempt left (its
        error text and rate-limit details go when a later attempt succeeds)."""
        self.status = result.status
        self.response_id = result.response_id
        self.output = result.output
        self.input_tokens = result.input_tokens
        self.cached_tokens = result.cached_tokens
        self.output_tokens = result.output_tokens
        self.error = result.error
        self.error_code = result.error_code
        info = result.rate_limit
        if info is None:
            self.limit, self.retry_after_s, self.remaining, self.retryable = "", None, -1, True
        else:
            self.limit = info.limit
            self.retry_after_s = info.retry_after_s
            self.remaining = info.remaining
            self.retryable = info.retryable

    def resend_in_full(self, chained: bool) -> bool:
        """After an answer: whether the turn must be sent again with its whole context
        (a continuation whose ``previous_response_id`` the target does not know: the
        documented recovery, counted in ``retries``). Otherwise the turn is over, and a
        success after recoveries is marked ``reconnected``."""
        if chained and self.error_code == "previous_response_not_found":
            self.retries += 1
            return True
        if self.status == "ok" and self.retries:
            self.status = "reconnected"
        return False


class TurnTiming:
    """One turn's clock: start before the turn opens a connection or writes its first
    byte, marks on the way back (the readers of :mod:`rig.protocol.client` say which
    marks an arrival was), and the time spent connecting and writing along the way."""

    __slots__ = (
        "broke_at",
        "connect_s",
        "first_delta",
        "first_event",
        "recovered_at",
        "start",
        "upload_s",
    )

    def __init__(self) -> None:
        self.start: float | None = None
        self.first_event: float | None = None
        self.first_delta: float | None = None
        self.connect_s = 0.0
        self.upload_s = 0.0
        self.broke_at: float | None = None
        """When the turn's connection first broke."""
        self.recovered_at: float | None = None
        """When the target was first heard from again after that."""

    def broke(self) -> None:
        """The connection broke now (the first break starts the time to recover)."""
        if self.broke_at is None:
            self.broke_at = time.perf_counter()
            self.recovered_at = None

    def sent(self) -> None:
        """The turn starts (the first attempt's connect, or its first byte)."""
        if self.start is None:
            self.start = time.perf_counter()

    def since(self, began: float) -> None:
        """The turn started at ``began`` at the latest (a connect that failed over to
        another of the target's URLs, before the first byte: its time is the turn's)."""
        if self.start is None or began < self.start:
            self.start = began

    def connected(self, began: float) -> None:
        """A connection set-up that began at ``began`` (``time.perf_counter()``) is over,
        opened or failed: its time is the turn's ``connect_ms``."""
        self.since(began)
        self.connect_s += time.perf_counter() - began

    def uploaded(self, seconds: float) -> None:
        """A request took ``seconds`` to write: the turn's ``upload_ms``."""
        self.upload_s += seconds

    def mark(self, marks: int) -> None:
        """Something arrived now that set ``marks`` (``FIRST_EVENT``, ``FIRST_DELTA``)."""
        now = time.perf_counter()
        if marks & FIRST_EVENT and self.broke_at is not None and self.recovered_at is None:
            self.recovered_at = now
        if marks & FIRST_EVENT and self.first_event is None:
            self.first_event = now
        if marks & FIRST_DELTA and self.first_delta is None:
            self.first_delta = now

    def restart_marks(self) -> None:
        """A new attempt after a rate limit: its events count, not the refusal's."""
        self.first_event = self.first_delta = None

    def finish(self, outcome: TurnOutcome) -> None:
        """Write the turn's times into ``outcome``."""
        end = time.perf_counter()
        start = self.start if self.start is not None else end
        outcome.turn_ms = (end - start) * 1000
        outcome.ttfb_ms = ((self.first_event or end) - start) * 1000
        outcome.ttft_ms = ((self.first_delta or self.first_event or end) - start) * 1000
        outcome.connect_ms = self.connect_s * 1000
        outcome.upload_ms = self.upload_s * 1000
        recovered = outcome.status in ("ok", "reconnected")
        if recovered and self.broke_at is not None and self.recovered_at is not None:
            outcome.recover_ms = (self.recovered_at - self.broke_at) * 1000


class Transport:
    """Carries turns for one agent session; one instance per session."""

    name = "abstract"
    store = False
    chained = False
    watches_idle = False
    """Whether its connections report reads to an :class:`IdleWatch` (the stream idle
    timeout applies); ``ws_mux``'s shared connections are read by another greenlet."""

    def __init__(
        self,
        target: Target,
        counter: WireCounter,
        *,
        instructions: str,
        tools: Sequence[dict[str, Any]],
        timeout: float = 120.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        seed: int = 0,
        context: TransportContext | None = None,
        link: Link | None = None,
        stream: StreamPolicy = DEFAULT_STREAM_POLICY,
    ):
        self.target = target
        self.counter = counter
        self.instructions = instructions
        self.tools = list(tools)
        self.timeout = timeout
        self.retry = retry
        self.stream = stream
        self.idle: IdleWatch | None = (
            IdleWatch(stream.idle_timeout_s)
            if self.watches_idle and stream.idle_timeout_s > 0
            else None
        )
        """The stream idle timeout's watch (``None``: none, or the transport has none)."""
        self._rng = random.Random(seed)
        self.context = context
        """The run's shared state; ``None`` outside a run (a transport that needs one
        makes a private one)."""
        self.endpoints = rotation(target, context)
        """The run's round robin over the target's URLs (each new connection the next)."""
        self._timing: TurnTiming | None = None
        """The clock of the turn in flight (a failed-over connect starts it earlier)."""
        self.link = link
        """The session's emulated link, shaping every connection it dials (``None``: none)."""

    def turn(self, turn: TurnInput) -> TurnOutcome:
        """Run one turn; never raises for target or network failures (status says)."""
        return self._run(turn)

    def close(self) -> None:
        """Release connections."""

    def abort(self) -> None:
        """Release connections without a closing handshake (nothing more is written)."""
        self._drop()
        self.close()

    @property
    def close_has_bytes(self) -> bool:
        """Whether :meth:`close` would write or read bytes now (a WebSocket's closing
        handshake): the session then charges them to its last turn."""
        return False

    def tcp_info(self) -> TcpInfo | None:
        """The kernel's byte counters of the current connection, if one is open."""
        return None

    def _set_up(self, connect: Callable[[], _Connection]) -> _Connection:
        """Open a connection with ``connect`` (dial, TLS, WebSocket upgrade) and charge
        its time, failed or not, to the turn in flight: its ``connect_ms``, and the
        turn's clock runs from before it."""
        began = time.perf_counter()
        try:
            return connect()
        finally:
            if self._timing is not None:
                self._timing.connected(began)

    @functools.cached_property
    def tls(self) -> ssl.SSLContext | None:
        """The target's TLS context (``None``: plain TCP), made on the session's first
        connect (a ``ws_mux`` session never makes one: its pool connects)."""
        return self.target.ssl_context()

    def _dial(self) -> Dialled:
        """A new connection to the next of the target's URLs (moving on past any that
        refuses it); the time of refused attempts is charged to the turn in flight."""
        dialled = dial(
            self.endpoints, self.counter, timeout=self.timeout, tls=self.tls, link=self.link
        )
        if dialled.failed_since is not None and self._timing is not None:
            self._timing.since(dialled.failed_since)
        return dialled

    def _body(self, turn: TurnInput, chained: bool) -> dict[str, Any]:
        """This turn's Responses API body: the new items after ``previous_response_id``
        when ``chained`` (and there is one), else the whole transcript."""
        chain = chained and turn.previous_response_id
        body = responses_body(
            model=self.target.model,
            instructions=self.instructions if turn.instructions is None else turn.instructions,
            tools=self.tools if turn.tools is None else turn.tools,
            store=self.store,
            input=turn.new_items if chain else turn.transcript,
            previous_response_id=turn.previous_response_id if chain else None,
            metadata=turn.metadata,
        )
        if turn.fields:
            body.update(turn.fields)
        return body

    def body_size(self, turn: TurnInput) -> int:
        """Bytes of the body this transport's first attempt at ``turn`` sends (the
        request body, or the WebSocket message): a trace replay sizes its padding by it."""
        return len(orjson.dumps(self._body(turn, self.chained)))

    def _run(self, turn: TurnInput) -> TurnOutcome:
        """The turn, repeated after each rate-limited attempt as the retry policy says, and
        after each broken one as the stream policy says: times run from the first attempt
        (waits included), bytes add up over attempts."""
        outcome = TurnOutcome()
        timing = self._timing = TurnTiming()
        sent0, recv0 = self.counter.snapshot()
        attempt = repeat = 0
        while True:
            try:
                self._attempt(turn, outcome, timing)
            except gevent.GreenletExit:
                # The run is over and its users are being killed (Locust's stop timeout):
                # the turn is recorded, not lost; the session re-raises once it has.
                outcome.status, outcome.error, outcome.stopped = "error", STOPPED, True
                self._drop()
                break
            if outcome.broken or outcome.refused:
                if self._failed(outcome):  # fell back: go on at once, afresh (as Codex)
                    repeat = 0
                    timing.restart_marks()
                    continue
            elif outcome.status not in ("error", "timeout", "rate_limited"):
                self._succeeded()
            if outcome.broken:
                repeat += 1
                wait = self.stream.delay(repeat, self._rng)
                if wait is None:
                    break
                outcome.stream_retries += 1
                timing.restart_marks()
                if not _wait(wait, outcome):
                    break
                continue
            if outcome.status != "rate_limited":
                break
            wait_ms = (outcome.retry_after_s or 0.0) * 1000
            attempt += 1
            delay = self.retry.delay(attempt, outcome.retry_after_s, self._rng)
            if not outcome.retryable:
                delay = None
            outcome.rejections.append(
                Rejection(
                    time.time(), outcome.limit, wait_ms, outcome.remaining, (delay or 0.0) * 1000
                )
            )
            if delay is None:
                break
            outcome.rate_limit_retries += 1
            timing.restart_marks()
            if not _wait(delay, outcome):
                break
        self._timing = None
        if outcome.status == "ok" and outcome.breaks:
            outcome.status = "reconnected"
        timing.finish(outcome)
        sent1, recv1 = self.counter.snapshot()
        outcome.bytes_sent, outcome.bytes_recv = sent1 - sent0, recv1 - recv0
        return outcome

    def _attempt(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        """One attempt (with its protocol recoveries) under the turn timeout and the
        stream idle timeout; says whether it failed on its connection (``broken``)."""
        outcome.broken = outcome.refused = False
        deadline = gevent.Timeout(self.timeout)
        deadline.start()
        idle = self.idle
        if idle is not None:
            idle.start()
        try:
            self._attempts(turn, outcome, timing)
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            outcome.status = "timeout"
            outcome.error = f"timed out: the turn took longer than {self.timeout:g} s"
            self._drop()
        except StreamIdleTimeout as exc:
            outcome.status, outcome.error, outcome.broken = "timeout", f"timed out: {exc}", True
            outcome.broke(timing)
            self._drop()
        except TimeoutError as exc:  # connecting
            outcome.status, outcome.error, outcome.broken = "timeout", f"timed out: {exc}", True
            outcome.broke(timing)
            self._drop()
        except WSHandshakeError as exc:
            if exc.status == 429:  # too many connections: a rate limit on the handshake
                outcome.apply(error_result(429, exc.body, default_limit="connections"))
            else:
                outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
                # A server in trouble (5xx) may take the next upgrade; a refusal is final.
                outcome.broken = exc.status >= 500
                outcome.refused = not outcome.broken
                if outcome.broken:
                    outcome.broke(timing)
            self._drop()
        except (RigError, OSError) as exc:
            # The rig's own errors name the cause (an invalid answer, a closed or reset
            # connection, an invalid stream); the connection is not reused. A connection
            # that failed may work again; a target that broke the protocol would not.
            outcome.status, outcome.error = "error", f"{type(exc).__name__}: {exc}"
            if isinstance(exc, OSError) and not isinstance(exc, HTTPProtocolError):
                outcome.broken = True
                outcome.broke(timing)
            self._drop()
        except Exception as exc:
            # A library's exception that no layer translated: still a failed turn with
            # its cause, never an exception out of the transport (nor a flood of them).
            log.debug("%s: unexpected exception in a turn", self.name, exc_info=True)
            outcome.status = "error"
            outcome.error = f"unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}"
            self._drop()
        finally:
            deadline.close()
            if idle is not None:
                idle.stop()

    def _attempts(self, turn: TurnInput, outcome: TurnOutcome, timing: TurnTiming) -> None:
        raise NotImplementedError

    def _failed(self, outcome: TurnOutcome) -> bool:
        """An attempt failed on its connection (``broken``) or its upgrade was refused;
        whether the transport changed how it goes on (a WebSocket session that fell back
        to HTTP), so that the turn is tried again at once."""
        return False

    def _succeeded(self) -> None:
        """An attempt got an answer (the connection works)."""

    def _drop(self) -> None:
        """Forget a connection after a failure."""


def _wait(seconds: float, outcome: TurnOutcome) -> bool:
    """Sleep ``seconds`` before the next attempt; ``False`` (and the turn ended as
    stopped) when the run stopped the session meanwhile."""
    try:
        gevent.sleep(seconds)
    except gevent.GreenletExit:
        outcome.status, outcome.error, outcome.stopped = "error", STOPPED, True
        return False
    return True


def make_transport(
    name: str,
    target: Target,
    counter: WireCounter,
    *,
    context: TransportContext | None = None,
    **common: Any,
) -> Transport:
    """The transport registered as ``name`` (:mod:`rig.loadgen.registry`); ``common`` are
    the keyword arguments of :class:`Transport` (``instructions``, ``tools``, ``timeout``,
    ``retry``, ``seed``, ``link``, ``stream``); the transport's own options come from
    ``context`` (their defaults without one) as keywords."""
    spec = registry.spec(name)
    if context is not None:
        options: Mapping[str, Any] = context.options(name)
    else:
        options = {option.name: option.default for option in spec.options}
    transport: Transport = spec.factory()(target, counter, context=context, **options, **common)
    return transport
