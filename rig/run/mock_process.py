"""The mock provider as a child process: the embedded default of the run commands.

A separate process (not a thread) so the mock neither shares the load generator's CPU
core nor its gevent hub; ready when it prints its "listening" line, which it does only
after its socket accepts connections.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from rig.errors import RigError
from rig.run.ports import free_port

__all__ = ["MockProcess", "MockProcessError", "stop_process"]

READY_MARKER = "rig mock listening on"


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 15.0) -> None:
    """Terminate ``process`` if it runs; kill it if it is still there after ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class MockProcessError(RigError, RuntimeError):
    """The mock did not start; the message carries its output."""


class MockProcess:
    """Context manager: ``rig mock`` on a free loopback port, stopped on exit."""

    command = "mock"
    """The ``rig`` subcommand it runs."""
    ready_marker = READY_MARKER
    """The line the server prints once it accepts connections."""

    def __init__(self, args: Sequence[str] = (), *, start_timeout_s: float = 60.0):
        self.port = free_port()
        self.args = list(args)
        self.start_timeout_s = start_timeout_s
        self.output: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        """The child's process id (once started)."""
        assert self._process is not None
        return self._process.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _drain(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self.output.append(line)
            if self.ready_marker in line:
                self._ready.set()
        self._ready.set()  # exited: wake the waiter

    def __enter__(self) -> MockProcess:
        argv = [sys.executable, "-m", "rig", self.command, "--port", str(self.port), *self.args]
        self._process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(self.start_timeout_s) or self._process.poll() is not None:
            self.__exit__(None, None, None)
            raise MockProcessError(
                f"the embedded {self.command} did not start:\n" + "".join(self.output[-20:])
            )
        return self

    def stats(self) -> dict[str, int]:
        """The mock's ``/stats`` counters."""
        return httpx.get(self.base_url.removesuffix("/v1") + "/stats", timeout=10).json()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            stop_process(self._process)
