"""Opening a connection to a target of one base URL or several, in the run's rotation.

Each new connection goes to the next endpoint of the run's
:class:`~rig.loadgen.target.EndpointRotation`; a connect that fails at the TCP or TLS
level (refused, unreachable, timed out, handshake refused) moves on to the next endpoint,
once around, before the caller's attempt fails. Everything the failed attempts wrote or
read is on the session's counter (a refused TLS handshake has bytes), and
:attr:`Dialled.failed_since` lets the caller charge their time to the turn that made them.
With one endpoint this is :func:`~rig.loadgen.wire.open_wire` and its exceptions, unchanged.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from rig.errors import RigError
from rig.loadgen.link import Link
from rig.loadgen.registry import TransportContext
from rig.loadgen.target import Endpoint, EndpointRotation, Target
from rig.loadgen.wire import TLSWireSocket, WireCounter, WireSocket, open_wire

__all__ = ["Dialled", "TargetUnreachableError", "dial", "rotation"]


class TargetUnreachableError(RigError, ConnectionError):
    """No endpoint of a target of several accepted the connection (each one's cause said)."""


@dataclass(frozen=True, slots=True)
class Dialled:
    """An open connection and the endpoint it went to."""

    endpoint: Endpoint
    wire: WireSocket | TLSWireSocket
    failed_since: float | None = None
    """``time.perf_counter()`` when the first failed attempt began; ``None`` when the
    first endpoint tried accepted."""


def rotation(target: Target, context: TransportContext | None) -> EndpointRotation:
    """The run's rotation over ``target``'s endpoints (a private one without a run)."""
    if context is None:
        return EndpointRotation(target.endpoints)
    created: EndpointRotation = context.shared(
        EndpointRotation.key(target), lambda: EndpointRotation(target.endpoints)
    )
    return created


def dial(
    rotation: EndpointRotation,
    counter: WireCounter,
    *,
    timeout: float,
    tls: ssl.SSLContext | None,
    link: Link | None = None,
) -> Dialled:
    """Connect to the next endpoint in turn, moving on after a failed connect.

    ``timeout`` bounds each TCP connect, ``tls`` is the target's context (``None``: plain
    TCP), ``link`` the session's emulated link (``None``: none). Raises what
    :func:`open_wire` raised when the target has one endpoint; with several that all
    failed, :class:`TimeoutError` if every one timed out, else
    :class:`TargetUnreachableError`, naming each endpoint and its cause.
    """
    order = rotation.order()
    failures: list[tuple[Endpoint, OSError]] = []
    failed_since: float | None = None
    for endpoint in order:
        began = time.perf_counter()
        try:
            wire = open_wire(
                endpoint.host, endpoint.port, counter, timeout=timeout, tls=tls, link=link
            )
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake refused
            if len(order) == 1:
                raise
            failures.append((endpoint, exc))
            if failed_since is None:
                failed_since = began
            continue
        return Dialled(endpoint, wire, failed_since)
    causes = "; ".join(
        f"{endpoint.base_url}: {exc or type(exc).__name__}" for endpoint, exc in failures
    )
    message = f"no target URL accepted the connection ({causes})"
    if all(isinstance(exc, TimeoutError) for _, exc in failures):
        raise TimeoutError(message)
    raise TargetUnreachableError(message)
