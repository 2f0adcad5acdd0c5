"""The mock's turn engine: from a validated request to a timed sequence of events.

Transport-independent: the HTTP and WebSocket handlers hand it a request and the bytes it
arrived in, and get back a :class:`PreparedTurn` whose events they pace and write. The
conversation state (resolving ``previous_response_id``, tool-call pairing, recording,
ownership) is :mod:`rig.conversation`'s, shared with the gateway; what is the mock's own is
the model of a provider: token counts (see :mod:`rig.protocol.tokens`), the provider's
prompt cache, the scripted model's answer, and the latency model.
"""

from __future__ import annotations

import base64
import os
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from rig.conversation import (
    ANONYMOUS_OWNER,
    ConnectionCache,
    Conversations,
    ResponseStore,
    StoredResponse,
    check_pairing,
)
from rig.mock.latency import LatencyModel
from rig.protocol.chat import (
    ChatRequest,
    ChatStream,
    chat_usage,
    normalize_messages,
    responses_tools,
)
from rig.protocol.errors import InvalidRequestError
from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.ids import new_id
from rig.protocol.requests import ResponseCreateRequest, TranscriptItem, normalize_input
from rig.protocol.tokens import estimate_tokens, split_tokens
from rig.workload.policy import ModelPolicy, ModelTurn, UnknownScenarioError
from rig.workload.replay import (
    TRACE_OUTPUT_KEY,
    Filler,
    TraceOutputError,
    decode_output,
    traced_turn,
)

__all__ = [
    "PreparedChat",
    "PreparedTurn",
    "PromptCache",
    "TurnEngine",
    "cacheable_tokens",
    "encrypted_reasoning",
]

ITEM_OVERHEAD_TOKENS = 4
"""Tokens charged per conversation item for role and framing, as chat formats do."""

_DELTA_EVENTS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)

PROMPT_CACHE_MIN_TOKENS = 1024
PROMPT_CACHE_BLOCK_TOKENS = 128


def encrypted_reasoning(tokens: int) -> str:
    """Opaque encrypted reasoning of about the size a provider returns for ``tokens``
    tokens of thought: ~4 bytes a token plus a nonce and tag, base64-encoded."""
    return base64.b64encode(os.urandom(tokens * 4 + 48)).decode()


def cacheable_tokens(prefix_tokens: int) -> int:
    """Tokens of a known prefix that a provider cache reports: none under 1,024, else whole
    128-token blocks (OpenAI's documented prompt caching rule)."""
    if prefix_tokens < PROMPT_CACHE_MIN_TOKENS:
        return 0
    return prefix_tokens - prefix_tokens % PROMPT_CACHE_BLOCK_TOKENS


def item_tokens(item: TranscriptItem) -> int:
    """Estimated tokens of one normalised conversation item."""
    kind = item["type"]
    if kind == "message":
        text = item["content"]
    elif kind == "function_call":
        text = item["name"] + item["arguments"]
    else:
        text = item["output"]
    return estimate_tokens(text) + ITEM_OVERHEAD_TOKENS


