"""``rig capacity`` with a small quota: the effect the published analysis predicts, measured.

The embedded mock runs the ``contrast`` test preset (tests/data/contrast.yaml), in which
resending the context is expensive, so a WebSocket continuation is several times faster
than a full-context HTTP turn, and tools run instantly: each session asks for turns as
fast as the model answers. Sessions are added two at a time every 3 s, up to 12, for each
transport in turn against the same quota.

* Requests per minute (1,500, i.e. 25 a second): faster WebSocket sessions make more
  requests each, so they meet 429s at fewer concurrent sessions than HTTP sessions; above
  its knee each transport is held near the quota's 25 turns a second.
* Tokens per minute (6M): each turn is charged its whole context either way (a
  continuation pays for its cached context), so the tokens limit binds both, in the order
  of their token rates, and the report says which limit bound each transport.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PRESET = str(Path(__file__).resolve().parents[1] / "data" / "contrast.yaml")
COMMON = [
    "--transports", "http,ws", "--step-users", "2", "--step-time", "3s", "--max-users", "12",
    "--preset", PRESET, "--time-scale", "0", "--burst", "0.02",
    "--max-rate-limited", "0.02", "--ttft-slo-ms", "60000", "--stop-timeout", "10",
]  # fmt: skip


def _capacity(tmp_path: Path, *quota: str) -> tuple[subprocess.CompletedProcess[str], dict, Path]:
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "capacity", *COMMON, *quota,
            "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "summary.json"),
            "--check", "capacity.ws.max_sessions>=1",
        ],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done, json.loads((tmp_path / "summary.json").read_text()), tmp_path / "runs"


@pytest.fixture(scope="module")
def under_rpm(tmp_path_factory: pytest.TempPathFactory):
    return _capacity(tmp_path_factory.mktemp("rpm"), "--rpm", "1500")


@pytest.fixture(scope="module")
def under_tpm(tmp_path_factory: pytest.TempPathFactory):
    return _capacity(tmp_path_factory.mktemp("tpm"), "--tpm", "6000000")


def test_under_a_requests_limit_websocket_sessions_meet_429s_sooner(under_rpm) -> None:
    done, summary, _ = under_rpm
    capacity = summary["capacity"]
    ws, http = capacity["ws"], capacity["http"]
    assert 1 <= ws["max_sessions"] < http["max_sessions"]
    assert ws["bound_by"] == "rate_limited_fraction (requests limit)"
    # The mechanism: at the same session count a WebSocket session makes more requests.
    first_ws, first_http = ws["levels"][0], http["levels"][0]
    assert first_ws["turns_per_s"] > 1.5 * first_http["turns_per_s"]
    # Past its knee a transport is held near the quota (25 requests a second).
    for level in ws["levels"][2:]:
        assert level["rate_limited_fraction"] > 0.02
        assert level["limits"].keys() == {"requests"}
        assert level["turns_per_s"] <= 25 * 1.3
    assert "ws: knee at" in done.stdout and "the next level broke" in done.stdout


def test_under_a_tokens_limit_the_tokens_limit_binds_each_transport(under_tpm) -> None:
    _, summary, _ = under_tpm
    capacity = summary["capacity"]
    for name in ("http", "ws"):
        assert capacity[name]["bound_by"] == "rate_limited_fraction (tokens limit)", name
        broken = capacity[name]["levels"][
            [lv["sessions"] for lv in capacity[name]["levels"]].index(
                capacity[name]["max_sessions"]
            )
            + 1
        ]
        assert set(broken["limits"]) == {"tokens"}
    assert capacity["ws"]["max_sessions"] < capacity["http"]["max_sessions"]
    assert summary["rate_limits"]["quota"]["tpm"] == 6_000_000


def test_the_capacity_report_plots_every_level(under_rpm) -> None:
    _, _, runs = under_rpm
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    page = (run_dir / "report.html").read_text()
    for plot in ("plot-capacity-throughput", "plot-capacity-rejected", "plot-capacity-ttft"):
        assert f'id="{plot}"' in page
    assert "Capacity: concurrent sessions per transport" in page
    meta = json.loads((run_dir / "meta.json").read_text())
    assert set(meta["phases"]) == {"http", "ws"}
    assert (run_dir / "phases").is_dir()


def test_a_quota_with_a_target_url_is_refused_not_ignored(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "capacity", "--target-url", "http://127.0.0.1:9/v1",
            "--rpm", "5", "--out", str(tmp_path / "runs"),
        ],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "embedded mock" in done.stderr and "--target-url" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_through_a_gateway_each_phase_reports_what_the_gateway_did(tmp_path: Path) -> None:
    """``--target gateway``: each transport meets a gateway of its own (in front of a fresh
    mock); its ``/stats`` over the phase land in the transport's capacity section."""
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "capacity", "--target", "gateway",
            "--transports", "http,ws", "--step-users", "2", "--step-time", "3s",
            "--max-users", "4", "--preset", PRESET, "--time-scale", "0",
            "--ttft-slo-ms", "60000", "--stop-timeout", "10",
            "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "summary.json"),
            "--check", "capacity.ws.gateway.ingress_saved>=0.5",
        ],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["target"] == "gateway" and "gateway" not in summary
    http, ws = (summary["capacity"][name]["gateway"] for name in ("http", "ws"))
    assert http["url"] != ws["url"]  # a gateway of its own for each phase
    for section in (http, ws):
        edge = section["reconciliation"]["client_bytes_in"]
        assert edge["difference"] == 0 and edge["gateway"] > 0, edge
        assert section["misses_not_found"] == 0 and section["responses_failed"] == 0
    # Stateless HTTP is passed through: the upstream gets what the client sent. WebSocket
    # mode sends only new items; the gateway re-sends the whole context upstream.
    assert http["upstream_bytes_out"] == http["client_bytes_in"]
    assert http["ingress_saved"] == 0 and http["hits_connection"] == 0
    assert ws["ingress_saved"] >= 0.5 and ws["hits_connection"] > 0
    assert ws["memory"]["sessions"] > 0 and ws["memory"]["session_bytes"] > 0
    assert "check ok   capacity.ws.gateway.ingress_saved>=0.5" in done.stdout
    assert done.stdout.count("ingress saved at the client edge") == 2
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    page = (run_dir / "report.html").read_text()
    assert "The gateway during the WebSocket phase" in page
    assert "The gateway during the HTTP phase" in page
