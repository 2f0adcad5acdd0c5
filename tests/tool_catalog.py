"""One valid definition of every tool type the Responses API defines, as clients send them
(shapes from the installed openai package's ``ToolParam``; Codex's from a captured request)."""

from __future__ import annotations

from typing import Any

APPLY_PATCH_GRAMMAR = """start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?
hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change?
filename: /(.+)/
add_line: "+" /(.*)/ LF -> line
change: (change_context | change_line)+
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
%import common.LF
"""

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
    "strict": False,
}

HOSTED_AND_CLIENT_TOOLS: list[dict[str, Any]] = [
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edit files with a patch.",
        "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
    },
    {"type": "custom", "name": "notes", "format": {"type": "text"}},
    {
        "type": "namespace",
        "name": "mcp__docs",
        "description": "Tools of the docs MCP server.",
        "tools": [
            {
                "type": "function",
                "name": "search_docs",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            },
            {"type": "custom", "name": "raw_query"},
        ],
    },
    {"type": "web_search", "search_context_size": "medium"},
    {"type": "web_search_2025_08_26"},
    {"type": "web_search_preview", "search_context_size": "low"},
    {"type": "web_search_preview_2025_03_11"},
    {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 5},
    {"type": "computer"},
    {
        "type": "computer_use_preview",
        "display_width": 1024,
        "display_height": 768,
        "environment": "browser",
    },
    {
        "type": "mcp",
        "server_label": "deepwiki",
        "server_url": "https://mcp.deepwiki.com/mcp",
        "require_approval": "never",
    },
    {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}},
    {"type": "image_generation", "quality": "low", "partial_images": 1},
    {"type": "local_shell"},
    {"type": "shell", "environment": {"type": "local"}},
    {"type": "apply_patch"},
    {"type": "tool_search", "execution": "server"},
    {"type": "programmatic_tool_calling"},
]
"""Every tool type but ``function``, one definition each (two for ``custom`` formats)."""

ALL_TOOLS: list[dict[str, Any]] = [WEATHER, *HOSTED_AND_CLIENT_TOOLS]

CLIENT_RUN_TYPES = {"function", "custom", "namespace", "local_shell", "shell", "apply_patch"}
"""Tool types whose calls the client runs (the scripted model may call them)."""

HOSTED_TOOLS: list[dict[str, Any]] = [
    tool for tool in HOSTED_AND_CLIENT_TOOLS if tool["type"] not in CLIENT_RUN_TYPES
]
"""Tools the provider itself runs (search, computer use, MCP, code, images...): the mock
does not model them, so the scripted model never calls them."""
