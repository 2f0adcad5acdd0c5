"""The agent side, as data: scenarios, a project corpus, a tool simulator and a scripted model.

- :mod:`rig.workload.corpus` - the files of a small TypeScript/React repository
- :mod:`rig.workload.tools` - the agent's instructions and tool definitions
- :mod:`rig.workload.simulator` - answers tool calls from a session's copy of the corpus
- :mod:`rig.workload.scenarios` - coding tasks as YAML files, loaded and validated
- :mod:`rig.workload.policy` - the mock model: the next response from the transcript

The load generator uses the corpus, tools, simulator and scenarios to play the
client; the mock provider uses the policy to play the model.
"""

from rig.workload.corpus import DEFAULT_CORPUS, Corpus, CorpusError, Defect, GrepHit
from rig.workload.policy import (
    MIXED,
    ModelPolicy,
    ModelTurn,
    Plan,
    PlannedTurn,
    ToolCall,
    UnknownScenarioError,
    count_model_turns,
    example_arguments,
)
from rig.workload.scenarios import (
    Phase,
    Scenario,
    ScenarioError,
    Step,
    Task,
    builtin_scenarios,
    load_scenario,
    make_task,
)
from rig.workload.simulator import MAX_OUTPUT_BYTES, ToolResult, ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOL_NAMES, TOOLS, chat_tools

__all__ = [
    "DEFAULT_CORPUS",
    "INSTRUCTIONS",
    "MAX_OUTPUT_BYTES",
    "MIXED",
    "TOOLS",
    "TOOL_NAMES",
    "Corpus",
    "CorpusError",
    "Defect",
    "GrepHit",
    "ModelPolicy",
    "ModelTurn",
    "Phase",
    "Plan",
    "PlannedTurn",
    "Scenario",
    "ScenarioError",
    "Step",
    "Task",
    "ToolCall",
    "ToolResult",
    "ToolSimulator",
    "UnknownScenarioError",
    "builtin_scenarios",
    "chat_tools",
    "count_model_turns",
    "example_arguments",
    "load_scenario",
    "make_task",
]
