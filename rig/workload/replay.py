"""Requests and answers of a traced shape: what a trace replay sends, and what the mock
says back (docs/traces.md, "Replay").

A traced turn holds sizes, not content. :class:`TurnBuilder` makes Responses API items,
instructions and tool schemas of exactly those sizes (as compact JSON, as the trace
measured them), filled with text drawn from the rig's corpus so that the bytes compress
as source code and prose do, not as repeated characters. The response the trace recorded
travels to the mock as the request's ``metadata.rig_trace_output``
(:func:`encode_output`), and the mock answers with output items of those kinds and sizes
(:func:`traced_turn`): the replayed agent then resends the same bytes a real one did.

No transport here: the load generator's replay session puts these pieces into each
transport's body.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rig.errors import RigError
from rig.traces.format import Item
from rig.workload.corpus import Corpus
from rig.workload.dialects import ToolCall

__all__ = [
    "PAD_KEY",
    "TRACE_OUTPUT_KEY",
    "Filler",
    "OutputShape",
    "TraceOutputError",
    "TurnBuilder",
    "decode_output",
    "encode_output",
    "pad_metadata",
    "traced_turn",
]

TRACE_OUTPUT_KEY = "rig_trace_output"
"""The metadata key that tells the mock which output items to answer with."""

PAD_KEY = "rig_trace_pad"
"""Metadata keys (``rig_trace_pad``, ``rig_trace_pad_1`` ...) holding filler that brings
a request's other fields to the traced size."""

METADATA_VALUE_MAX = 512
"""The API's limit on one metadata value (and on 16 keys)."""

_CALL_OUTPUTS = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
}
"""The output item type that answers each call type the mock makes."""


class TraceOutputError(RigError, ValueError):
    """A ``metadata.rig_trace_output`` that cannot be read."""


@dataclass(frozen=True, slots=True)
class OutputShape:
    """One output item the mock should make: its type, its size as compact JSON, and for
    a call the tool's name."""

    type: str
    bytes: int
    name: str = ""


def encode_output(items: Sequence[Item]) -> str:
    """The traced output items as one metadata value: ``type:bytes[:name]`` joined by
    ``;`` (``message:279;function_call:333:exec_command``), cut to fit the API's 512
    characters a value (the items that do not fit are left out)."""
    parts: list[str] = []
    size = 0
    for item in items:
        part = f"{item.type}:{item.bytes}" + (f":{item.name}" if item.name else "")
        if size + len(part) + 1 > METADATA_VALUE_MAX:
            break
        parts.append(part)
        size += len(part) + 1
    return ";".join(parts)


def decode_output(value: str) -> tuple[OutputShape, ...]:
    """The shapes :func:`encode_output` wrote (an empty value: no output items)."""
    shapes = []
    for part in filter(None, value.split(";")):
        kind, _, rest = part.partition(":")
        size, _, name = rest.partition(":")
        if not kind or not size.isdigit():
            raise TraceOutputError(
                f"expected type:bytes[:name] items joined by ';', got {part[:40]!r}"
            )
        shapes.append(OutputShape(kind, int(size), name))
    return tuple(shapes)


class Filler:
    """Text of realistic compressibility: the corpus's files as one string, with the
    characters JSON escapes (quotes, backslashes, control characters) and non-ASCII made
    spaces, so ``n`` characters are ``n`` bytes in a JSON string."""

    def __init__(self, corpus: Corpus):
        raw = "\n".join(corpus.files[path] for path in sorted(corpus.files))
        clean = "".join(c if " " <= c <= "~" and c not in '"\\' else " " for c in raw)
        self.source = clean or "lorem ipsum "
        self._doubled = self.source * 2

    @classmethod
    def load(cls, corpus: str | None = None) -> Filler:
        """The filler of a built-in corpus (the default one when ``None``)."""
        return cls(Corpus.load(corpus) if corpus else Corpus.load())

    def text(self, size: int, rng: random.Random) -> str:
        """``size`` characters from a random place in the corpus."""
        if size <= 0:
            return ""
        source = self.source
        start = rng.randrange(len(source))
        if size <= len(source):
            return self._doubled[start : start + size]
        whole, rest = divmod(size, len(source))
        return source * whole + self._doubled[start : start + rest]


def _sized(make: Callable[[str], dict[str, Any]], size: int, fill: Callable[[int], str]) -> Any:
    """The item ``make(text)`` whose compact JSON is ``size`` bytes (or the smallest it can
    be, when its fields alone are bigger)."""
    overhead = len(orjson.dumps(make("")))
    return make(fill(size - overhead))


