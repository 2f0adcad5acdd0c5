"""The rig's run options that are not Locust's: parsed and checked without Locust.

``rig compare`` validates with these before any load starts; the Locust plugin applies
them. Importing this module does not import Locust (which monkey-patches the process).
"""

from __future__ import annotations

from rig.loadgen.registry import parse_transports
from rig.workload.scenarios import Scenario, builtin_scenarios, load_scenario

__all__ = ["parse_transports", "parse_weights", "resolve_scenarios", "turn_bucket"]


def turn_bucket(turn: int) -> str:
    """A bounded name for a turn index in Locust's statistics."""
    if turn < 3:
        return str(turn)
    if turn < 10:
        return "3-9"
    if turn < 20:
        return "10-19"
    return "20+"


def parse_weights(value: str, transports: list[str]) -> dict[str, int]:
    """``--transport-weights`` such as ``http=3,ws=1``, checked against the transports."""
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, number = part.partition("=")
        if not sep or name not in transports or not number.isdigit() or int(number) < 1:
            raise ValueError(
                f"--transport-weights {value!r}: expected NAME=WEIGHT pairs with NAME one of "
                f"{', '.join(transports)} and WEIGHT a positive integer"
            )
        weights[name] = int(number)
    return weights


def resolve_scenarios(value: str) -> list[Scenario]:
    """``--scenario``: a built-in name, a file, or ``mixed`` (all built-ins)."""
    builtins = builtin_scenarios()
    if value == "mixed":
        return [builtins[name] for name in sorted(builtins)]
    return [load_scenario(value)]