class PromptCache:
    """Prefixes of stateless conversations the provider has seen, to report cached tokens.

    A conversation prefix is identified by a hash chain over its items; the cache maps
    chain values to the prefix's token count. Bounded, least recently used out first: an
    entry is two ints whatever the prompt's size (never the prompt), so the count bounds the
    bytes too (about 100 bytes an entry, 20 MB at the default). ``on_evict(n)`` is told of
    evictions (the mock counts them in ``/stats``).
    """

    def __init__(self, max_entries: int = 200_000, on_evict: Callable[[int], None] | None = None):
        self.max_entries = max_entries
        self.on_evict = on_evict
        self.evictions = 0
        self._entries: OrderedDict[int, int] = OrderedDict()

    @staticmethod
    def chain(start: int, items: Sequence[TranscriptItem]) -> list[int]:
        """Chain values after each item, continuing from ``start`` (``hash(seed)`` for a
        new conversation, the last value to extend one).

        Python's own hash over the item's fields: the cache lives in one process, so the
        per-process salt does not matter, and it avoids re-serialising the conversation.
        """
        values = []
        value = start
        for item in items:
            kind = item["type"]
            if kind == "message":
                value = hash((value, kind, item["role"], item["content"]))
            elif kind == "function_call":
                value = hash((value, kind, item["call_id"], item["name"], item["arguments"]))
            else:
                value = hash((value, kind, item["call_id"], item["output"]))
            values.append(value)
        return values

    def longest(self, chain: Sequence[int]) -> int:
        """Token count of the longest cached prefix in ``chain`` (0 if none)."""
        for value in reversed(chain):
            tokens = self._entries.get(value)
            if tokens is not None:
                self._entries.move_to_end(value)
                return tokens
        return 0

    def add(self, value: int, tokens: int) -> None:
        """Remember that the prefix ending at chain ``value`` has ``tokens`` tokens."""
        self._entries[value] = tokens
        self._entries.move_to_end(value)
        evicted = 0
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            evicted += 1
        if evicted:
            self.evictions += evicted
            if self.on_evict is not None:
                self.on_evict(evicted)


@dataclass
class PreparedTurn:
    """Everything a handler needs to stream (or return) one response."""

    request: ResponseCreateRequest
    stream: ResponseStream
    transcript: list[TranscriptItem]
    model_turn: ModelTurn
    text_pieces: list[str]
    call_pieces: list[tuple[str, str, list[str]]]
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    context_tokens: int
    context_bytes: int
    ttft_s: float
    token_interval_s: float
    delta_tokens: int
    chain_end: int | None = None
    truncated: bool = False
    owner: str = ANONYMOUS_OWNER
    reasoning_tokens: int = 0
    encrypted_reasoning: str | None = None
    call_kinds: list[str] = field(default_factory=list)
    """The output item each call becomes, by position (``function`` when absent):
    ``custom`` (a custom tool's input), ``local_shell`` (an argv list)."""
    warmup: bool = False
    """A warm-up (``generate: false``, a prewarm): state prepared, nothing generated."""

    def timed_events(self) -> Iterator[tuple[float, dict[str, Any]]]:
        """``(offset_s, event)`` pairs: when, after the request arrived, to send each event."""
        stream = self.stream
        yield 0.0, stream.created()
        if self.warmup:
            yield 0.0, stream.completed(self.usage)
            return
        yield 0.0, stream.in_progress()
        step = self.token_interval_s * self.delta_tokens
        at = self.ttft_s
        if self.reasoning_tokens:
            # The model thought before answering (its time is part of TTFT).
            for event in stream.reasoning(self.encrypted_reasoning):
                yield at, event
        # When the output token limit cut the turn short, its last item is incomplete.
        last = (1 if self.text_pieces else 0) + len(self.call_pieces) - 1

        def status(position: int) -> str:
            return "incomplete" if self.truncated and position == last else "completed"

        position = 0
        if self.text_pieces:
            for event in stream.message(self.text_pieces, status=status(position)):
                yield at, event
                if event["type"] == "response.output_text.delta":
                    at += step
            position += 1
        for index, (call_id, name, pieces) in enumerate(self.call_pieces):
            kind = self.call_kinds[index] if index < len(self.call_kinds) else "function"
            if kind == "custom":
                events = stream.custom_tool_call(
                    name, pieces, call_id=call_id, status=status(position)
                )
            elif kind == "local_shell":
                events = stream.local_shell_call(
                    _argv("".join(pieces)), call_id=call_id, status=status(position)
                )
            else:
                events = stream.function_call(
                    name, pieces, call_id=call_id, status=status(position)
                )
            for event in events:
                yield at, event
                if event["type"] in _DELTA_EVENTS:
                    at += step
            position += 1
        if self.truncated:
            yield at, stream.incomplete(self.usage)
        else:
            yield at, stream.completed(self.usage)

    def run_to_completion(self) -> None:
        """Build every event without sending any, for a non-streamed answer."""
        for _ in self.timed_events():
            pass

    @property
    def usage(self) -> dict[str, Any]:
        """The response's ``usage``: this request's cacheable prefix beyond what was cached
        counts as written to the cache. A warm-up reports none: it generates nothing."""
        if self.warmup:
            return usage_object(0, 0, 0)
        written = max(0, cacheable_tokens(self.input_tokens) - self.cached_tokens)
        return usage_object(
            self.input_tokens,
            self.cached_tokens,
            self.output_tokens + self.reasoning_tokens,
            written,
            self.reasoning_tokens,
        )

    @property
    def charged_input_tokens(self) -> int:
        """Input tokens the rate limits charge: what ``usage`` reports (none for a
        warm-up)."""
        return 0 if self.warmup else self.input_tokens

    @property
    def total_s(self) -> float:
        """Seconds until the last event is due."""
        return self.ttft_s + self.token_interval_s * self.output_tokens


