"""Tool-call pairing: every function call output answers a call, every call gets an output.

The API refuses, with a 400 naming ``input``, a ``function_call_output`` whose call is
unknown and a conversation that leaves a ``function_call`` without its output. Calls still
open in a resumed response count as known.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from rig.protocol.errors import InvalidRequestError

__all__ = ["check_pairing", "pending_calls"]


def check_pairing(items: Iterable[Mapping[str, Any]], pending: Collection[str] = ()) -> None:
    """Raise the API's error when a tool output has no call, or a call has no output.

    ``items`` are normalised conversation items; ``pending`` holds call ids of the resumed
    conversation still awaiting outputs.
    """
    open_calls = set(pending)
    for item in items:
        kind = item["type"]
        if kind == "function_call":
            open_calls.add(item["call_id"])
        elif kind == "function_call_output":
            call_id = item["call_id"]
            if call_id not in open_calls:
                raise InvalidRequestError(
                    f"No tool call found for function call output with call_id {call_id}.",
                    param="input",
                )
            open_calls.discard(call_id)
    if open_calls:
        missing = sorted(open_calls)[0]
        raise InvalidRequestError(
            f"No tool output found for function call {missing}.", param="input"
        )


_CALL_ITEM_TYPES = frozenset(
    {"function_call", "custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call"}
)
"""Output items of calls the client runs and answers (each needs its output)."""


def pending_calls(response: Mapping[str, Any]) -> set[str]:
    """Call ids of the client-run tool calls (function, custom, local shell, shell,
    apply_patch) in a response object's ``output``."""
    return {item["call_id"] for item in response["output"] if item["type"] in _CALL_ITEM_TYPES}
