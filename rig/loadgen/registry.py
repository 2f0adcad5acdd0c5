"""The transports, registered once: name, label, colour, flags, how to build one.

Everything that lists transports reads this registry: the CLI's choices, the Locust user
classes (one per entry), the report's palette and order, the dashboards' variables. A new
transport is its own module plus one :class:`TransportSpec` in :data:`REGISTRY`.

This module is data only: it imports neither gevent nor a transport module, so the report
and the dashboards can read it without loading the load generator. A spec names its
class as ``"module:Class"``; :meth:`TransportSpec.factory` imports it on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rig.errors import RigError

__all__ = [
    "BASELINE",
    "REGISTRY",
    "TransportContext",
    "TransportOption",
    "TransportSpec",
    "UnknownTransportError",
    "names",
    "parse_flag",
    "parse_transports",
    "spec",
]

BASELINE = "http"
"""The transport every ratio is relative to: stateless HTTP, full context every turn."""


class UnknownTransportError(RigError, ValueError):
    """A transport name that is not registered."""


def parse_flag(value: str) -> bool:
    """``yes``/``no`` (also true/false, on/off, 1/0) as a bool, for an option's value."""
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"{value!r}: write yes or no")


@dataclass(frozen=True)
class TransportOption:
    """A setting of one transport (``ws_mux``'s sessions per connection): the option
    ``--<transport>-<name>`` (dashes for underscores) on every run command is derived
    from it, and its value reaches the transport as the keyword ``name``."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str

    def flag(self, transport: str) -> str:
        """The command-line flag, e.g. ``--ws-mux-sessions-per-connection``."""
        return f"--{transport}-{self.name}".replace("_", "-")

    def dest(self, transport: str) -> str:
        """The attribute name argparse gives the flag."""
        return f"{transport}_{self.name}"


class TransportContext:
    """What one run shares among its sessions' transports: option values and objects
    a transport keeps per run (``ws_mux``'s pool of shared connections).

    Created once per run by whoever runs the sessions (the Locust integration, a test,
    a script) and handed to every :func:`make_transport` call; nothing is module-level,
    so two runs in one process never share state.
    """

    def __init__(self, options: dict[str, dict[str, Any]] | None = None):
        self._options = options or {}
        self._shared: dict[str, Any] = {}

    def options(self, transport: str) -> dict[str, Any]:
        """The option values of ``transport``: set ones over the spec's defaults."""
        given = self._options.get(transport, {})
        return {o.name: given.get(o.name, o.default) for o in spec(transport).options}

    def shared(self, key: str, create: Callable[[], Any]) -> Any:
        """The run's object under ``key``, created by ``create()`` on first use."""
        if key not in self._shared:
            self._shared[key] = create()
        return self._shared[key]

    def close(self) -> None:
        """Close every shared object that has a ``close()`` (at the end of the run)."""
        shared, self._shared = self._shared, {}
        for value in shared.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()


@dataclass(frozen=True)
class TransportSpec:
    """One transport: what it is called, how it looks, what it sends, how to build it."""

    name: str
    """The identifier in options, records and summary.json (``ws_stored``)."""
    label: str
    """The display name in tables and plots (``WebSocket stored``)."""
    color: str
    """Its colour in every plot (Okabe-Ito, readable with colour-vision deficiencies)."""
    summary: str
    """What each turn sends, in one phrase (for ``--help`` and the docs)."""
    user_class: str
    """The name of its Locust user class (``WsStoredAgent``)."""
    cls: str
    """``"module:Class"`` of the :class:`~rig.loadgen.transports.Transport` subclass."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments the class takes besides the common ones."""
    store: bool = False
    """Sends ``store=true``: the target keeps every response."""
    chained: bool = False
    """Sends ``previous_response_id`` and only the new items."""
    dash: str = ""
    """SVG ``stroke-dasharray`` of its line (empty: solid)."""
    options: tuple[TransportOption, ...] = ()
    """Its own settings (each becomes a ``--<name>-<option>`` flag on the run commands)."""
    shaped: bool = True
    """Its connections belong to one session, so ``--link`` can shape them (``ws_mux``'s
    are shared: its sessions run unshaped, tagged ``direct``)."""

    def factory(self) -> Callable[..., Any]:
        """A callable ``(target, counter, **common) -> Transport`` for this entry."""
        module_name, _, attr = self.cls.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        extra = dict(self.kwargs)

        def build(*args: Any, **common: Any) -> Any:
            return cls(*args, **extra, **common)

        return build


DEFLATE_OPTION = TransportOption(
    name="deflate",
    type=parse_flag,
    default=False,
    help="offer permessage-deflate on each WebSocket, as Codex CLI does: a target that "
    "accepts it compresses every message, and the wire bytes counted are the compressed "
    "ones (yes/no, default: no)",
)
"""The WebSocket transports' ``--ws-deflate`` and ``--ws-stored-deflate``."""

_TRANSPORTS = "rig.loadgen.transports"  # the package; each class in its module

REGISTRY: dict[str, TransportSpec] = {
    spec.name: spec
    for spec in (
        TransportSpec(
            name="http",
            label="HTTP",
            color="#D55E00",
            summary="Responses API over HTTP, the full input every turn, store=false",
            user_class="HttpAgent",
            cls=f"{_TRANSPORTS}.http:HTTPTransport",
            kwargs={"chained": False},
        ),
        TransportSpec(
            name="http_chained",
            label="HTTP chained",
            color="#E69F00",
            summary="HTTP, previous_response_id and the new items, store=true",
            user_class="HttpChainedAgent",
            cls=f"{_TRANSPORTS}.http:HTTPTransport",
            kwargs={"chained": True},
            store=True,
            chained=True,
            dash="6 3",
        ),
        TransportSpec(
            name="ws",
            label="WebSocket",
            color="#0072B2",
            summary="WebSocket mode, previous_response_id and the new items, store=false",
            user_class="WsAgent",
            cls=f"{_TRANSPORTS}.ws:WSTransport",
            kwargs={"store": False},
            chained=True,
            options=(
                DEFLATE_OPTION,
                TransportOption(
                    name="resume",
                    type=parse_flag,
                    default=False,
                    help="on a new connection, continue with previous_response_id although "
                    "store=false (a gateway that checkpoints resumes it; a target that cannot "
                    "answers previous_response_not_found and the turn is resent in full) "
                    "(yes/no, default: no)",
                ),
            ),
        ),
        TransportSpec(
            name="ws_stored",
            label="WebSocket stored",
            color="#009E73",
            summary="WebSocket mode, previous_response_id and the new items, store=true",
            user_class="WsStoredAgent",
            cls=f"{_TRANSPORTS}.ws:WSTransport",
            kwargs={"store": True},
            store=True,
            chained=True,
            dash="6 3",
            options=(DEFLATE_OPTION,),
        ),
        TransportSpec(
            name="chat",
            label="Chat Completions",
            color="#CC79A7",
            summary="Chat Completions, the full messages every turn",
            user_class="ChatAgent",
            cls=f"{_TRANSPORTS}.chat:ChatTransport",
            dash="2 3",
        ),
        TransportSpec(
            name="ws_mux",
            label="WebSocket multiplexed",
            color="#56B4E9",
            summary=(
                "WebSocket mode, previous_response_id and the new items, store=false; "
                "sessions share connections by stream_id"
            ),
            user_class="WsMuxAgent",
            cls=f"{_TRANSPORTS}.ws_mux:MuxTransport",
            chained=True,
            dash="1 2",
            shaped=False,
            options=(
                TransportOption(
                    name="sessions_per_connection",
                    type=int,
                    default=8,
                    help="agent sessions of one worker sharing each WebSocket connection",
                ),
            ),
        ),
    )
}


def names() -> tuple[str, ...]:
    """Every registered transport, in report order (the baseline first)."""
    return tuple(REGISTRY)


def spec(name: str) -> TransportSpec:
    """The entry for ``name``, or :class:`UnknownTransportError` naming the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownTransportError(
            f"unknown transport {name!r}; choose from {', '.join(REGISTRY)}"
        ) from None


def parse_transports(value: str | Iterable[str]) -> list[str]:
    """``--transports`` (``"http,ws"``) as a list of registered names, with a clear error
    for unknown or missing names."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    chosen = [name.strip() for name in parts if name.strip()]
    unknown = [name for name in chosen if name not in REGISTRY]
    if unknown or not chosen:
        raise UnknownTransportError(
            f"--transports {value!r}: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(REGISTRY)}"
        )
    return chosen