@dataclass
class PreparedChat:
    """Everything a handler needs to stream (or return) one chat completion."""

    request: ChatRequest
    model_turn: ModelTurn
    text_pieces: list[str]
    call_pieces: list[tuple[str, str, list[str]]]
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    ttft_s: float
    token_interval_s: float
    delta_tokens: int
    truncated: bool = False

    @property
    def finish_reason(self) -> str:
        """``length`` when cut at the token limit, else ``tool_calls`` or ``stop``."""
        if self.truncated:
            return "length"
        return "tool_calls" if self.call_pieces else "stop"

    def timed_chunks(self, include_usage: bool) -> Iterator[tuple[float, dict[str, Any]]]:
        """``(offset_s, chunk)`` pairs of the streamed completion."""
        stream = ChatStream(self.request.model)
        step = self.token_interval_s * self.delta_tokens
        at = self.ttft_s
        yield at, stream.role()
        for piece in self.text_pieces:
            yield at, stream.content(piece)
            at += step
        for index, (call_id, name, pieces) in enumerate(self.call_pieces):
            yield at, stream.tool_call_start(index, call_id, name)
            for piece in pieces:
                yield at, stream.tool_call_arguments(index, piece)
                at += step
        yield at, stream.finish(self.finish_reason)
        if include_usage:
            usage = chat_usage(self.prompt_tokens, self.cached_tokens, self.completion_tokens)
            yield at, stream.usage(usage)

    @property
    def total_s(self) -> float:
        """Seconds until the last chunk is due."""
        return self.ttft_s + self.token_interval_s * self.completion_tokens


