"""One set of transcript conversions: Responses API items <-> Chat Completions messages,
and Responses function tools <-> Chat tools.

Both halves use it: the load generator's ``chat`` transport turns its Responses-form
transcript into ``messages``, and a server reading a chat completion request turns its
``messages`` back into the normalised items the Responses side uses
(``{"type": "message", "role", "content": str}``, ``{"type": "function_call", "call_id",
"name", "arguments"}``, ``{"type": "function_call_output", "call_id", "output"}``). Plain
dicts in and out: the wire form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "chat_messages",
    "chat_tools",
    "items_from_chat",
    "message_text",
    "tools_from_chat",
]


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or parts (dicts or objects with
    ``text``/``refusal``) joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    text: list[str] = []
    for part in content:
        if isinstance(part, Mapping):
            text.append(part.get("text") or part.get("refusal") or "")
        else:
            text.append(getattr(part, "text", None) or getattr(part, "refusal", None) or "")
    return "".join(text)


def chat_messages(
    instructions: str | None, items: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Responses-form items as Chat Completions messages, ``instructions`` first as the
    system message. Consecutive assistant output (text, then calls) becomes one assistant
    message, as a chat model would have produced it; reasoning items have no chat form."""
    messages: list[dict[str, Any]] = []
    if instructions is not None:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item.get("type", "message")
        last = messages[-1] if messages else {}
        if kind == "message":
            content = message_text(item["content"])
            if item["role"] == "assistant" and last.get("role") == "assistant":
                last["content"] = (last.get("content") or "") + content
            else:
                messages.append({"role": item["role"], "content": content})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            if last.get("role") == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = message_text(item["output"])
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    return messages


def items_from_chat(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions messages as normalised Responses-form items (``developer`` stays a
    role of its own; a system message is an item like any other)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "assistant":
            content = message.get("content")
            if content:
                items.append(
                    {"type": "message", "role": "assistant", "content": message_text(content)}
                )
            for call in message.get("tool_calls") or ():
                function = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function.get("arguments") or "",
                    }
                )
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message_text(message.get("content")),
                }
            )
        else:
            text = message_text(message.get("content"))
            items.append({"type": "message", "role": role, "content": text})
    return items


def chat_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Responses function tools (``{"type": "function", "name", ...}``) as Chat tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description"),
                "parameters": tool.get("parameters"),
            },
        }
        for tool in tools
        if tool.get("type", "function") == "function"
    ]


def tools_from_chat(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat tools as Responses function tools."""
    return [
        {
            "type": "function",
            "name": tool["function"]["name"],
            "description": tool["function"].get("description"),
            "parameters": tool["function"].get("parameters"),
        }
        for tool in tools
    ]
