"""Measuring Responses API items for a trace, with no I/O: sizes, kinds, tool calls, token
shares and the fingerprints that tell one conversation's items from another's.

Used alike by the recorder (bodies as a server received them), the Codex importer
(items from a rollout) and the scenario exporter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from rig.traces.format import Item, ToolCall, Usage

__all__ = [
    "CALL_TYPES",
    "OUTPUT_TYPES",
    "agent_name",
    "call_id",
    "describe",
    "fingerprint",
    "http_head_bytes",
    "input_items",
    "json_bytes",
    "output_items",
    "tool_calls",
    "tool_output_bytes",
    "usage_of",
    "ws_frame_header_bytes",
]

CALL_TYPES: dict[str, str] = {
    "function_call": "",
    "custom_tool_call": "",
    "local_shell_call": "local_shell",
    "shell_call": "shell",
    "apply_patch_call": "apply_patch",
    "computer_call": "computer",
}
"""Call items a client runs, and the tool name of those that carry none."""

OUTPUT_TYPES: frozenset[str] = frozenset(t + "_output" for t in CALL_TYPES)
"""The items that answer them."""


def json_bytes(value: Any) -> int:
    """Size of ``value`` as compact JSON (how clients and the rig serialise)."""
    return len(orjson.dumps(value))


def _text_bytes(value: Any) -> int:
    """A string's UTF-8 bytes; anything else's compact JSON size; ``None`` is 0."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    return json_bytes(value)


