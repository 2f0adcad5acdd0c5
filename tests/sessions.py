"""Agent sessions of the load generator for tests that drive them without Locust."""

from __future__ import annotations

from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags
from rig.workload.scenarios import Scenario


def make_sessions(
    url: str,
    transports: list[str],
    context: TransportContext,
    scenario: Scenario,
    target_name: str = "mock",
) -> tuple[list[AgentSession], list[list]]:
    """One session per entry of ``transports``, all of one run (``context``) against the
    target ``url`` (one base URL or several, comma-separated), tools at no wait; each with
    its own list of records."""
    target = Target.from_url(url)
    records: list[list] = []
    sessions: list[AgentSession] = []
    for index, transport in enumerate(transports):
        config = SessionConfig(
            transport=transport,
            scenario=scenario,
            target=target,
            tags=RecordTags("test", scenario.name, transport, target_name),
            time_scale=0.0,
            context=context,
        )
        records.append([])
        sessions.append(AgentSession(config, records[-1].append, session_index=index))
    return sessions, records
