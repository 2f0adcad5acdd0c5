"""The knee of a step-load run, from synthetic records with known answers."""

from __future__ import annotations

import pytest

from rig.metrics.records import RateLimitRecord, RecordTags, TurnRecord
from rig.metrics.rundir import RunDirectory
from rig.report.capacity import capacity
from rig.report.errors import ReportError
from rig.report.gateway import GATEWAY_FILE
from rig.report.summary import build_summary

T0 = 1_000_000.0
SHAPE = "steps:users=10,every=20s,max=40"  # levels 10, 20, 30, 40 at 0, 20, 40, 60 s


def turn(transport: str, ts: float, ttft: float = 100.0, status: str = "ok") -> TurnRecord:
    return TurnRecord(
        tags=RecordTags(run="r", scenario="s", transport=transport, target="mock"),
        session="x", turn=1, ts=ts, bytes_sent=1000, bytes_recv=5000, body_bytes_sent=900,
        body_bytes_recv=4900, ttfb_ms=ttft / 2, ttft_ms=ttft, turn_ms=ttft * 3,
        input_tokens=1, cached_tokens=0, output_tokens=1, tool_calls=0, status=status,
    )  # fmt: skip


def hit(transport: str, ts: float, limit: str = "requests") -> RateLimitRecord:
    return RateLimitRecord(
        tags=RecordTags(run="r", scenario="s", transport=transport, target="mock"),
        ts=ts, limit=limit, retry_after_ms=500.0, remaining=0,
    )  # fmt: skip


def level_turns(transport: str, level: int, per_s: int, ttft: float = 100.0) -> list[TurnRecord]:
    """``per_s`` turns a second through the measured part (after 5 s) of ``level``'s window."""
    start = T0 + (level // 10 - 1) * 20
    return [turn(transport, start + 5 + i / per_s, ttft) for i in range(15 * per_s)]


def test_the_knee_is_the_last_level_before_429s_exceed_the_threshold() -> None:
    turns, hits = [], []
    for level in (10, 20, 30, 40):
        turns += level_turns("ws", level, per_s=level // 10)
    # 30 and 40 sessions: 16 rejected attempts (requests limit) besides their turns.
    for level in (30, 40):
        start = T0 + (level // 10 - 1) * 20
        hits += [hit("ws", start + 5 + i * 0.5) for i in range(16)]
    meta = {"shape": SHAPE, "started_at": T0}
    result = capacity(meta, turns, hits, max_rate_limited=0.05, ttft_slo_ms=1000)["ws"]
    assert result["max_sessions"] == 20
    assert result["bound_by"] == "rate_limited_fraction (requests limit)"
    assert result["at_knee"]["turns_per_s"] == 2.0
    assert result["at_knee"]["bytes_sent_per_s"] == 2000.0
    assert [lv["sessions"] for lv in result["levels"]] == [10, 20, 30, 40]
    assert result["levels"][2]["rate_limited_fraction"] == pytest.approx(16 / (45 + 16), abs=1e-4)
    assert result["levels"][2]["limits"] == {"requests": 16}


def test_a_latency_slo_bounds_the_knee_too() -> None:
    turns = level_turns("http", 10, 1, ttft=200) + level_turns("http", 20, 2, ttft=900)
    turns += level_turns("http", 30, 3, ttft=1500) + level_turns("http", 40, 4, ttft=3000)
    result = capacity(
        {"shape": SHAPE, "started_at": T0}, turns, [], max_rate_limited=0.01, ttft_slo_ms=1000
    )["http"]
    assert (result["max_sessions"], result["bound_by"]) == (20, "ttft_ms_p95")
    assert result["levels"][0]["rate_limited_fraction"] == 0


def test_turns_in_the_settling_time_are_left_out() -> None:
    # Slow first turns in the first 5 s of a level do not count against the SLO.
    turns = [turn("ws", T0 + 1, ttft=9999), *level_turns("ws", 10, 1)]
    result = capacity(
        {"shape": "steps:users=10,every=20s,max=10", "started_at": T0},
        turns, [], max_rate_limited=0.01, ttft_slo_ms=1000,
    )  # fmt: skip
    assert result["ws"]["max_sessions"] == 10 and result["ws"]["bound_by"] is None


def test_each_phase_uses_its_own_start_time() -> None:
    later = T0 + 500
    turns = level_turns("http", 10, 1) + [turn("ws", later + 5 + i, ttft=100) for i in range(15)]
    meta = {
        "phases": {
            "http": {"shape": "steps:users=10,every=20s,max=10", "started_at": T0},
            "ws": {"shape": "steps:users=10,every=20s,max=10", "started_at": later},
        }
    }
    result = capacity(meta, turns, [], max_rate_limited=0.01, ttft_slo_ms=1000)
    assert result["http"]["levels"][0]["turns"] == 15
    assert result["ws"]["levels"][0]["turns"] == 15


def test_a_run_without_a_steps_shape_is_refused_clearly() -> None:
    with pytest.raises(ReportError, match="steps"):
        capacity({"shape": "soak:users=5,duration=1m", "started_at": T0}, [turn("ws", T0)], [],
                 max_rate_limited=0.01, ttft_slo_ms=1000)  # fmt: skip
    with pytest.raises(ReportError, match="no load shape"):
        capacity({}, [turn("ws", T0)], [], max_rate_limited=0.01, ttft_slo_ms=1000)


def test_a_phase_that_read_a_gateway_carries_its_figures_and_only_its_own(tmp_path) -> None:
    """``rig capacity --target gateway``: a phase's ``gateway.json`` (under ``phases/``)
    becomes its transport's ``capacity.<t>.gateway``; a phase id that would leave the run
    directory is not followed."""
    later = T0 + 500
    turns = level_turns("http", 10, 1) + [turn("ws", later + 5 + i) for i in range(15)]
    phase = {"shape": "steps:users=10,every=20s,max=10"}
    meta = {
        "phases": {
            "http": {**phase, "started_at": T0, "phase_run_id": "../../outside"},
            "ws": {**phase, "started_at": later, "phase_run_id": "run-ws"},
        }
    }
    run = RunDirectory.create(tmp_path / "runs", "run", meta)
    run.append(turns)
    run.close()
    sent = sum(t.body_bytes_sent for t in turns if t.tags.transport == "ws")
    observed = {
        "url": "http://127.0.0.1:1/v1",
        "embedded": True,
        "stats_start": {"client_bytes_in": 100, "upstream_bytes_out": 1000},
        "stats_end": {"client_bytes_in": 100 + sent, "upstream_bytes_out": 1000 + 4 * sent},
    }
    (run.path / "phases" / "run-ws").mkdir(parents=True)
    RunDirectory(run.path / "phases" / "run-ws").write_json(GATEWAY_FILE, observed)
    (tmp_path / "runs" / "outside").mkdir()
    RunDirectory(tmp_path / "runs" / "outside").write_json(GATEWAY_FILE, observed)
    summary = build_summary(RunDirectory(run.path))
    gateway = summary["capacity"]["ws"]["gateway"]
    assert gateway["client_bytes_in"] == sent and gateway["upstream_bytes_out"] == 4 * sent
    assert gateway["ingress_saved"] == 0.75
    assert gateway["reconciliation"]["client_bytes_in"]["difference"] == 0
    assert "gateway" not in summary["capacity"]["http"] and "gateway" not in summary