def input_items(body: Mapping[str, Any]) -> list[Any]:
    """The request's ``input`` as a list of items (a string is one user message)."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list):
        return value
    return [value]


def describe(item: Any, tokens: int | None = None) -> Item:
    """An item's trace entry: type (``message`` when it has a role and no type), size,
    role, tool name."""
    if not isinstance(item, Mapping):
        return Item(type="unknown", bytes=json_bytes(item), tokens=tokens)
    kind = item.get("type")
    if not isinstance(kind, str):
        kind = "message" if "role" in item else "unknown"
    role = item.get("role") if kind == "message" else None
    name: str | None = None
    if kind in CALL_TYPES:
        raw = item.get("name")
        name = raw if isinstance(raw, str) else CALL_TYPES[kind] or None
    return Item(
        type=kind,
        bytes=json_bytes(item),
        role=role if isinstance(role, str) else None,
        name=name,
        tokens=tokens,
    )


def call_id(item: Any) -> str | None:
    """The ``call_id`` of a call or output item."""
    if isinstance(item, Mapping):
        value = item.get("call_id")
        if isinstance(value, str):
            return value
    return None


def _argument_bytes(item: Mapping[str, Any]) -> int:
    for key in ("arguments", "input", "action", "operation"):
        if key in item:
            return _text_bytes(item[key])
    return 0


def tool_calls(output: Iterable[Any]) -> list[tuple[str | None, ToolCall]]:
    """The client-run calls among output items, each with its ``call_id``."""
    calls = []
    for item in output:
        if isinstance(item, Mapping) and item.get("type") in CALL_TYPES:
            entry = describe(item)
            calls.append(
                (
                    call_id(item),
                    ToolCall(
                        name=entry.name or str(item["type"]),
                        type=str(item["type"]),
                        argument_bytes=_argument_bytes(item),
                    ),
                )
            )
    return calls


def tool_output_bytes(items: Iterable[Any]) -> dict[str, int]:
    """``call_id`` -> bytes of the output (its ``output`` field) for the output items."""
    found: dict[str, int] = {}
    for item in items:
        if isinstance(item, Mapping) and item.get("type") in OUTPUT_TYPES:
            cid = call_id(item)
            if cid is not None:
                found[cid] = _text_bytes(item.get("output"))
    return found


def _visible_bytes(item: Any) -> int:
    """The bytes of what the model wrote in an output item (its text or arguments)."""
    if not isinstance(item, Mapping):
        return 0
    if item.get("type") in CALL_TYPES:
        return _argument_bytes(item)
    content = item.get("content")
    if isinstance(content, str):
        return len(content.encode())
    if isinstance(content, list):
        return sum(
            len(part["text"].encode())
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return 0


def output_items(output: Sequence[Any], usage: Usage | None) -> tuple[Item, ...]:
    """The response's output items with tokens: reasoning items share the reasoning
    tokens, the others the visible output tokens, in proportion to what they wrote."""
    if usage is None:
        return tuple(describe(item) for item in output)
    reasoning = [i for i, item in enumerate(output) if _is_reasoning(item)]
    visible = [i for i in range(len(output)) if i not in set(reasoning)]
    tokens: dict[int, int] = {}
    tokens.update(_share(usage.reasoning_tokens, {i: 1 for i in reasoning}))
    spoken = max(0, usage.output_tokens - usage.reasoning_tokens)
    tokens.update(_share(spoken, {i: _visible_bytes(output[i]) for i in visible}))
    return tuple(describe(item, tokens.get(i, 0)) for i, item in enumerate(output))


def _is_reasoning(item: Any) -> bool:
    return isinstance(item, Mapping) and item.get("type") == "reasoning"


def _share(total: int, weights: Mapping[int, int]) -> dict[int, int]:
    """``total`` split over the keys in proportion to the weights (equally when all are 0),
    the rounding remainder to the last: the shares add up to ``total``."""
    if not weights:
        return {}
    keys = list(weights)
    weight_sum = sum(weights.values())
    if weight_sum == 0:
        weights = {k: 1 for k in keys}
        weight_sum = len(keys)
    shares = {k: total * weights[k] // weight_sum for k in keys}
    shares[keys[-1]] += total - sum(shares.values())
    return shares


def usage_of(usage: Any) -> Usage | None:
    """A response's ``usage`` (Responses API shape) as :class:`Usage`."""
    if not isinstance(usage, Mapping):
        return None

    def number(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    in_details = usage.get("input_tokens_details")
    out_details = usage.get("output_tokens_details")
    return Usage(
        input_tokens=number(usage.get("input_tokens")),
        cached_tokens=number(
            in_details.get("cached_tokens") if isinstance(in_details, Mapping) else 0
        ),
        output_tokens=number(usage.get("output_tokens")),
        reasoning_tokens=number(
            out_details.get("reasoning_tokens") if isinstance(out_details, Mapping) else 0
        ),
    )


_FINGERPRINT_KEYS = ("type", "role", "call_id", "name", "content", "arguments", "input",
                     "output", "action", "operation")  # fmt: skip


def fingerprint(item: Any) -> bytes | None:
    """What identifies an item within a conversation, whatever a client adds or drops when
    it sends it back (ids, status, annotations): its type, role, call id, name and what it
    says. ``None`` for reasoning items, which clients may drop or keep encrypted: they are
    left out of the comparison."""
    if not isinstance(item, Mapping):
        return hashlib.blake2b(orjson.dumps(item), digest_size=16).digest()
    if _is_reasoning(item):
        return None
    kind = item.get("type") or ("message" if "role" in item else None)
    parts: list[Any] = [kind]
    for key in _FINGERPRINT_KEYS[1:]:
        value = item.get(key)
        if key == "content":
            value = _content_text(value)
        parts.append(value)
    try:
        encoded = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        encoded = repr(parts).encode()
    return hashlib.blake2b(encoded, digest_size=16).digest()


def _content_text(content: Any) -> Any:
    """A message's content as its texts alone (``input_text`` and ``output_text`` parts
    alike: a client sends the model's message back as input)."""
    if isinstance(content, list):
        texts = [
            part.get("text") if isinstance(part, Mapping) and "text" in part else part
            for part in content
        ]
        return (
            "".join(t for t in texts if isinstance(t, str))
            if all(isinstance(t, str) for t in texts)
            else texts
        )
    return content


def agent_name(user_agent: str | None) -> str:
    """The client, from its ``User-Agent``: the first product token (``codex_exec/0.171.0``,
    ``OpenAI/Python 1.109.1`` is ``OpenAI/Python``), nothing of the machine it runs on."""
    if not user_agent:
        return "unknown"
    return user_agent.split(" ", 1)[0][:80] or "unknown"


def http_head_bytes(
    method: str, raw_path: bytes, query: bytes, headers: Iterable[tuple[bytes, bytes]], version: str
) -> int:
    """The size of an HTTP/1.x request's head as sent: request line, ``Name: value`` lines,
    the empty line (rebuilt from what the server parsed, one space after each colon)."""
    line = len(method) + 1 + len(raw_path) + (1 + len(query) if query else 0)
    line += 1 + len("HTTP/") + len(version) + 2
    return line + sum(len(k) + 2 + len(v) + 2 for k, v in headers) + 2


def scope_head_bytes(scope: Mapping[str, Any]) -> int:
    """:func:`http_head_bytes` of an ASGI request scope (an HTTP request, a WebSocket
    upgrade): the head as the client sent it."""
    return http_head_bytes(
        scope.get("method", "GET"),
        scope.get("raw_path") or scope["path"].encode(),
        scope.get("query_string", b""),
        scope["headers"],
        scope.get("http_version", "1.1"),
    )


def ws_frame_header_bytes(payload_bytes: int, masked: bool = True) -> int:
    """The header of one unfragmented WebSocket frame carrying ``payload_bytes`` (a
    client's frames are masked: 4 more bytes)."""
    size = 2 if payload_bytes < 126 else 4 if payload_bytes < 65536 else 10
    return size + (4 if masked else 0)
