"""Agent traces: the shapes of real sessions, recorded, imported and (later) replayed.

- :mod:`rig.traces.format` - the versioned JSONL format: records, writer, validating reader
- :mod:`rig.traces.shape` - measuring Responses API items: sizes, kinds, tool calls, tokens
- :mod:`rig.traces.recorder` - a server's requests grouped into sessions and written
- :mod:`rig.traces.codex` - Codex CLI session rollouts converted into traces

The bottom layer with :mod:`rig.protocol` and :mod:`rig.workload` beside it: it imports
nothing else from the rig, so the mock, the gateway and the load generator can all use it.
"""

from rig.traces.format import (
    FORMAT,
    VERSION,
    Item,
    Session,
    SessionInfo,
    ToolCall,
    Trace,
    TraceError,
    TraceHeader,
    TraceWriter,
    TurnTrace,
    Usage,
    builtin_traces,
    load_trace,
    read_trace,
    write_trace,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "Item",
    "Session",
    "SessionInfo",
    "ToolCall",
    "Trace",
    "TraceError",
    "TraceHeader",
    "TraceWriter",
    "TurnTrace",
    "Usage",
    "builtin_traces",
    "load_trace",
    "read_trace",
    "write_trace",
]