class TurnBuilder:
    """Makes one replayed session's request parts: items, instructions and tools of the
    traced sizes, with corpus text; seeded, so a session replays the same bytes each time."""

    def __init__(self, filler: Filler, seed: int = 0):
        self.filler = filler
        self.rng = random.Random(seed)
        self._calls = 0

    def fill(self, size: int) -> str:
        """``size`` characters of corpus text."""
        return self.filler.text(size, self.rng)

    def instructions(self, size: int) -> str:
        """Instructions of ``size`` bytes."""
        return self.fill(size)

    def tools(self, count: int, size: int) -> list[dict[str, Any]]:
        """``count`` function tools whose JSON array is ``size`` bytes (compact)."""
        if count <= 0:
            return []
        tools = [self._tool(i, "") for i in range(count)]
        spare = size - len(orjson.dumps(tools))
        share, extra = divmod(max(0, spare), count)
        return [self._tool(i, self.fill(share + (1 if i < extra else 0))) for i in range(count)]

    @staticmethod
    def _tool(index: int, description: str) -> dict[str, Any]:
        return {
            "type": "function",
            "name": f"tool_{index}",
            "description": description,
            "parameters": {"type": "object", "properties": {}},
        }

    def item(self, item: Item, call_id: str | None = None) -> dict[str, Any]:
        """An input item of the traced type and size. A tool output answers ``call_id``
        (``None``: there is no call to answer, so it becomes a user message of its size);
        a type the replay does not make becomes a message of the role it had (a user's)."""
        kind = item.type
        if kind in _CALL_OUTPUTS.values() and call_id is not None:
            return _sized(
                lambda text: {"type": kind, "call_id": call_id, "output": text},
                item.bytes,
                self.fill,
            )
        if kind == "function_call":
            self._calls += 1
            call = f"call_replay_{self._calls}"
            name = item.name or "tool_0"
            return _sized(
                lambda text: {
                    "type": "function_call",
                    "call_id": call,
                    "name": name,
                    "arguments": text,
                },
                item.bytes,
                self.fill,
            )
        role = item.role if item.role in ("user", "assistant", "system", "developer") else "user"
        part = "output_text" if role == "assistant" else "input_text"
        return _sized(
            lambda text: {
                "type": "message",
                "role": role,
                "content": [{"type": part, "text": text}],
            },
            item.bytes,
            self.fill,
        )

    def output_for(self, call: Mapping[str, Any], size: int) -> dict[str, Any]:
        """An output item answering ``call`` (an output item of the previous response)
        when the trace lists none for it, its ``output`` ``size`` bytes (a traced call's
        ``output_bytes`` counts the output, not the item around it)."""
        kind = _CALL_OUTPUTS.get(str(call.get("type")), "function_call_output")
        return {"type": kind, "call_id": str(call.get("call_id", "")), "output": self.fill(size)}


def pad_metadata(metadata: dict[str, str], size: int) -> dict[str, str]:
    """``metadata`` with ``size`` more bytes of filler under :data:`PAD_KEY` keys (each
    value at most 512 characters; each key's own framing counted in ``size``). Padding
    that would need more than the API's 16 keys stops there."""
    out = dict(metadata)
    remaining = size
    index = 0
    while remaining > 0 and len(out) < 16:
        key = PAD_KEY if index == 0 else f"{PAD_KEY}_{index}"
        # ,"key":"value" - the first key of an empty object adds the field instead.
        framing = len(key) + 6 if out else len(key) + 5 + len(',"metadata":{}')
        chars = min(METADATA_VALUE_MAX, remaining - framing)
        if chars < 0:
            break
        out[key] = "x" * chars  # the other fields of a real request compress well too
        remaining -= framing + chars
        index += 1
    return out


# -- the mock's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class TracedAnswer:
    """What the model says when a request names the traced output: the text and calls,
    sized for the mock's output items, and the reasoning tokens."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    reasoning_tokens: int


_MESSAGE_OVERHEAD = 194
"""Bytes of the mock's assistant message item around its text (id ``msg_`` + 48 hex)."""
_CALL_OVERHEAD = 171
"""Bytes of the mock's function and custom call items around the name and the arguments
(item id of 48 hex digits, ``call_`` + 24)."""
_ARGUMENTS_FRAME = 16
"""Bytes of ``{"input":""}`` as a JSON string (its quotes escaped)."""


def traced_turn(shapes: Sequence[OutputShape], filler: Filler, rng: random.Random) -> TracedAnswer:
    """The answer whose output items the mock makes at the traced sizes: one message (the
    texts of the message items together), the calls by name, and reasoning tokens for a
    reasoning item's encrypted size (about 3 bytes of base64 per 4 of a token's 4 bytes).
    Sizes are exact for the mock's own item layout (checked by the tests)."""
    texts = []
    calls: list[ToolCall] = []
    reasoning = 0
    for shape in shapes:
        if shape.type == "message":
            texts.append(filler.text(max(0, shape.bytes - _MESSAGE_OVERHEAD), rng))
        elif shape.type == "reasoning":
            reasoning += max(0, ((shape.bytes - 80) * 3 // 4 - 48) // 4)
        elif shape.type == "custom_tool_call":
            name = shape.name or "tool_0"
            size = shape.bytes - _CALL_OVERHEAD - len(name)
            calls.append(ToolCall(name, filler.text(max(0, size), rng), "custom"))
        else:  # a function call, or a call type the mock answers as one
            name = shape.name or "tool_0"
            size = shape.bytes - _CALL_OVERHEAD - len(name) - _ARGUMENTS_FRAME
            body = filler.text(max(0, size), rng)
            calls.append(ToolCall(name, '{"input":"' + body + '"}'))
    return TracedAnswer(" ".join(texts) if texts else None, tuple(calls), reasoning)
