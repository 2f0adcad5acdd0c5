"""``rig gateway`` as a child process: the embedded gateway of ``rig compare --target
gateway``, in front of the embedded mock.

Started and stopped like the mock (:class:`~rig.run.mock_process.MockProcess`): its own
process on a free loopback port, ready when it prints its "listening" line.
"""

from __future__ import annotations

from collections.abc import Sequence

from rig.run.mock_process import MockProcess

__all__ = ["GatewayProcess"]


class GatewayProcess(MockProcess):
    """Context manager: ``rig gateway --upstream UPSTREAM`` on a free loopback port,
    stopped on exit; a failed start raises :class:`~rig.run.mock_process.MockProcessError`
    with its output."""

    command = "gateway"
    ready_marker = "rig gateway listening on"

    def __init__(self, upstream: str, args: Sequence[str] = (), *, start_timeout_s: float = 60.0):
        super().__init__(["--upstream", upstream, *args], start_timeout_s=start_timeout_s)
        self.upstream = upstream