def _argv(arguments: str) -> list[str]:
    """A local shell call's argv from its JSON (empty when the token limit cut it)."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return []
    return [str(part) for part in value] if isinstance(value, list) else []


def _normal_call(item: dict[str, Any]) -> TranscriptItem:
    """An output call item in the transcript's normalised form: every client-run call takes
    the function call shape, ``call_type`` naming the item type it came as (as
    :func:`rig.protocol.requests.normalize_input` does for a client's input)."""
    kind = item["type"]
    if kind == "custom_tool_call":
        return {
            "type": "function_call",
            "call_id": item["call_id"],
            "name": item["name"],
            "arguments": item["input"],
            "call_type": kind,
        }
    if kind == "local_shell_call":
        return {
            "type": "function_call",
            "call_id": item["call_id"],
            "name": "local_shell",
            "arguments": orjson.dumps(item["action"]).decode(),
            "call_type": kind,
        }
    return {
        "type": "function_call",
        "call_id": item["call_id"],
        "name": item["name"],
        "arguments": item["arguments"],
    }


class TurnEngine:
    """Decides, sizes and times responses for every transport of one mock process."""

    def __init__(
        self,
        policy: ModelPolicy,
        latency: LatencyModel,
        store: ResponseStore,
        *,
        seed: int = 0,
        delta_tokens: int = 1,
        prompt_cache: PromptCache | None = None,
    ):
        self.policy = policy
        self.latency = latency
        self.conversations = Conversations(store)
        self.rng = random.Random(seed)
        self.delta_tokens = max(1, delta_tokens)
        self.prompt_cache = prompt_cache if prompt_cache is not None else PromptCache()
        self._filler: Filler | None = None
        """Corpus text for traced answers (loaded on the first trace replay's request)."""

    def _traced(self, metadata: dict[str, str] | None) -> tuple[ModelTurn, int] | None:
        """The answer a trace replay asked for (``metadata.rig_trace_output``): output
        items of the traced kinds and sizes, and their reasoning tokens; ``None`` for any
        other request (the scripted model decides)."""
        value = metadata.get(TRACE_OUTPUT_KEY) if metadata else None
        if value is None:
            return None
        try:
            shapes = decode_output(value)
        except TraceOutputError as exc:
            raise InvalidRequestError(str(exc), param=f"metadata.{TRACE_OUTPUT_KEY}") from None
        if self._filler is None:
            self._filler = Filler.load()
        answer = traced_turn(shapes, self._filler, self.rng)
        return ModelTurn(answer.text, answer.tool_calls), answer.reasoning_tokens

    def _decide(
        self,
        transcript: list[TranscriptItem],
        tools: Sequence[dict[str, Any]],
        metadata: dict[str, str] | None,
        max_output_tokens: int | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool = True,
        answer: ModelTurn | None = None,
    ) -> tuple[ModelTurn, list[str], list[tuple[str, str, list[str]]], int, bool]:
        """The model's turn (``answer``, else the policy's) as token pieces; cut at
        ``max_output_tokens`` like the API.

        The tool rules reach the policy only when they are not the defaults, so a policy
        written for the three-argument form keeps working."""
        rules: dict[str, Any] = {}
        if tool_choice not in (None, "auto"):
            rules["tool_choice"] = tool_choice
        if not parallel_tool_calls:
            rules["parallel_tool_calls"] = False
        if answer is not None:
            turn = answer  # a replayed trace's output shapes, exact: no preset trimming
        else:
            try:
                turn = self.policy.next_turn(transcript, tools, metadata, **rules)
            except UnknownScenarioError as exc:
                raise InvalidRequestError(str(exc), param="metadata.scenario") from None
            if turn.text:
                text = self.latency.kept_text(turn.text, final=turn.is_final)
                if text != turn.text:
                    turn = ModelTurn(text or None, turn.tool_calls)
        budget = max_output_tokens if max_output_tokens is not None else 1 << 62
        all_text_tokens = split_tokens(turn.text) if turn.text else []
        text_tokens = all_text_tokens[:budget]
        truncated = len(text_tokens) < len(all_text_tokens)
        output_tokens = len(text_tokens)
        calls = []
        for call in turn.tool_calls:
            if truncated or output_tokens >= budget:
                truncated = True
                break
            arg_tokens = split_tokens(call.arguments)
            if output_tokens + len(arg_tokens) > budget:
                arg_tokens = arg_tokens[: budget - output_tokens]
                truncated = True
            output_tokens += len(arg_tokens)
            calls.append((new_id("call", 12), call.name, self._group(arg_tokens)))
        return turn, self._group(text_tokens), calls, output_tokens, truncated

    def _group(self, tokens: list[str]) -> list[str]:
        n = self.delta_tokens
        if n == 1:
            return tokens
        return ["".join(tokens[i : i + n]) for i in range(0, len(tokens), n)]

    def _prefix_tokens(self, instructions: str | None, tools_json: bytes) -> int:
        tokens = estimate_tokens(tools_json) if tools_json != b"[]" else 0
        return tokens + (estimate_tokens(instructions) if instructions else 0)

    def _stateless_cache(
        self, seed: bytes, transcript: list[TranscriptItem]
    ) -> tuple[int, int | None]:
        """Cached tokens for a request carrying its whole context; and its chain end."""
        chain = PromptCache.chain(hash(seed), transcript)
        known = self.prompt_cache.longest(chain)
        if known and self.rng.random() >= self.latency.prompt_cache_hit_rate:
            known = 0  # the request reached a replica without this prefix
        return cacheable_tokens(known), (chain[-1] if chain else None)

    async def prepare(
        self,
        request: ResponseCreateRequest,
        *,
        body_bytes: int,
        connection: ConnectionCache | None = None,
        stream_id: str | None = None,
        obfuscate: bool = True,
        owner: str = ANONYMOUS_OWNER,
    ) -> PreparedTurn:
        """Resolve, validate, decide and time one Responses API request made by ``owner``
        (:func:`rig.conversation.owner_id`)."""
        new_items = normalize_input(request)
        stream = ResponseStream(request, stream_id=stream_id, obfuscate=obfuscate)
        tools_json = orjson.dumps(stream.tools)
        prefix_tokens = self._prefix_tokens(request.instructions, tools_json)
        new_tokens = sum(item_tokens(item) for item in new_items)
        rehydrated_bytes = 0
        chain_end = None
        previous_id = request.previous_response_id
        if previous_id:
            resumed = await self.conversations.resume(
                previous_id, new_items, owner=owner, connection=connection
            )
            prior = resumed.stored
            if resumed.from_store:
                rehydrated_bytes = prior.context_bytes
            transcript = prior.transcript + new_items
            history_tokens = prior.context_tokens + new_tokens
            cached = cacheable_tokens(prefix_tokens + prior.context_tokens)
            base_bytes = prior.context_bytes
        else:
            self.conversations.begin(new_items)
            transcript = new_items
            history_tokens = new_tokens
            seed = (request.instructions or "").encode() + tools_json
            cached, chain_end = self._stateless_cache(seed, transcript)
            base_bytes = 0
        if not request.generates:
            return self._warmup(
                request, stream, transcript, prefix_tokens + history_tokens, cached,
                context_tokens=history_tokens, context_bytes=base_bytes + body_bytes,
                chain_end=chain_end, owner=owner,
            )  # fmt: skip
        if not transcript:
            raise InvalidRequestError(
                "Missing required parameter: 'input'. Provide input items or a "
                "previous_response_id.",
                param="input",
                code="missing_required_parameter",
            )
        # max_output_tokens bounds reasoning and visible tokens together; the model thinks
        # first, so reasoning spends the budget first (all of it, at worst: the response
        # then ends incomplete with nothing visible, as the API's does).
        traced = self._traced(request.metadata)  # a trace replay: its reasoning, not the preset's
        reasoning = traced[1] if traced is not None else self.latency.reasoning_count(self.rng)
        visible_budget = request.max_output_tokens
        if visible_budget is not None:
            reasoning = min(reasoning, visible_budget)
            visible_budget -= reasoning
        turn, text_pieces, call_pieces, output_tokens, truncated = self._decide(
            transcript,
            stream.tools,
            request.metadata,
            visible_budget,
            request.tool_choice,
            request.parallel_tool_calls,
            traced[0] if traced is not None else None,
        )
        input_tokens = prefix_tokens + history_tokens
        cached = min(cached, input_tokens)
        ttft = self.latency.ttft_s(body_bytes, rehydrated_bytes, input_tokens - cached, self.rng)
        encrypted = None
        if reasoning and "reasoning.encrypted_content" in (request.include or ()):
            encrypted = encrypted_reasoning(reasoning)
        output_bytes = len(turn.text or "") + sum(len(c.arguments) for c in turn.tool_calls)
        return PreparedTurn(
            request=request,
            stream=stream,
            transcript=transcript,
            model_turn=turn,
            text_pieces=text_pieces,
            call_pieces=call_pieces,
            input_tokens=input_tokens,
            cached_tokens=cached,
            output_tokens=output_tokens,
            context_tokens=history_tokens,
            context_bytes=base_bytes + body_bytes + output_bytes,
            ttft_s=ttft,
            token_interval_s=self.latency.token_interval_s(self.rng),
            delta_tokens=self.delta_tokens,
            chain_end=chain_end,
            truncated=truncated,
            owner=owner,
            reasoning_tokens=reasoning,
            encrypted_reasoning=encrypted,
            call_kinds=[call.kind for call in turn.tool_calls[: len(call_pieces)]],
        )

    def _warmup(
        self,
        request: ResponseCreateRequest,
        stream: ResponseStream,
        transcript: list[TranscriptItem],
        input_tokens: int,
        cached: int,
        *,
        context_tokens: int,
        context_bytes: int,
        chain_end: int | None,
        owner: str,
    ) -> PreparedTurn:
        """A warm-up: the conversation is resolved and recorded like any response (its id
        can be continued, and the provider's prompt cache learns its prefix), but the model
        is not asked, nothing is generated and no time is modelled."""
        return PreparedTurn(
            request=request,
            stream=stream,
            transcript=transcript,
            model_turn=ModelTurn(None),
            text_pieces=[],
            call_pieces=[],
            input_tokens=input_tokens,
            cached_tokens=min(cached, input_tokens),
            output_tokens=0,
            context_tokens=context_tokens,
            context_bytes=context_bytes,
            ttft_s=0.0,
            token_interval_s=0.0,
            delta_tokens=self.delta_tokens,
            chain_end=chain_end,
            owner=owner,
            warmup=True,
        )

    async def finish(
        self, turn: PreparedTurn, *, connection: ConnectionCache | None = None, lane: str = ""
    ) -> StoredResponse:
        """Record a completed response: connection cache and store (its owner's), and the
        prompt cache."""
        output_items = []
        output_tokens = 0
        for item in turn.stream.output:
            if item["type"] == "reasoning":
                continue  # kept by the provider; the scripted model does not read it
            if item["type"] == "message":
                text = item["content"][0]["text"] if item["content"] else ""
                normal = {"type": "message", "role": "assistant", "content": text}
            else:
                normal = _normal_call(item)
            output_items.append(normal)
            output_tokens += item_tokens(normal)
        if turn.truncated:
            snapshot = turn.stream.snapshot(
                "incomplete", turn.usage, incomplete_reason="max_output_tokens"
            )
        else:
            snapshot = turn.stream.snapshot("completed", turn.usage)
        stored = StoredResponse(
            response=snapshot,
            transcript=turn.transcript + output_items,
            context_tokens=turn.context_tokens + output_tokens,
            context_bytes=turn.context_bytes,
        )
        await self.conversations.record(
            turn.stream.response_id,
            stored,
            owner=turn.owner,
            store=bool(turn.request.store),
            connection=connection,
            lane=lane,
        )
        if turn.chain_end is not None:
            prefix = turn.input_tokens - turn.context_tokens
            full = PromptCache.chain(turn.chain_end, output_items)
            self.prompt_cache.add(turn.chain_end, turn.input_tokens)
            if full:
                self.prompt_cache.add(full[-1], prefix + stored.context_tokens)
        return stored

    def prepare_chat(self, request: ChatRequest, *, body_bytes: int) -> PreparedChat:
        """Decide and time one Chat Completions request (always the full context)."""
        transcript = normalize_messages(request)
        check_pairing(transcript)
        tools = responses_tools(request)
        tools_json = orjson.dumps(tools)
        prefix_tokens = self._prefix_tokens(None, tools_json)
        input_tokens = prefix_tokens + sum(item_tokens(item) for item in transcript)
        cached, chain_end = self._stateless_cache(tools_json, transcript)
        limit = request.max_completion_tokens or request.max_tokens
        turn, text_pieces, call_pieces, output_tokens, truncated = self._decide(
            transcript, tools, request.metadata, limit
        )
        # Remember the conversation including this answer, as the provider's cache would.
        if chain_end is not None:
            self.prompt_cache.add(chain_end, input_tokens)
        cached = min(cached, input_tokens)
        ttft = self.latency.ttft_s(body_bytes, 0, input_tokens - cached, self.rng)
        return PreparedChat(
            request=request,
            model_turn=turn,
            text_pieces=text_pieces,
            call_pieces=call_pieces,
            prompt_tokens=input_tokens,
            cached_tokens=cached,
            completion_tokens=output_tokens,
            ttft_s=ttft,
            token_interval_s=self.latency.token_interval_s(self.rng),
            delta_tokens=self.delta_tokens,
            truncated=truncated,
        )
