"""Tool dialects: how the scripted model's abstract actions become calls of offered tools.

The model thinks in actions - list the files, read one, search, edit, run the tests, run
a command - and a :class:`Toolbox` built from a request's ``tools`` says which offered
tool performs each and how to phrase the call: the rig's seven tools, Codex CLI's
(``exec_command`` / ``shell`` / ``local_shell`` with real shell commands, ``apply_patch``
as a freeform custom tool or a function), or any other function tool matched by its name
and parameters. What each dialect's tools look like is data (``dialects.yaml``); a tool
the toolbox does not recognise is never called.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson
import yaml

__all__ = [
    "ACTIONS",
    "Binding",
    "DialectData",
    "Edit",
    "ToolCall",
    "Toolbox",
    "dialect_data",
    "example_arguments",
    "tool_name",
]

ACTIONS = ("run", "list", "read", "search", "edit", "test")
"""The abstract actions a plan is made of (finishing is answering without a call)."""

_CALLABLE_TYPES = frozenset({"function", "custom", "local_shell"})


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model decides to make.

    ``kind`` is the output item it becomes: ``function`` (``arguments`` is JSON),
    ``custom`` (``arguments`` is the free-text input) or ``local_shell`` (``arguments``
    is the JSON argv list).
    """

    name: str
    arguments: str
    kind: str = "function"


@dataclass(frozen=True)
class DialectData:
    """The contents of ``dialects.yaml``."""

    tools: tuple[Mapping[str, Any], ...]
    commands: Mapping[str, str]
    test_runners: tuple[Mapping[str, Any], ...]
    heuristics: Mapping[str, Sequence[str]]
    parameters: Mapping[str, Sequence[str]]
    texts: Mapping[str, str]


@cache
def dialect_data() -> DialectData:
    """The packaged dialect data (loaded once; read-only)."""
    raw = yaml.safe_load(
        resources.files("rig.workload").joinpath("dialects.yaml").read_text(encoding="utf-8")
    )
    tools = tuple(
        {**tool, "dialect": dialect["name"]}
        for dialect in raw["dialects"]
        for tool in dialect["tools"]
    )
    return DialectData(
        tools=tools,
        commands=raw["commands"],
        test_runners=tuple(raw["test_runners"]),
        heuristics=raw["heuristics"],
        parameters=raw["parameters"],
        texts=raw["texts"],
    )


def tool_name(tool: Mapping[str, Any]) -> str | None:
    """A tool's name (Chat Completions tools nest it under ``function``)."""
    spec = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
    name = spec.get("name")
    return name if isinstance(name, str) and name else None


