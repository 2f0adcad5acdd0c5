"""The simulated coding agent's system instructions and tool definitions.

Sized like a real agent harness's: instructions plus tool schemas come to about
2 KB of JSON, the fixed part every stateless request re-sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["INSTRUCTIONS", "TOOLS", "TOOL_NAMES", "chat_tools"]

INSTRUCTIONS = (
    "You are a coding agent in a TypeScript/React repository. Use the tools to inspect "
    "the code, change it and verify the change; never guess file contents. Read a file "
    "before editing it, keep changes small and in the local style, and run the relevant "
    "tests after each change. Use apply_patch to edit files and write_file for new ones. "
    "Before each tool call, say briefly what you are doing and why. When done, answer "
    "without tool calls: summarise what you changed, where, and how you verified it."
)


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required,
        },
        "strict": False,
    }


def _string(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


_PATH = {"type": "string"}

TOOLS: list[dict[str, Any]] = [
    _tool(
        "read_file",
        "Read a text file (paths relative to the repo root). Returns numbered lines.",
        {
            "path": _PATH,
            "start_line": {"type": "integer"},
            "end_line": {"type": "integer"},
        },
        ["path"],
    ),
    _tool("list_dir", "List a directory.", {"path": _PATH}, []),
    _tool(
        "search",
        "Search file contents with a regex, like grep -rn. Returns path:line:text.",
        {"pattern": {"type": "string"}, "path": _PATH, "glob": _string("e.g. *.tsx")},
        ["pattern"],
    ),
    _tool(
        "write_file",
        "Create or overwrite a file.",
        {"path": _PATH, "content": {"type": "string"}},
        ["path", "content"],
    ),
    _tool(
        "apply_patch",
        "Apply a unified diff to one or more files.",
        {"patch": {"type": "string"}},
        ["patch"],
    ),
    _tool(
        "run_tests",
        "Run the jest tests, optionally only files matching path.",
        {"path": _PATH, "test_name": _string("Only tests whose name matches")},
        [],
    ),
    _tool(
        "run_command",
        "Run a shell command in the repository root; returns exit code and output.",
        {"command": {"type": "string"}},
        ["command"],
    ),
]

TOOL_NAMES: frozenset[str] = frozenset(tool["name"] for tool in TOOLS)


def chat_tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Convert Responses API function tools to the Chat Completions format.

    Tools already in the Chat Completions format pass through unchanged;
    non-function tools are dropped because Chat Completions has no equivalent.
    """
    converted = []
    for tool in tools:
        if tool.get("type") != "function":
            continue
        if isinstance(tool.get("function"), Mapping):
            converted.append(dict(tool))
            continue
        function = {"name": tool["name"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        converted.append({"type": "function", "function": function})
    return converted
