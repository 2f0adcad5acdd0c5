"""Load-generator worker processes on this machine (``--processes N``): Locust's own
distributed mode, with the master in the run command's process.

Each worker is ``rig locust --worker`` (the packaged locustfile) connected to the master
over loopback: the same users, options and record shipping as a worker of a distributed
run on Kubernetes, so one run directory and one report come out of it. The workers are
started as new processes rather than forked from the run command, which by then holds the
embedded servers' pipes and its own greenlets; a worker's start costs about a second of
imports, once per run.

``auto`` is one worker per core this process may use (its CPU affinity), less one for each
embedded server started beside it (the mock, and the gateway with ``--target gateway``),
and at least one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rig.errors import RigError
from rig.options import AUTO, RunOptions, to_argv
from rig.run.mock_process import stop_process

__all__ = ["LocalWorkers", "WorkersError", "resolve_processes"]

READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0


class WorkersError(RigError, RuntimeError):
    """The workers did not connect; the message carries the end of their logs."""


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_processes(value: str, *, embedded_servers: int, cores: int | None = None) -> int:
    """``--processes`` as a count: ``N`` as given; ``auto``: ``cores`` (this process's
    usable cores) less ``embedded_servers``, at least 1."""
    if value != AUTO:
        return int(value)
    return max(1, (usable_cores() if cores is None else cores) - embedded_servers)


class LocalWorkers:
    """Context manager: ``count`` worker processes for the master on ``master_port``, their
    output in ``log_dir`` (``worker-K.log``), stopped (terminated if they linger) on exit."""

    def __init__(self, count: int, master_port: int, options: RunOptions, log_dir: Path):
        self.count = count
        self.argv = [
            sys.executable, "-m", "rig", "locust", "--worker",
            "--master-host", "127.0.0.1", "--master-port", str(master_port),
            *to_argv(options, "locust"),
        ]  # fmt: skip
        self.log_dir = log_dir
        self.logs = [log_dir / f"worker-{k}.log" for k in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for path in self.logs:
            with open(path, "wb") as log:  # the child keeps its own descriptor
                self.processes.append(
                    subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
                )
        return self

    def wait_ready(self, runner: Any, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until the master ``runner`` has every worker ready; :class:`WorkersError`
        if one exits or the time runs out."""
        import gevent

        deadline = time.monotonic() + timeout_s
        while len(runner.clients.ready) < self.count:
            exited = [p for p in self.processes if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                cause = f"exited with {exited[0].returncode}" if exited else "did not connect"
                raise WorkersError(
                    f"{len(runner.clients.ready)} of {self.count} load-generator workers "
                    f"ready; a worker {cause}:\n{self.tail()}"
                )
            gevent.sleep(0.1)

    def tail(self, chars: int = 2000) -> str:
        """The end of the first non-empty worker log."""
        for path in self.logs:
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            if text.strip():
                return text[-chars:]
        return "(no output)"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Workers leave when the master tells them to quit; any still running after
        :data:`EXIT_TIMEOUT_S` (or at once, after an error) are terminated."""
        deadline = time.monotonic() + (EXIT_TIMEOUT_S if exc_type is None else 0.0)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            stop_process(process, timeout_s=10)
