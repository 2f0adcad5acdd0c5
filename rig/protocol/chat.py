"""Chat Completions: request validation, normalisation, and response/chunk builders.

The ``chat`` transport is the classic stateless baseline: the full ``messages`` list
every turn. Shapes follow the SDK's ``ChatCompletion`` and ``ChatCompletionChunk``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from rig.protocol.ids import new_id
from rig.protocol.requests import ContentPart, TranscriptItem, invalid_request_from
from rig.protocol.transcript import items_from_chat, tools_from_chat

__all__ = [
    "ChatRequest",
    "ChatStream",
    "chat_completion",
    "chat_usage",
    "normalize_messages",
    "parse_chat_request",
    "responses_tools",
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ChatFunction(_Strict):
    """The function part of a tool call or a tool definition."""

    name: Annotated[str, Field(min_length=1)]
    arguments: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatToolCall(_Strict):
    """A tool call made by an earlier assistant message."""

    id: Annotated[str, Field(min_length=1)]
    type: Literal["function"] = "function"
    function: ChatFunction


class SystemMessage(_Strict):
    """A system or developer message."""

    role: Literal["system", "developer"]
    content: str | list[ContentPart]


class UserMessage(_Strict):
    """A user message."""

    role: Literal["user"]
    content: str | list[ContentPart]


class AssistantMessage(_Strict):
    """An earlier assistant message, possibly with tool calls."""

    role: Literal["assistant"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ChatToolCall] | None = None


class ToolMessage(_Strict):
    """A tool result for one tool call."""

    role: Literal["tool"]
    tool_call_id: Annotated[str, Field(min_length=1)]
    content: str | list[ContentPart]


def _role(value: Any) -> str | None:
    role = value.get("role") if isinstance(value, dict) else None
    if role == "developer":
        role = "system"
    return f"role:{role}" if role in ("system", "user", "assistant", "tool") else None


ChatMessage = Annotated[
    Annotated[SystemMessage, Tag("role:system")]
    | Annotated[UserMessage, Tag("role:user")]
    | Annotated[AssistantMessage, Tag("role:assistant")]
    | Annotated[ToolMessage, Tag("role:tool")],
    Discriminator(_role, custom_error_type="invalid_role", custom_error_message="unknown role"),
]


class ChatTool(_Strict):
    """A tool definition in the Chat Completions format."""

    type: Literal["function"]
    function: ChatFunction


class StreamOptions(_Strict):
    """``stream_options``."""

    include_usage: bool | None = None


class ChatRequest(_Strict):
    """Body of ``POST /v1/chat/completions``."""

    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    tools: list[ChatTool] | None = None
    tool_choice: Any = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    parallel_tool_calls: bool = True
    metadata: dict[str, str] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate a decoded Chat Completions body."""
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def normalize_messages(request: ChatRequest) -> list[TranscriptItem]:
    """The messages as normalised transcript items (same shapes as the Responses side;
    :func:`rig.protocol.transcript.items_from_chat`)."""
    return items_from_chat(message.model_dump(exclude_none=True) for message in request.messages)


def responses_tools(request: ChatRequest) -> list[dict[str, Any]]:
    """The request's tools in the Responses API format."""
    return tools_from_chat(tool.model_dump() for tool in request.tools or ())


def chat_usage(prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A Chat Completions ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def chat_completion(
    model: str,
    text: str | None,
    tool_calls: list[tuple[str, str, str]],
    usage: dict[str, Any],
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A non-streamed ``chat.completion``; ``tool_calls`` are ``(call_id, name, arguments)``."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in tool_calls
        ]
    return {
        "id": new_id("chatcmpl", 15),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_rigmock",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage,
    }


class ChatStream:
    """Builds the ``chat.completion.chunk`` objects of one streamed completion."""

    def __init__(self, model: str):
        self.id = new_id("chatcmpl", 15)
        self.created = int(time.time())
        self.model = model

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_rigmock",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def role(self) -> dict[str, Any]:
        """The first chunk, announcing the assistant role."""
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def content(self, piece: str) -> dict[str, Any]:
        """A content delta."""
        return self._chunk({"content": piece})

    def tool_call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        """The chunk opening tool call ``index``."""
        call = {"index": index, "id": call_id, "type": "function"}
        call["function"] = {"name": name, "arguments": ""}
        return self._chunk({"tool_calls": [call]})

    def tool_call_arguments(self, index: int, piece: str) -> dict[str, Any]:
        """An arguments delta of tool call ``index``."""
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})

    def finish(self, reason: str) -> dict[str, Any]:
        """The chunk carrying ``finish_reason``."""
        return self._chunk({}, reason)

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The final chunk with empty ``choices`` and ``usage`` (``include_usage``)."""
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage
        return chunk
