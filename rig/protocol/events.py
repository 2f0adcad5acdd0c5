"""Response objects and the streaming events of one response, numbered and in order.

A server decides *what* the model says (text, function calls); this module turns that
into exactly the objects and events the Responses API emits, with ``sequence_number``s,
so the mock and the gateway cannot drift from the SDK's types. Every event dict puts
``type`` first, which lets :func:`rig.protocol.sniff.event_type` read it without a parse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from rig.protocol.errors import APIError
from rig.protocol.ids import new_id
from rig.protocol.requests import FunctionTool, ResponseCreateRequest

__all__ = [
    "ResponseStream",
    "custom_tool_call_item",
    "function_call_item",
    "local_shell_call_item",
    "message_item",
    "reasoning_item",
    "response_object",
    "usage_object",
]

_OBFUSCATION_ALPHABET = "q3ZkT0bWm8sXr1LcY5vN7hG2dPjF9uA4eKxR6tBnHzVwSiCyMoElQgUfJ"


def usage_object(
    input_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """The ``usage`` of a response; ``cache_write_tokens`` were newly written to the cache;
    ``output_tokens`` include the ``reasoning_tokens``."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": cached_tokens,
            "cache_write_tokens": cache_write_tokens,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant output message holding ``text``."""
    content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
    if status == "in_progress" and not text:
        content = []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    }


def reasoning_item(item_id: str, encrypted_content: str | None) -> dict[str, Any]:
    """A reasoning item: no readable summary; the encrypted reasoning when asked for."""
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
    if encrypted_content is not None:
        item["encrypted_content"] = encrypted_content
    return item


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """A function call output item."""
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def _echo_tools(request: ResponseCreateRequest) -> list[dict[str, Any]]:
    """The request's tools as a response echoes them: function tools with the API's
    defaults filled in, every other kind as sent."""
    tools = []
    for tool in request.tools or ():
        if isinstance(tool, FunctionTool):
            tools.append(
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": True if tool.strict is None else tool.strict,
                }
            )
        else:
            tools.append(tool.model_dump(mode="json", exclude_unset=True))
    return tools


def response_object(
    request: ResponseCreateRequest,
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """A Response object echoing the request's settings, as the API returns it."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": None,
        "model": request.model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": request.store,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto" if request.tool_choice is None else request.tool_choice,
        "tools": _echo_tools(request) if tools is None else tools,
        "top_logprobs": 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def custom_tool_call_item(
    item_id: str, call_id: str, name: str, tool_input: str, status: str = "completed"
) -> dict[str, Any]:
    """A custom (freeform) tool call output item: ``input`` is the model's free text."""
    return {
        "id": item_id,
        "type": "custom_tool_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "input": tool_input,
    }


def local_shell_call_item(
    item_id: str, call_id: str, command: list[str], status: str = "completed"
) -> dict[str, Any]:
    """A ``local_shell_call`` output item: the client runs ``command`` (an argv list)."""
    return {
        "id": item_id,
        "type": "local_shell_call",
        "status": status,
        "call_id": call_id,
        "action": {"type": "exec", "command": command, "env": {}},
    }