def _parameters(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
    parameters = spec.get("parameters")
    return parameters if isinstance(parameters, Mapping) else {}


def _tool_type(tool: Mapping[str, Any]) -> str:
    kind = tool.get("type", "function")
    return kind if isinstance(kind, str) else "function"


@dataclass(frozen=True)
class Edit:
    """A change to one file: its text as read, and as it should be."""

    path: str
    before: str
    after: str
    summary: str

    def region(self, context: int = 2) -> tuple[list[str], list[str], list[str], list[str], int]:
        """(context before, removed, added, context after, first changed line index)."""
        old, new = self.before.splitlines(), self.after.splitlines()
        start = 0
        while start < min(len(old), len(new)) and old[start] == new[start]:
            start += 1
        end = 0
        while (
            end < min(len(old), len(new)) - start
            and old[len(old) - 1 - end] == new[len(new) - 1 - end]
        ):
            end += 1
        removed, added = old[start : len(old) - end], new[start : len(new) - end]
        before = old[max(0, start - context) : start]
        after = old[len(old) - end : len(old) - end + context]
        return before, removed, added, after, start

    def codex_patch(self) -> str:
        """The change in Codex's ``apply_patch`` grammar."""
        before, removed, added, after, _ = self.region()
        lines = ["*** Begin Patch", f"*** Update File: {self.path}", "@@"]
        lines += [f" {line}" for line in before]
        lines += [f"-{line}" for line in removed] + [f"+{line}" for line in added]
        lines += [f" {line}" for line in after]
        return "\n".join([*lines, "*** End Patch"]) + "\n"

    def unified_diff(self) -> str:
        """The change as a unified diff."""
        before, removed, added, after, start = self.region()
        first = start - len(before) + 1
        old_count = len(before) + len(removed) + len(after)
        new_count = len(before) + len(added) + len(after)
        lines = [f"--- a/{self.path}", f"+++ b/{self.path}"]
        lines.append(f"@@ -{first},{old_count} +{first},{new_count} @@")
        lines += [f" {line}" for line in before]
        lines += [f"-{line}" for line in removed] + [f"+{line}" for line in added]
        lines += [f" {line}" for line in after]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Binding:
    """An offered tool that performs one action, and how to phrase its call."""

    action: str
    tool_type: str
    name: str
    dialect: str
    argument: str | None = None
    argv: bool = False
    patch: str | None = None
    path_argument: str | None = None
    old_argument: str | None = None
    new_argument: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()
    schema: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def _function(self, values: Mapping[str, Any]) -> ToolCall:
        arguments = example_arguments(self.schema)  # required parameters we do not set
        arguments.update(dict(self.extra))
        arguments.update(values)
        return ToolCall(self.name, orjson.dumps(arguments).decode())

    def command(self, command: str) -> ToolCall:
        """A call running the shell ``command`` (a ``run`` binding)."""
        argv = ["bash", "-lc", command]
        if self.tool_type == "local_shell":
            return ToolCall("local_shell", orjson.dumps(argv).decode(), "local_shell")
        value: Any = argv if self.argv else command
        return self._function({self.argument or "command": value})

    def value(self, value: str | None) -> ToolCall:
        """A call of a read, list, search or test tool with its one value (or none)."""
        if value is None or self.argument is None:
            return self._function({})
        return self._function({self.argument: value})

    def edit(self, edit: Edit) -> ToolCall | None:
        """A call making ``edit`` with this edit tool (None if it cannot)."""
        if self.patch == "codex":
            patch = edit.codex_patch()
            if self.tool_type == "custom":
                return ToolCall(self.name, patch, "custom")
            return self._function({self.argument or "input": patch})
        if self.patch == "unified":
            return self._function({self.argument or "patch": edit.unified_diff()})
        if self.patch == "content" and self.path_argument:
            return self._function(
                {self.path_argument: edit.path, self.argument or "content": edit.after}
            )
        if (
            self.patch == "replace"
            and self.path_argument
            and self.old_argument
            and self.new_argument
        ):
            before, removed, added, after, _ = edit.region(context=1)
            return self._function(
                {
                    self.path_argument: edit.path,
                    self.old_argument: "\n".join([*before, *removed, *after]),
                    self.new_argument: "\n".join([*before, *added, *after]),
                }
            )
        return None


def _known_binding(tool: Mapping[str, Any], kind: str, name: str | None) -> Binding | None:
    """The binding ``dialects.yaml`` gives this tool, if it lists one that fits."""
    properties = _parameters(tool).get("properties") or {}
    for entry in dialect_data().tools:
        if entry["type"] != kind or (kind != "local_shell" and entry.get("name") != name):
            continue
        argument = entry.get("argument")
        if kind == "function" and argument is not None and argument not in properties:
            continue  # same name, other schema: not this dialect's tool
        return Binding(
            action=entry["action"],
            tool_type=kind,
            name=name or "local_shell",
            dialect=entry["dialect"],
            argument=argument,
            argv=bool(entry.get("argv")),
            patch=entry.get("patch"),
            path_argument=entry.get("path_argument"),
            extra=tuple((entry.get("extra") or {}).items()),
            schema=_parameters(tool),
        )
    return None


def _first_named(properties: Mapping[str, Any], words: Sequence[str]) -> str | None:
    lowered = {key.lower(): key for key in properties}
    for word in words:
        if word in lowered:
            return lowered[word]
    return None


def _generic_binding(tool: Mapping[str, Any], name: str) -> Binding | None:
    """A binding for a function tool of its own name, from its name and parameters."""
    data = dialect_data()
    schema = _parameters(tool)
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return None
    words = set(re.split(r"[^a-z0-9]+", name.lower())) | {name.lower()}
    for action, keys in data.heuristics.items():
        if not any(key in words or (len(key) > 3 and key in name.lower()) for key in keys):
            continue
        argument = _first_named(properties, data.parameters.get(action, ()))
        if action == "edit":
            path = _first_named(properties, data.parameters["read"])
            content = _first_named(properties, data.parameters["content"])
            old = _first_named(properties, data.parameters["old"])
            new = _first_named(properties, data.parameters["new"])
            if path and old and new:
                return Binding(action, "function", name, "generic", patch="replace",
                               path_argument=path, old_argument=old, new_argument=new,
                               schema=schema)  # fmt: skip
            if path and content:
                return Binding(action, "function", name, "generic", argument=content,
                               patch="content", path_argument=path, schema=schema)  # fmt: skip
            if argument:
                return Binding(action, "function", name, "generic", argument=argument,
                               patch="unified", schema=schema)  # fmt: skip
            return None
        if argument is None and action in ("run", "read", "search"):
            return None  # nowhere to put the command, path or pattern
        prop = properties.get(argument) if argument else None
        argv = isinstance(prop, Mapping) and prop.get("type") == "array"
        return Binding(action, "function", name, "generic", argument=argument, argv=argv,
                       schema=schema)  # fmt: skip
    return None


@dataclass(frozen=True)
class Toolbox:
    """The offered tools the model can use, by action (first offered wins)."""

    bindings: tuple[Binding, ...]
    offered: frozenset[str]

    @classmethod
    def from_tools(cls, tools: Sequence[Mapping[str, Any]]) -> Toolbox:
        """Recognise the callable tools of a request (functions, custom tools, local shell);
        hosted tools and namespaces are never called."""
        bindings: list[Binding] = []
        offered: set[str] = set()
        for tool in tools:
            kind = _tool_type(tool)
            if kind not in _CALLABLE_TYPES:
                continue
            name = tool_name(tool) if kind != "local_shell" else "local_shell"
            if name is None:
                continue
            offered.add(name)
            binding = _known_binding(tool, kind, name)
            if binding is None and kind == "function":
                binding = _generic_binding(tool, name)
            if binding is not None:
                bindings.append(binding)
        known = [b for b in bindings if b.dialect != "generic"]
        generic = [b for b in bindings if b.dialect == "generic"]
        return cls(tuple(known + generic), frozenset(offered))

    def get(self, action: str) -> Binding | None:
        """The tool for ``action``: a dialect's known tool before a guessed one."""
        return next((b for b in self.bindings if b.action == action), None)

    @property
    def dialects(self) -> frozenset[str]:
        """The dialects of the recognised tools."""
        return frozenset(b.dialect for b in self.bindings)

    @property
    def can_work(self) -> bool:
        """Whether a coding task can be played: a shell, or a tool to list or read files."""
        return any(self.get(action) for action in ("run", "list", "read"))

    def shell(self, command: str) -> ToolCall | None:
        """A call running ``command`` in the client's shell, if one is offered."""
        binding = self.get("run")
        return binding.command(command) if binding else None

    def act(self, action: str, value: str | None, command: str | None) -> ToolCall | None:
        """A call performing ``action`` with its value: its own tool, else ``command`` in
        the shell."""
        binding = self.get(action)
        if binding is not None:
            return binding.value(value)
        return self.shell(command) if command is not None else None

    def edit(self, edit: Edit) -> ToolCall | None:
        """A call making ``edit``: an edit tool, else a patch or a file write in the shell."""
        binding = self.get("edit")
        if binding is not None:
            call = binding.edit(edit)
            if call is not None:
                return call
        run = self.get("run")
        if run is None:
            return None
        commands = dialect_data().commands
        if run.dialect == "codex":  # Codex applies an apply_patch heredoc itself
            return run.command(commands["codex_patch"].format(patch=edit.codex_patch()))
        content = edit.after if edit.after.endswith("\n") else edit.after + "\n"
        return run.command(commands["write"].format(path=shlex.quote(edit.path), content=content))


# -- example arguments for a schema ------------------------------------------------------

_STRING_EXAMPLES = {
    "location": "San Francisco, CA",
    "city": "Paris",
    "country": "France",
    "query": "example",
    "q": "example",
    "path": "README.md",
    "file": "README.md",
    "url": "https://example.com",
    "email": "user@example.com",
    "date": "2024-03-05",
    "unit": "celsius",
    "language": "en",
    "name": "example",
    "id": "1",
}


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments satisfying a JSON schema's required properties, with plausible values."""
    value = _example_value(schema, "")
    return value if isinstance(value, dict) else {}


def _example_value(schema: Mapping[str, Any], name: str) -> Any:
    if not isinstance(schema, Mapping):
        return "example"
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _example_value((non_null or options)[0], name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        required = schema.get("required") or []
        return {
            key: _example_value(properties.get(key, {}), key)
            for key in required
            if isinstance(key, str)
        }
    if kind == "array":
        minimum = schema.get("minItems", 0)
        if isinstance(minimum, int) and minimum > 0:
            return [_example_value(schema.get("items", {}), name) for _ in range(minimum)]
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2024-03-05T12:00:00Z"
    lowered = name.lower()
    if lowered in _STRING_EXAMPLES:
        return _STRING_EXAMPLES[lowered]
    for key, example in _STRING_EXAMPLES.items():
        if len(key) >= 4 and key in lowered:
            return example
    return "example"
