"""The link emulation against independent truth: the kernel's token bucket filter.

A private network namespace gets its own loopback, shaped by ``tc ... tbf`` (which works
in a namespace here; ``netem`` does not). The mock and one agent session run inside it;
then the same session runs on the host's plain loopback with the rate emulated in user
space (``--link`` with a profile file). The task's turn time, dominated by moving its
bytes at the rate, must agree within 10%, plus the time the same task takes unshaped on
the host in the same test (the processes' own work: on a busy machine it stretches the
kernel-shaped run more than the emulated one).

Needs root (CAP_NET_ADMIN), ``ip`` and ``tc``: in CI their absence fails the test,
elsewhere it skips.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.servers import ManagedProcess, free_port, missing_tool, start_mock

RATE_KBIT = 1500
"""The tbf rate: the task's ~1.2 MB then take ~7 s, a turn ~0.6 s."""
MTU = 1500
MSS = 1448  # the MTU less IP (20), TCP (20) and timestamp (12) headers
WIRE_PER_SEGMENT = MSS + 66 + 66 // 2
"""What tbf counts for one full segment on the loopback: the payload, 66 bytes of
Ethernet, IP and TCP headers, and half an ACK (one per two segments, the other way on the
same loopback)."""
GOODPUT_KBIT = RATE_KBIT * MSS / WIRE_PER_SEGMENT
"""The payload rate the tbf rate leaves: what a link profile's rate means."""


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace with its loopback up, at a 1500-byte MTU, under tbf."""
    if not sys.platform.startswith("linux"):
        missing_tool("network namespaces are Linux's")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            missing_tool(f"{tool} is not installed (apt-get install iproute2)")
    if os.geteuid() != 0:
        missing_tool("creating a network namespace needs root (CAP_NET_ADMIN)")
    name = f"rig-test-{secrets.token_hex(4)}"
    made = _run(["ip", "netns", "add", name])
    if made.returncode != 0:
        missing_tool(f"ip netns add failed: {made.stderr.strip()}")
    try:
        for argv in (
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "mtu", str(MTU), "up"],
            ["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "tbf",
             "rate", f"{RATE_KBIT}kbit", "burst", "32kbit", "latency", "400ms"],
        ):  # fmt: skip
            done = _run(argv)
            if done.returncode != 0:
                missing_tool(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        yield name
    finally:
        _run(["ip", "netns", "del", name])


def _probe(url: str, link: str, prefix: list[str]) -> list[dict]:
    """One task's turns, run by tests.link_probe in a child process."""
    argv = [*prefix, sys.executable, "-m", "tests.link_probe", url, "http", link]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _transfer_time(turns: list[dict]) -> tuple[float, int]:
    """Seconds of turns and the bytes they moved."""
    seconds = sum(turn["turn_ms"] for turn in turns) / 1000
    moved = sum(turn["bytes_sent"] + turn["bytes_recv"] for turn in turns)
    return seconds, moved


def test_a_rate_emulated_in_user_space_matches_the_kernel_s_token_bucket(
    namespace: str, tmp_path: Path
) -> None:
    inside = ["ip", "netns", "exec", namespace]
    port = free_port()  # any port: the namespace has its own
    mock = ManagedProcess(
        [*inside, sys.executable, "-m", "rig", "mock", "--port", str(port), "--log-level",
         "info", "--preset", "instant"],
        "rig mock listening on",
    )  # fmt: skip
    try:
        mock.wait_ready()
        kernel = _probe(f"http://127.0.0.1:{port}/v1", "direct", inside)
    finally:
        mock.stop()

    profile = tmp_path / "tbf.yaml"
    profile.write_text(
        f"name: tbf\ndownlink_mbps: {GOODPUT_KBIT / 1000}\nuplink_mbps: {GOODPUT_KBIT / 1000}\n"
        "rtt_ms: 0\n"
    )
    process, url = start_mock("--preset", "instant")
    try:
        emulated = _probe(url, str(profile), [])
        unshaped = _probe(url, "direct", [])
    finally:
        process.stop()
    kernel_s, kernel_bytes = _transfer_time(kernel)
    emulated_s, emulated_bytes = _transfer_time(emulated)
    assert emulated_bytes == kernel_bytes  # the same conversation, byte for byte
    at_rate = kernel_bytes * 8 / (GOODPUT_KBIT * 1000)
    assert kernel_s > 0.9 * at_rate  # the namespace really was shaped
    # Within 10%, plus what the same task takes on this machine right now with no link
    # at all: the processes' own work, which a busy machine stretches, and which delays
    # the kernel's link (it idles while the mock is off the CPU) more than the emulation.
    slack_s, _ = _transfer_time(unshaped)
    assert abs(emulated_s - kernel_s) <= 0.10 * kernel_s + slack_s, (
        kernel_s,
        emulated_s,
        at_rate,
        slack_s,
    )
    largest = max(range(len(kernel)), key=lambda i: kernel[i]["bytes_recv"])
    kernel_ms, emulated_ms = kernel[largest]["turn_ms"], emulated[largest]["turn_ms"]
    assert abs(emulated_ms - kernel_ms) <= 0.15 * kernel_ms + unshaped[largest]["turn_ms"]
