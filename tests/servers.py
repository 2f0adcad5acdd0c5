"""Real server processes for tests: started on free loopback ports, stopped afterwards.

Readiness is the server's own word (a line it prints when it accepts connections), read by
a thread that keeps draining the output; no test sleeps to wait for a server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest

__all__ = ["ManagedProcess", "free_port", "require_binary", "start_mock"]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str) -> str:
    """The path of ``name``; in CI a missing server binary fails the test, locally it skips."""
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class ManagedProcess:
    """A child process whose output is drained by a thread that watches for a marker."""

    def __init__(
        self,
        argv: Sequence[str],
        ready_marker: str,
        env: dict[str, str] | None = None,
        ready_count: int = 1,
    ):
        self.argv = list(argv)
        self.ready_marker = ready_marker
        self.ready_count = ready_count
        self.output: list[str] = []
        self._ready = threading.Event()
        self._exited = threading.Event()
        self.process = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        seen = 0
        for line in self.process.stdout:
            self.output.append(line)
            if self.ready_marker in line:
                seen += 1
                if seen >= self.ready_count:
                    self._ready.set()
        self._exited.set()
        self._ready.set()  # wake a waiter: the process ended

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the marker appeared ``ready_count`` times; fail with the output if the process dies first."""
        if not self._ready.wait(timeout) or self._exited.is_set():
            self.stop()
            raise RuntimeError(
                f"{self.argv[0]} did not become ready:\n{''.join(self.output)[-3000:]}"
            )

    def stop(self) -> int:
        """Terminate the process group and return the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode


def start_mock(*args: str, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start ``rig mock`` with ``args`` on a free port; return it and its ``/v1`` base URL."""
    port = port or free_port()
    argv = [sys.executable, "-m", "rig", "mock", "--port", str(port), "--log-level", "info", *args]
    process = ManagedProcess(argv, "rig mock listening on")
    process.wait_ready()
    return process, f"http://127.0.0.1:{port}/v1"
