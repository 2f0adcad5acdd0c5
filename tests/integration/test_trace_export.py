"""``rig trace export-scenarios``: each built-in scenario played once by the rig's agent
against a recording mock becomes a trace of one session per transport."""

from __future__ import annotations

from pathlib import Path

from rig.run.traces import export_scenarios
from rig.traces import read_trace
from rig.workload.scenarios import builtin_scenarios


def test_each_scenario_exports_as_a_session_per_transport(tmp_path: Path) -> None:
    written = export_scenarios(str(tmp_path), transports=("http", "ws"))
    assert sorted(p.stem for p in written) == sorted(builtin_scenarios())
    for path in written:
        trace = read_trace(path)
        assert trace.headers[0].source == "scenario"
        http, ws = trace.sessions
        assert (http.key, ws.key) == (f"{path.stem}-http", f"{path.stem}-ws")
        assert http.info.start_s is ws.info.start_s is None  # played apart: no arrivals
        assert len(http.turns) == len(ws.turns) >= 5  # the same plan over both
        assert [c.name for c in http.tool_calls] == [c.name for c in ws.tool_calls]
        assert {t.kind for t in ws.turns[1:]} == {"continuation"}
        assert all(t.carried_items > 0 for t in http.turns[1:])
        # The simulated tool time is the gap after each turn that called tools.
        assert sum(t.gap_s or 0 for t in http.turns) > 0.5
        assert http.turns[-1].gap_s is None and not http.turns[-1].tool_calls
