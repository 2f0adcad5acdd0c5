"""Responses API request bodies and WebSocket client events: validation and normalisation.

Validation is strict like the real API (``"5"`` is not an integer) and every failure
becomes an :class:`InvalidRequestError` whose ``param`` is the dotted path of the bad
field (``input[3].call_id``). Unknown top-level fields are tolerated, so newer SDKs that
send fields this server does not model keep working.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from rig.protocol.errors import InvalidRequestError

__all__ = [
    "MAX_JSON_DEPTH",
    "TOOL_TYPES",
    "ContentPart",
    "CustomTool",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputItem",
    "MessageItem",
    "NamespaceTool",
    "PromptCacheOptions",
    "ReasoningItem",
    "ResponseCreateEvent",
    "ResponseCreateRequest",
    "Tool",
    "TranscriptItem",
    "check_json_depth",
    "content_text",
    "decode_json_object",
    "invalid_request_from",
    "normalize_input",
    "parse_create_request",
    "parse_json_object",
]

TranscriptItem = dict[str, Any]
"""A conversation item in normalised form (see :func:`normalize_input`)."""

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and lists a request body or client event may have (the body
itself is level 1). Checked at parsing, before anything recurses over the value: orjson
encodes at most 254 levels and decodes at most 1,024, and validation and the model walk
the value recursively, so a deeper body would fail as a server error far from the input.
JSON schemas of real tools nest well under 20 levels."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ContentPart(_Strict):
    """One part of a message's content (``input_text``, ``output_text``, ``refusal``...)."""

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(_Strict):
    """A message from the user, the system/developer, or an earlier assistant turn."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Strict):
    """A function call the model made in an earlier turn, echoed back by the client."""

    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Strict):
    """The client's result for a function call."""

    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class ReasoningItem(_Strict):
    """A reasoning item echoed back by clients of reasoning models; carried, not interpreted."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[Any] = []


class CustomToolCallItem(_Strict):
    """A call of a custom (freeform) tool made in an earlier turn: ``input`` is free text."""

    type: Literal["custom_tool_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: str
    id: str | None = None


class CustomToolCallOutputItem(_Strict):
    """The client's result for a custom tool call."""

    type: Literal["custom_tool_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[ContentPart]
    id: str | None = None


class LocalShellAction(_Strict):
    """What a ``local_shell_call`` runs."""

    type: Literal["exec"]
    command: list[str]
    env: dict[str, str] = {}
    timeout_ms: int | None = None
    user: str | None = None
    working_directory: str | None = None


class LocalShellCallItem(_Strict):
    """A call of the hosted-schema ``local_shell`` tool, executed by the client."""

    type: Literal["local_shell_call"]
    call_id: Annotated[str, Field(min_length=1)]
    action: LocalShellAction
    id: str | None = None
    status: str | None = None


class LocalShellCallOutputItem(_Strict):
    """The client's result for a ``local_shell_call``; ``id`` is the call's ``call_id``."""

    type: Literal["local_shell_call_output"]
    id: Annotated[str, Field(min_length=1)]
    output: str
    status: str | None = None


class ShellAction(_Strict):
    """What a ``shell_call`` runs."""

    commands: list[str]
    max_output_length: int | None = None
    timeout_ms: int | None = None


class ShellCallItem(_Strict):
    """A call of the ``shell`` tool, executed by the client."""

    type: Literal["shell_call"]
    call_id: Annotated[str, Field(min_length=1)]
    action: ShellAction
    id: str | None = None
    status: str | None = None


class ShellCallOutputItem(_Strict):
    """The client's result for a ``shell_call``: one entry per command."""

    type: Literal["shell_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: list[dict[str, Any]]
    id: str | None = None
    status: str | None = None


class ApplyPatchOperation(_Strict):
    """One file operation of an ``apply_patch_call``."""

    type: Literal["create_file", "update_file", "delete_file"]
    path: Annotated[str, Field(min_length=1)]
    diff: str | None = None


class ApplyPatchCallItem(_Strict):
    """A call of the ``apply_patch`` tool, applied by the client."""

    type: Literal["apply_patch_call"]
    call_id: Annotated[str, Field(min_length=1)]
    operation: ApplyPatchOperation
    status: Literal["in_progress", "completed"]
    id: str | None = None


class ApplyPatchCallOutputItem(_Strict):
    """The client's result for an ``apply_patch_call``."""

    type: Literal["apply_patch_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    status: Literal["completed", "failed"]
    output: str | None = None
    id: str | None = None


class CarriedItem(_Strict):
    """An item of a hosted tool or of conversation bookkeeping (web search, file search,
    computer use, code interpreter, image generation, MCP, tool search, compaction, item
    references, which may omit their type): accepted and carried, not read by the scripted
    model."""

    type: str | None = None


_CARRIED_ITEM_TYPES = (
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "web_search_call",
    "tool_search_call",
    "tool_search_output",
    "additional_tools",
    "configuration_update",
    "compaction",
    "compaction_trigger",
    "image_generation_call",
    "code_interpreter_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "item_reference",
    "program",
    "program_output",
)
_ITEM_MODELS: dict[str, type[_Strict]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
    "custom_tool_call": CustomToolCallItem,
    "custom_tool_call_output": CustomToolCallOutputItem,
    "local_shell_call": LocalShellCallItem,
    "local_shell_call_output": LocalShellCallOutputItem,
    "shell_call": ShellCallItem,
    "shell_call_output": ShellCallOutputItem,
    "apply_patch_call": ApplyPatchCallItem,
    "apply_patch_call_output": ApplyPatchCallOutputItem,
}
_ITEM_TYPES = (*_ITEM_MODELS, *_CARRIED_ITEM_TYPES)


def _item_tag(value: Any) -> str | None:
    kind = _kind(value)
    if kind is None and isinstance(value, dict):
        if "role" in value:
            return "item:message"
        if "id" in value and "type" not in value:
            return "item:carried"  # an item reference may omit its type
    if kind in _ITEM_MODELS:
        return f"item:{kind}"
    return "item:carried" if kind in _CARRIED_ITEM_TYPES else None


def _kind(value: Any) -> str | None:
    """The ``type`` of a union member (raw JSON when validating, a model when serialising),
    or None when it has no string ``type``."""
    if isinstance(value, dict):
        kind = value.get("type")
    else:
        kind = getattr(value, "type", None) if isinstance(value, BaseModel) else None
    return kind if isinstance(kind, str) else None


def _supported(values: Iterable[str]) -> str:
    """The values a union's ``type`` accepts, as its error message (the error handler
    quotes it: a custom error context would make the type unhashable in a union)."""
    return ", ".join(f"'{value}'" for value in values)


InputItem = Annotated[
    Annotated[MessageItem, Tag("item:message")]
    | Annotated[FunctionCallItem, Tag("item:function_call")]
    | Annotated[FunctionCallOutputItem, Tag("item:function_call_output")]
    | Annotated[ReasoningItem, Tag("item:reasoning")]
    | Annotated[CustomToolCallItem, Tag("item:custom_tool_call")]
    | Annotated[CustomToolCallOutputItem, Tag("item:custom_tool_call_output")]
    | Annotated[LocalShellCallItem, Tag("item:local_shell_call")]
    | Annotated[LocalShellCallOutputItem, Tag("item:local_shell_call_output")]
    | Annotated[ShellCallItem, Tag("item:shell_call")]
    | Annotated[ShellCallOutputItem, Tag("item:shell_call_output")]
    | Annotated[ApplyPatchCallItem, Tag("item:apply_patch_call")]
    | Annotated[ApplyPatchCallOutputItem, Tag("item:apply_patch_call_output")]
    | Annotated[CarriedItem, Tag("item:carried")],
    Discriminator(
        _item_tag,
        custom_error_type="invalid_item_type",
        custom_error_message=_supported(_ITEM_TYPES),
    ),
]


_ToolName = Annotated[str, Field(min_length=1, max_length=128)]
_Callers = list[Literal["direct", "programmatic"]] | None


class FunctionTool(_Strict):
    """A function tool: the model calls it with JSON arguments, the client runs it."""

    type: Literal["function"]
    name: _ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    allowed_callers: _Callers = None
    defer_loading: bool | None = None
    output_schema: dict[str, Any] | None = None


class CustomTextFormat(_Strict):
    """A custom tool's input is unconstrained text."""

    type: Literal["text"]


class CustomGrammarFormat(_Strict):
    """A custom tool's input follows a Lark or regular-expression grammar."""

    type: Literal["grammar"]
    syntax: Literal["lark", "regex"]
    definition: str


def _type_tag(prefix: str, value: Any, kinds: tuple[str, ...]) -> str | None:
    """The union tag of ``value`` by its ``type`` (a ":" keeps tags out of param paths)."""
    kind = _kind(value)
    return f"{prefix}:{kind}" if kind in kinds else None


_CUSTOM_FORMATS = ("text", "grammar")
CustomToolFormat = Annotated[
    Annotated[CustomTextFormat, Tag("format:text")]
    | Annotated[CustomGrammarFormat, Tag("format:grammar")],
    Discriminator(
        lambda value: _type_tag("format", value, _CUSTOM_FORMATS),
        custom_error_type="invalid_tag",
        custom_error_message=_supported(_CUSTOM_FORMATS),
    ),
]


class CustomTool(_Strict):
    """A custom (freeform) tool: the model calls it with free text, or text in a grammar."""

    type: Literal["custom"]
    name: _ToolName
    description: str | None = None
    format: CustomToolFormat | None = None
    allowed_callers: _Callers = None
    defer_loading: bool | None = None


_NAMESPACE_MEMBERS = ("function", "custom")
NamespaceMember = Annotated[
    Annotated[FunctionTool, Tag("member:function")] | Annotated[CustomTool, Tag("member:custom")],
    Discriminator(
        lambda value: _type_tag("member", value, _NAMESPACE_MEMBERS),
        custom_error_type="invalid_tag",
        custom_error_message=_supported(_NAMESPACE_MEMBERS),
    ),
]


class NamespaceTool(_Strict):
    """A named group of function and custom tools (Codex sends its MCP tools this way)."""

    type: Literal["namespace"]
    name: _ToolName
    description: str
    tools: list[NamespaceMember]


class WebSearchTool(_Strict):
    """The hosted web search tool."""

    type: Literal["web_search", "web_search_2025_08_26"]
    search_context_size: Literal["low", "medium", "high"] | None = None
    filters: dict[str, Any] | None = None
    user_location: dict[str, Any] | None = None
    external_web_access: bool | None = None


class WebSearchPreviewTool(_Strict):
    """The hosted web search tool, preview version."""

    type: Literal["web_search_preview", "web_search_preview_2025_03_11"]
    search_context_size: Literal["low", "medium", "high"] | None = None
    search_content_types: list[Literal["text", "image"]] | None = None
    user_location: dict[str, Any] | None = None


class FileSearchTool(_Strict):
    """The hosted file search tool over vector stores."""

    type: Literal["file_search"]
    vector_store_ids: list[str]
    max_num_results: Annotated[int, Field(ge=1, le=50)] | None = None
    filters: dict[str, Any] | None = None
    ranking_options: dict[str, Any] | None = None


class ComputerTool(_Strict):
    """The computer use tool."""

    type: Literal["computer"]


class ComputerUsePreviewTool(_Strict):
    """The computer use tool, preview version."""

    type: Literal["computer_use_preview"]
    display_width: int
    display_height: int
    environment: Literal["windows", "mac", "linux", "ubuntu", "browser"]


class McpTool(_Strict):
    """Tools of a remote MCP server, called by the provider."""

    type: Literal["mcp"]
    server_label: Annotated[str, Field(min_length=1)]
    server_url: str | None = None
    connector_id: str | None = None
    tunnel_id: str | None = None
    server_description: str | None = None
    authorization: str | None = None
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | dict[str, Any] | None = None
    require_approval: Literal["always", "never"] | dict[str, Any] | None = None
    allowed_callers: _Callers = None
    defer_loading: bool | None = None


class CodeInterpreterContainer(_Strict):
    """A code interpreter container the provider creates."""

    type: Literal["auto"]
    file_ids: list[str] | None = None
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None


class CodeInterpreterTool(_Strict):
    """The hosted code interpreter: a container id, or one to create."""

    type: Literal["code_interpreter"]
    container: str | CodeInterpreterContainer
    allowed_callers: _Callers = None


class ImageGenerationTool(_Strict):
    """The hosted image generation tool."""

    type: Literal["image_generation"]
    partial_images: Annotated[int, Field(ge=0, le=3)] | None = None
    output_compression: Annotated[int, Field(ge=0, le=100)] | None = None


class LocalShellTool(_Strict):
    """The local shell tool: the model asks for commands, the client runs them."""

    type: Literal["local_shell"]


class ShellTool(_Strict):
    """The shell tool: commands run locally or in a hosted container."""

    type: Literal["shell"]
    environment: dict[str, Any] | None = None
    allowed_callers: _Callers = None


class ApplyPatchTool(_Strict):
    """The apply_patch tool: the model proposes file operations, the client applies them."""

    type: Literal["apply_patch"]
    allowed_callers: _Callers = None


class ToolSearchTool(_Strict):
    """Tool search: the model looks up deferred tools."""

    type: Literal["tool_search"]
    description: str | None = None
    execution: Literal["server", "client"] | None = None
    parameters: Any = None


class ProgrammaticToolCallingTool(_Strict):
    """Lets the model call tools from a program it writes."""

    type: Literal["programmatic_tool_calling"]


_TOOL_MODELS: dict[str, type[_Strict]] = {
    "function": FunctionTool,
    "custom": CustomTool,
    "namespace": NamespaceTool,
    "web_search": WebSearchTool,
    "web_search_2025_08_26": WebSearchTool,
    "web_search_preview": WebSearchPreviewTool,
    "web_search_preview_2025_03_11": WebSearchPreviewTool,
    "file_search": FileSearchTool,
    "computer": ComputerTool,
    "computer_use_preview": ComputerUsePreviewTool,
    "mcp": McpTool,
    "code_interpreter": CodeInterpreterTool,
    "image_generation": ImageGenerationTool,
    "local_shell": LocalShellTool,
    "shell": ShellTool,
    "apply_patch": ApplyPatchTool,
    "tool_search": ToolSearchTool,
    "programmatic_tool_calling": ProgrammaticToolCallingTool,
}
TOOL_TYPES = tuple(_TOOL_MODELS)
"""Every tool ``type`` the Responses API defines (the installed ``openai`` package's
``ToolParam``); the mock accepts them all and calls only those it models."""


def _tool_tag(value: Any) -> str | None:
    kind = _kind(value)
    return f"tool:{_TOOL_MODELS[kind].__name__}" if kind in _TOOL_MODELS else None


Tool = Annotated[
    Annotated[FunctionTool, Tag("tool:FunctionTool")]
    | Annotated[CustomTool, Tag("tool:CustomTool")]
    | Annotated[NamespaceTool, Tag("tool:NamespaceTool")]
    | Annotated[WebSearchTool, Tag("tool:WebSearchTool")]
    | Annotated[WebSearchPreviewTool, Tag("tool:WebSearchPreviewTool")]
    | Annotated[FileSearchTool, Tag("tool:FileSearchTool")]
    | Annotated[ComputerTool, Tag("tool:ComputerTool")]
    | Annotated[ComputerUsePreviewTool, Tag("tool:ComputerUsePreviewTool")]
    | Annotated[McpTool, Tag("tool:McpTool")]
    | Annotated[CodeInterpreterTool, Tag("tool:CodeInterpreterTool")]
    | Annotated[ImageGenerationTool, Tag("tool:ImageGenerationTool")]
    | Annotated[LocalShellTool, Tag("tool:LocalShellTool")]
    | Annotated[ShellTool, Tag("tool:ShellTool")]
    | Annotated[ApplyPatchTool, Tag("tool:ApplyPatchTool")]
    | Annotated[ToolSearchTool, Tag("tool:ToolSearchTool")]
    | Annotated[ProgrammaticToolCallingTool, Tag("tool:ProgrammaticToolCallingTool")],
    Discriminator(
        _tool_tag,
        custom_error_type="invalid_tag",
        custom_error_message=_supported(TOOL_TYPES),
    ),
]
"""One entry of a request's ``tools``, by its ``type``."""


_Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]


class PromptCacheOptions(_Strict):
    """How the request uses the provider's prompt cache; ``prewarm`` fills it and generates
    nothing."""

    prewarm: bool | None = None
    ttl: Literal["30m", "12h"] | None = None


class ResponseCreateRequest(_Strict):
    """Body of ``POST /v1/responses`` (and of a WebSocket ``response.create``)."""

    model: Annotated[str, Field(min_length=1)]
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Any = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    background: bool | None = None
    metadata: _Metadata | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    parallel_tool_calls: bool = True
    include: list[str] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    user: str | None = None
    prompt_cache_options: PromptCacheOptions | None = None

    @property
    def generates(self) -> bool:
        """False for a warm-up: the response prepares the conversation's state (its id can
        be continued) and generates no output. Over HTTP that is
        ``prompt_cache_options.prewarm``."""
        options = self.prompt_cache_options
        return not (options is not None and options.prewarm)


class ResponseCreateEvent(ResponseCreateRequest):
    """WebSocket client event: a create body plus ``type`` and an optional ``stream_id`` lane,
    and ``generate`` (WebSocket mode only: false for a warm-up, as Codex opens a session)."""

    type: Literal["response.create"]
    stream_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    generate: bool = True

    @property
    def generates(self) -> bool:
        """False for ``generate: false`` or a prewarm (which overrides ``generate``)."""
        return self.generate and super().generates


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_UNION_MARKERS = ("[", ":", "function-after", "function-plain")
# Union branches appear in error locations; tags carry a ":" so no field name can clash.
_BRANCH_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


@functools.cache
def _model_names() -> frozenset[str]:
    """Names of the request models: a plain union names its model branch in error paths."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [_Strict]
    while pending:
        model = pending.pop()
        names.add(model.__name__)
        pending.extend(model.__subclasses__())
    return frozenset(names)


def _json_kind(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case None:
            return "null"
    return type(value).__name__


def _param_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif (
            part in _BRANCH_NAMES
            or part in _model_names()
            or any(marker in part for marker in _UNION_MARKERS)
        ):
            continue
        else:
            path += f".{part}" if path else part
    return path


def invalid_request_from(exc: ValidationError) -> InvalidRequestError:
    """The most specific of ``exc``'s errors as an OpenAI-style ``InvalidRequestError``."""
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return InvalidRequestError(
            "We could not parse the JSON body of your request. The API expects a JSON "
            "payload, but what was sent was not valid JSON.",
            code="invalid_json",
        )
    # Unions report one error per branch; the deepest one names the real problem.
    error = max(errors, key=lambda e: len(e["loc"]))
    param = _param_path(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if kind in _TYPE_NAMES:
        return InvalidRequestError(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, "
            f"but got {_json_kind(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind in ("invalid_item_type", "invalid_tag"):
        # A union member chosen by its "type": the error names the type field.
        param = f"{param}.type"
        if isinstance(value, dict) and "type" not in value:
            return InvalidRequestError(
                f"Missing required parameter: '{param}'.",
                param=param,
                code="missing_required_parameter",
            )
        if isinstance(value, dict) and not isinstance(value["type"], str):
            return InvalidRequestError(
                f"Invalid type for '{param}': expected a string, but got "
                f"{_json_kind(value['type'])} instead.",
                param=param,
                code="invalid_type",
            )
    if kind in ("literal_error", "invalid_item_type", "invalid_tag"):
        expected = error.get("ctx", {}).get("expected") or error["msg"]
        shown = value.get("type") if isinstance(value, dict) else value
        return InvalidRequestError(
            f"Invalid value for '{param}': '{shown}'. Supported values are: {expected}.",
            param=param,
            code="invalid_value",
        )
    return InvalidRequestError(
        f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value"
    )


def _too_deep(raw: bytes | str, value: Any, limit: int) -> bool:
    """Whether ``value`` (decoded from ``raw``) nests objects and lists beyond ``limit``.

    Iterative, so the check itself cannot exhaust the stack; skipped outright when ``raw``
    has too few opening brackets to reach the limit (most bodies), which costs two scans
    in C.
    """
    if isinstance(raw, str):
        opening = raw.count("{") + raw.count("[")
    else:
        opening = raw.count(b"{") + raw.count(b"[")
    if opening <= limit:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        children = container.values() if isinstance(container, dict) else container
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep_error(limit: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The JSON body of your request nests objects and arrays more than {limit} levels "
        "deep; flatten it (tool parameter schemas included).",
        code="json_too_deep",
    )


def parse_json_object(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Decode ``raw`` as a JSON object nested at most ``max_depth`` levels, or raise the
    API's invalid-JSON error (or :func:`_too_deep_error`)."""
    value = decode_json_object(raw, max_depth=max_depth)
    check_json_depth(raw, value, max_depth=max_depth)
    return value


def check_json_depth(raw: bytes | str, value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :func:`_too_deep_error` if ``value`` (decoded from ``raw``, or a part of what
    was) nests objects and lists beyond ``max_depth`` (the second half of
    :func:`parse_json_object`)."""
    if _too_deep(raw, value, max_depth):
        raise _too_deep_error(max_depth)


def decode_json_object(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Decode ``raw`` as a JSON object, or raise the API's invalid-JSON error; its depth
    unchecked but for the decoder's own limit (the first half of
    :func:`parse_json_object`)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep_error(max_depth) from None
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The API expects a JSON "
            "payload, but what was sent was not valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"Invalid type for request body: expected an object, but got {_json_kind(value)} "
            "instead.",
            code="invalid_type",
        )
    return value


def parse_create_request(body: dict[str, Any]) -> ResponseCreateRequest:
    """Validate a decoded ``POST /v1/responses`` body."""
    try:
        return ResponseCreateRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def content_text(content: str | list[ContentPart]) -> str:
    """The text of a message's or tool output's content, parts joined."""
    if isinstance(content, str):
        return content
    return "".join(part.text or part.refusal or "" for part in content)


def normalize_input(request: ResponseCreateRequest) -> list[TranscriptItem]:
    """The request's input as normalised transcript items.

    Shapes: ``{"type": "message", "role", "content": str}``,
    ``{"type": "function_call", "call_id", "name", "arguments"}`` and
    ``{"type": "function_call_output", "call_id", "output": str}``. Calls of the other
    client-run tools take the function call shapes with ``call_type`` naming the item type
    they came as (``custom_tool_call``: ``arguments`` is the free-text input;
    ``local_shell_call`` / ``shell_call`` / ``apply_patch_call``: ``name`` is the tool type
    and ``arguments`` the action as JSON), so pairing, token counts and the scripted model
    treat every client-run call alike. Reasoning items and hosted tools' items are dropped:
    they carry no conversation content the scripted model reads.
    """
    raw = request.input
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    items: list[TranscriptItem] = []
    for item in raw:
        normal = _normal_item(item)
        if normal is not None:
            items.append(normal)
    return items


def _call(call_id: str, name: str, arguments: str, call_type: str | None) -> TranscriptItem:
    normal: TranscriptItem = {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }
    if call_type is not None:
        normal["call_type"] = call_type
    return normal


def _output(call_id: str, output: str, call_type: str | None) -> TranscriptItem:
    normal: TranscriptItem = {"type": "function_call_output", "call_id": call_id, "output": output}
    if call_type is not None:
        normal["call_type"] = call_type
    return normal


def _action_json(model: BaseModel) -> str:
    return orjson.dumps(model.model_dump(exclude_none=True)).decode()


def _normal_item(item: BaseModel) -> TranscriptItem | None:
    """One input item in normalised form (see :func:`normalize_input`), or None to drop."""
    match item:
        case MessageItem():
            return {"type": "message", "role": item.role, "content": content_text(item.content)}
        case FunctionCallItem():
            return _call(item.call_id, item.name, item.arguments, None)
        case FunctionCallOutputItem():
            return _output(item.call_id, content_text(item.output), None)
        case CustomToolCallItem():
            return _call(item.call_id, item.name, item.input, item.type)
        case CustomToolCallOutputItem():
            return _output(item.call_id, content_text(item.output), item.type)
        case LocalShellCallItem() | ShellCallItem():
            name = "local_shell" if item.type == "local_shell_call" else "shell"
            return _call(item.call_id, name, _action_json(item.action), item.type)
        case LocalShellCallOutputItem():
            return _output(item.id, item.output, item.type)
        case ShellCallOutputItem():
            text = "\n".join(
                str(entry.get("stdout", "")) + str(entry.get("stderr", "")) for entry in item.output
            )
            return _output(item.call_id, text, item.type)
        case ApplyPatchCallItem():
            return _call(item.call_id, "apply_patch", _action_json(item.operation), item.type)
        case ApplyPatchCallOutputItem():
            return _output(item.call_id, item.output or item.status, item.type)
    return None
