"""``rig compare --target gateway``: the transports through a gateway, a direct twin of each
straight to its upstream, and the gateway's side of the report reconciled with the
servers' own ``/stats``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import start_gateway, start_mock

QUICK = ["--users", "2", "--duration", "4", "--time-scale", "0.02", "--preset", "fast"]


def _compare(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig", "compare", "--out", str(tmp_path / "runs"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )


def _run_dir(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def _turns(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]


def _stats(base_url: str) -> dict[str, Any]:
    return httpx.get(base_url.removesuffix("/v1") + "/stats", timeout=30).json()


@pytest.fixture(scope="module")
def embedded(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp_path = tmp_path_factory.mktemp("compare-gateway")
    done = _compare(tmp_path, *QUICK, "--target", "gateway", "--transports", "http,ws")
    return done, _run_dir(tmp_path)


def test_embedded_gateway_runs_and_prints_the_gateway_lines(embedded) -> None:
    done, _ = embedded
    assert done.returncode == 0, done.stderr[-3000:]
    assert "embedded gateway at" in done.stdout
    for line in (
        "client edge bytes in / out",
        "upstream bytes out / in",
        "ingress saved at the client edge",
        "added TTFT p50 / p90, WebSocket",
        "reconciled: client bytes in",
    ):
        assert line in done.stdout, line
    assert "DIFFER" not in done.stdout


def test_embedded_gateway_summary_agrees_with_the_records(embedded) -> None:
    _, run_dir = embedded
    summary = json.loads((run_dir / "summary.json").read_text())
    turns = _turns(run_dir)
    through = [t for t in turns if t["target"] == "gateway"]
    direct = [t for t in turns if t["target"] == "direct"]
    assert through and direct and all(t["status"] == "ok" for t in turns)
    gateway = summary["gateway"]
    assert gateway["embedded"] is True
    # The gateway received exactly what the load generator sent through it (twins excluded).
    assert gateway["client_bytes_in"] == sum(t["body_bytes_sent"] for t in through)
    assert gateway["client_bytes_out"] == sum(t["body_bytes_recv"] for t in through)
    assert gateway["responses_completed"] == len(through) == gateway["upstream_requests"]
    assert gateway["reconciliation"]["client_bytes_in"]["difference"] == 0
    # What the gateway re-sent upstream is what the mock received, less the twins' bytes.
    upstream = gateway["reconciliation"]["upstream_bytes_out"]
    assert upstream["difference"] == 0 and upstream["gateway"] == gateway["upstream_bytes_out"]
    assert gateway["upstream_bytes_out"] > gateway["client_bytes_in"]
    assert gateway["ingress_saved_bytes"] == (
        gateway["upstream_bytes_out"] - gateway["client_bytes_in"]
    )
    # The twins are the direct cells, not in the target's figures.
    assert summary["transports"]["ws"]["turns"] == sum(t["transport"] == "ws" for t in through)
    assert summary["direct"]["transports"]["ws"]["turns"] == sum(
        t["transport"] == "ws" for t in direct
    )
    for name in ("http", "ws"):
        added = summary["direct"]["added_ttft"][name]
        assert added["paired_turns"] > 0
        assert added["added_ttft_ms_p50"] == pytest.approx(
            added["ttft_ms_p50"] - added["direct_ttft_ms_p50"], abs=0.011
        )
    assert summary["gateway"]["added_ttft"] == summary["direct"]["added_ttft"]


def test_the_direct_twin_plays_its_cells_sessions(embedded) -> None:
    """A twin runs the same sessions as its cell (same session ids, same scenarios), so
    added TTFT compares the same requests."""
    _, run_dir = embedded
    turns = _turns(run_dir)
    cells = {(t["session"], t["scenario"]) for t in turns if t["target"] == "gateway"}
    twins = {(t["session"], t["scenario"]) for t in turns if t["target"] == "direct"}
    assert twins and twins & cells
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["direct"]["transports"] == ["http", "ws"]
    assert meta["direct"]["url"].startswith("http://127.0.0.1:")


def test_a_deployed_gateway_is_reconciled_with_its_stats(tmp_path: Path) -> None:
    """``--target gateway --target-url GATEWAY --direct-url UPSTREAM``: the section's figures
    are the gateway's and the mock's own ``/stats``, read here after the run."""
    mock, upstream_url = start_mock("--preset", "instant")
    gateway, gateway_url = start_gateway(upstream_url)
    try:
        done = _compare(
            tmp_path, *QUICK, "--target", "gateway", "--transports", "ws",
            "--target-url", gateway_url, "--direct-url", upstream_url,
        )  # fmt: skip
        gateway_stats = _stats(gateway_url)
        mock_stats = _stats(upstream_url)
    finally:
        gateway.stop()
        mock.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = _run_dir(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    section = summary["gateway"]
    assert section["embedded"] is False and section["url"] == gateway_url
    for name in ("client_bytes_in", "client_bytes_out", "upstream_bytes_out", "hits_connection"):
        assert section[name] == gateway_stats[name], name
    # ws: the client sends only the new items, the gateway re-sends the whole context.
    assert 0 < section["client_bytes_in"] < section["upstream_bytes_out"]
    assert section["hits_connection"] > 0
    direct = [t for t in _turns(run_dir) if t["target"] == "direct"]
    assert direct
    assert mock_stats["bytes_in"] == (
        gateway_stats["upstream_bytes_out"] + sum(t["body_bytes_sent"] for t in direct)
    )
    assert mock_stats["responses_completed"] == gateway_stats["upstream_requests"] + len(direct)
    # Figures this gateway does not report are null, shown as n/a, never invented.
    for name, value in gateway_stats.items():
        if name in section and isinstance(value, int):
            assert section[name] == value, name
    missing = [n for n in ("checkpoint_writes", "resumes", "evictions") if n not in gateway_stats]
    for name in missing:
        assert section[name] is None
    if missing:
        assert "n/a" in done.stdout


def test_a_deployed_gateway_without_direct_url_has_no_twins(tmp_path: Path) -> None:
    mock, upstream_url = start_mock("--preset", "instant")
    gateway, gateway_url = start_gateway(upstream_url)
    try:
        done = _compare(
            tmp_path, *QUICK, "--target", "gateway", "--transports", "ws",
            "--target-url", gateway_url,
        )  # fmt: skip
    finally:
        gateway.stop()
        mock.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((_run_dir(tmp_path) / "summary.json").read_text())
    assert "direct" not in summary and summary["gateway"]["added_ttft"] is None
    assert {t["target"] for t in _turns(_run_dir(tmp_path))} == {"127.0.0.1"}
    assert "added TTFT" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--direct-url", "http://127.0.0.1:1/v1"], "--direct-url"),
        (["--transports", "ws", "--direct-transports", "http"], "--direct-transports"),
        (["--target", "proxy"], "proxy"),
    ],
)
def test_bad_gateway_usage_exits_2_naming_it(tmp_path: Path, args: list[str], message: str) -> None:
    done = _compare(tmp_path, *QUICK, "--target", "gateway", *args, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "runs").exists()