class ResponseStream:
    """Builds the numbered event sequence of one streamed response.

    Call :meth:`created` and :meth:`in_progress`, then iterate :meth:`message` and
    :meth:`function_call` for each output item, then :meth:`completed` (or
    :meth:`failed`). Finished items accumulate in :attr:`output`.
    """

    def __init__(
        self,
        request: ResponseCreateRequest,
        *,
        response_id: str | None = None,
        stream_id: str | None = None,
        obfuscate: bool = True,
    ):
        self.request = request
        self.response_id = response_id or new_id("resp")
        self.created_at = int(time.time())
        self.stream_id = stream_id
        self.obfuscate = obfuscate
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.tools = _echo_tools(request)
        """The request's tools as the response echoes them (built once per response)."""

    def snapshot(
        self,
        status: str,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
    ) -> dict[str, Any]:
        """The response object as it stands, with ``status``."""
        return response_object(
            self.request,
            response_id=self.response_id,
            created_at=self.created_at,
            status=status,
            output=list(self.output) if status != "in_progress" else [],
            usage=usage,
            error=error,
            tools=self.tools,
            incomplete_reason=incomplete_reason,
        )

    def _number(self, event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        if self.stream_id is not None:
            event["stream_id"] = self.stream_id
        return event

    def _obfuscation(self, delta: str) -> str:
        # The real API pads deltas with random characters against length side channels
        # (stream_options.include_obfuscation, default on); the bytes are on the wire too.
        pad = 16 - len(delta) % 16
        start = self.sequence % (len(_OBFUSCATION_ALPHABET) - 16)
        return _OBFUSCATION_ALPHABET[start : start + pad]

    def created(self) -> dict[str, Any]:
        """``response.created``."""
        return self._number({"type": "response.created", "response": self.snapshot("in_progress")})

    def in_progress(self) -> dict[str, Any]:
        """``response.in_progress``."""
        return self._number(
            {"type": "response.in_progress", "response": self.snapshot("in_progress")}
        )

    def reasoning(
        self, encrypted_content: str | None, item_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Events of a reasoning item (added, then done with its encrypted content)."""
        item_id = item_id or new_id("rs")
        index = len(self.output)
        added = {"id": item_id, "type": "reasoning", "summary": []}
        yield self._number(
            {"type": "response.output_item.added", "output_index": index, "item": added}
        )
        item = reasoning_item(item_id, encrypted_content)
        self.output.append(item)
        yield self._number(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )

    def message(
        self, pieces: list[str], item_id: str | None = None, status: str = "completed"
    ) -> Iterator[dict[str, Any]]:
        """Events streaming an assistant message whose text is ``"".join(pieces)``;
        ``status="incomplete"`` when the output token limit cut it short."""
        item_id = item_id or new_id("msg")
        index = len(self.output)
        yield self._number(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": message_item(item_id, "", "in_progress"),
            }
        )
        yield self._number(
            {
                "type": "response.content_part.added",
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            }
        )
        for piece in pieces:
            event = {
                "type": "response.output_text.delta",
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
            if self.obfuscate:
                event["obfuscation"] = self._obfuscation(piece)
            yield self._number(event)
        text = "".join(pieces)
        yield self._number(
            {
                "type": "response.output_text.done",
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }
        )
        yield self._number(
            {
                "type": "response.content_part.done",
                "item_id": item_id,
                "output_index": index,
                "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": text},
            }
        )
        item = message_item(item_id, text, status)
        self.output.append(item)
        yield self._number(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )

    def function_call(
        self,
        name: str,
        pieces: list[str],
        call_id: str | None = None,
        item_id: str | None = None,
        status: str = "completed",
    ) -> Iterator[dict[str, Any]]:
        """Events streaming a call of ``name`` whose arguments are ``"".join(pieces)``."""
        yield from self._streamed_call(
            name,
            pieces,
            item_id or new_id("fc"),
            call_id or new_id("call", 12),
            status,
            function_call_item,
            "response.function_call_arguments",
            "arguments",
        )

    def custom_tool_call(
        self,
        name: str,
        pieces: list[str],
        call_id: str | None = None,
        item_id: str | None = None,
        status: str = "completed",
    ) -> Iterator[dict[str, Any]]:
        """Events streaming a call of the custom tool ``name`` whose input is
        ``"".join(pieces)``."""
        yield from self._streamed_call(
            name,
            pieces,
            item_id or new_id("ctc"),
            call_id or new_id("call", 12),
            status,
            custom_tool_call_item,
            "response.custom_tool_call_input",
            "input",
        )

    def _streamed_call(
        self,
        name: str,
        pieces: list[str],
        item_id: str,
        call_id: str,
        status: str,
        make_item: Callable[[str, str, str, str, str], dict[str, Any]],
        prefix: str,
        field: str,
    ) -> Iterator[dict[str, Any]]:
        """A call item whose text (``field``: a function's arguments, a custom tool's
        input) streams as ``<prefix>.delta`` events, then ``<prefix>.done``."""
        index = len(self.output)
        yield self._number(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": make_item(item_id, call_id, name, "", "in_progress"),
            }
        )
        for piece in pieces:
            event = {
                "type": prefix + ".delta",
                "item_id": item_id,
                "output_index": index,
                "delta": piece,
            }
            if self.obfuscate:
                event["obfuscation"] = self._obfuscation(piece)
            yield self._number(event)
        text = "".join(pieces)
        done: dict[str, Any] = {"type": prefix + ".done", "item_id": item_id, "output_index": index}
        if field == "arguments":
            done["name"] = name  # the function call's done event names it
        done[field] = text
        yield self._number(done)
        item = make_item(item_id, call_id, name, text, status)
        self.output.append(item)
        yield self._number(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )

    def local_shell_call(
        self,
        command: list[str],
        call_id: str | None = None,
        item_id: str | None = None,
        status: str = "completed",
    ) -> Iterator[dict[str, Any]]:
        """Events of a ``local_shell_call`` running ``command`` (added, then done)."""
        item_id = item_id or new_id("lsh")
        call_id = call_id or new_id("call", 12)
        index = len(self.output)
        yield self._number(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": local_shell_call_item(item_id, call_id, command, "in_progress"),
            }
        )
        item = local_shell_call_item(item_id, call_id, command, status)
        self.output.append(item)
        yield self._number(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )

    def completed(self, usage: dict[str, Any]) -> dict[str, Any]:
        """``response.completed`` carrying the final response object."""
        return self._number(
            {"type": "response.completed", "response": self.snapshot("completed", usage)}
        )

    def incomplete(
        self, usage: dict[str, Any], reason: str = "max_output_tokens"
    ) -> dict[str, Any]:
        """``response.incomplete``: the response stopped early (the output token limit)."""
        snapshot = self.snapshot("incomplete", usage, incomplete_reason=reason)
        return self._number({"type": "response.incomplete", "response": snapshot})

    def failed(self, error: APIError) -> dict[str, Any]:
        """``response.failed`` carrying the error in the response object."""
        detail = {"code": error.code or "server_error", "message": error.message}
        return self._number(
            {"type": "response.failed", "response": self.snapshot("failed", error=detail)}
        )
