"""How each transport is named, ordered and coloured in every table and plot."""

from __future__ import annotations

from collections.abc import Iterable

from rig.metrics.records import TRANSPORTS

__all__ = ["BASELINE", "color", "dash", "label", "ordered"]

BASELINE = "http"
"""The transport every ratio is relative to: stateless HTTP, full context every turn."""

_LABELS = {
    "http": "HTTP",
    "http_chained": "HTTP chained",
    "ws": "WebSocket",
    "ws_stored": "WebSocket stored",
    "chat": "Chat Completions",
}

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
_COLORS = {
    "http": "#D55E00",
    "http_chained": "#E69F00",
    "ws": "#0072B2",
    "ws_stored": "#009E73",
    "chat": "#CC79A7",
}
_SPARE_COLORS = ("#56B4E9", "#000000", "#999999", "#F0E442")

# Stored/chained variants are dashed so the families read apart in grey print too.
_DASHES = {"http_chained": "6 3", "ws_stored": "6 3", "chat": "2 3"}


def ordered(names: Iterable[str]) -> list[str]:
    """Transport names in report order: ``http`` first, then the known cells in their
    documented order, then any other name alphabetically."""
    known = [name for name in TRANSPORTS if name in set(names)]
    others = sorted(set(names) - set(TRANSPORTS))
    return known + others


def label(name: str) -> str:
    """A transport's display name (``ws`` -> ``WebSocket``); unknown names as they are."""
    return _LABELS.get(name, name)


def color(name: str) -> str:
    """A transport's colour, the same in every plot; unknown names get a stable spare."""
    if name in _COLORS:
        return _COLORS[name]
    return _SPARE_COLORS[sum(name.encode()) % len(_SPARE_COLORS)]


def dash(name: str) -> str:
    """An SVG ``stroke-dasharray`` for a transport's line (empty: solid)."""
    return _DASHES.get(name, "")
