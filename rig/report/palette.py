"""How each transport is named, ordered and coloured in every table and plot: read from
the transport registry (:mod:`rig.loadgen.registry`)."""

from __future__ import annotations

from collections.abc import Iterable

from rig.loadgen.registry import BASELINE, REGISTRY

__all__ = ["BASELINE", "color", "dash", "label", "ordered"]

_SPARE_COLORS = ("#56B4E9", "#000000", "#999999", "#F0E442")


def ordered(names: Iterable[str]) -> list[str]:
    """Transport names in report order: ``http`` first, then the registered cells in their
    documented order, then any other name alphabetically."""
    chosen = set(names)
    known = [name for name in REGISTRY if name in chosen]
    return known + sorted(chosen - set(REGISTRY))


def label(name: str) -> str:
    """A transport's display name (``ws`` -> ``WebSocket``); unknown names as they are."""
    spec = REGISTRY.get(name)
    return spec.label if spec is not None else name


def color(name: str) -> str:
    """A transport's colour, the same in every plot; unknown names get a stable spare."""
    spec = REGISTRY.get(name)
    if spec is not None:
        return spec.color
    return _SPARE_COLORS[sum(name.encode()) % len(_SPARE_COLORS)]


def dash(name: str) -> str:
    """An SVG ``stroke-dasharray`` for a transport's line (empty: solid)."""
    spec = REGISTRY.get(name)
    return spec.dash if spec is not None else ""
