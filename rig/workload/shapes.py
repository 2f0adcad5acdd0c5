"""Load shapes by name: how many sessions run at each moment of a run.

``--shape NAME:key=value,...`` picks one; each is a pure function of the run time, so it is
tested without Locust, and the Locust plugin wraps the chosen one in a ``LoadTestShape``.

* ``steps:users=N,every=T,max=M[,rate=R]``: N sessions more every T (N, 2N, ... up to M),
  each level held for T, then the run ends. What ``rig capacity`` runs to find the knee.
* ``ramp:max=M,over=T[,hold=H][,rate=R]``: grow linearly from 0 to M over T, hold M for H.
* ``spike:base=B,max=M,at=T0,for=D,duration=T[,rate=R]``: B sessions, M from T0 for D,
  back to B, end at T.
* ``soak:users=M,duration=T[,rate=R]``: M sessions for a long time T.

Times accept ``s``, ``m``, ``h`` suffixes (``30s``, ``5m``). ``rate`` is Locust's spawn rate
(sessions started per second; default: a level's increase within a tenth of its time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from rig.errors import RigError

__all__ = ["Ramp", "Shape", "ShapeError", "Soak", "Spike", "Steps", "parse_shape"]


class ShapeError(RigError, ValueError):
    """A ``--shape`` value that cannot be used, with what to write instead."""


class Shape(Protocol):
    """Sessions and spawn rate at run time ``t`` seconds; ``None`` once the run is over."""

    @property
    def name(self) -> str:
        """The shape's kind, as ``--shape`` spells it (``steps``)."""
        ...

    def tick(self, t: float) -> tuple[int, float] | None: ...

    @property
    def duration_s(self) -> float: ...


def _rate(rate: float | None, increase: int, period_s: float) -> float:
    if rate is not None:
        return rate
    return max(1.0, increase / max(0.1, period_s / 10))


@dataclass(frozen=True, slots=True)
class Steps:
    """``users`` more sessions every ``every_s``, up to ``max_users``; each level held once."""

    users: int
    every_s: float
    max_users: int
    rate: float | None = None
    name: str = "steps"

    @property
    def levels(self) -> list[int]:
        """The session counts of the steps, in order."""
        count = math.ceil(self.max_users / self.users)
        return [min(self.max_users, self.users * (k + 1)) for k in range(count)]

    @property
    def duration_s(self) -> float:
        return len(self.levels) * self.every_s

    def tick(self, t: float) -> tuple[int, float] | None:
        levels = self.levels
        index = int(t // self.every_s)
        if index >= len(levels):
            return None
        return levels[index], _rate(self.rate, self.users, self.every_s)

    def level_at(self, t: float) -> int | None:
        """The step (its session count) that run time ``t`` falls in."""
        tick = self.tick(t)
        return None if tick is None else tick[0]


@dataclass(frozen=True, slots=True)
class Ramp:
    """Linear growth from 0 to ``max_users`` over ``over_s``, then ``hold_s`` at the top."""

    max_users: int
    over_s: float
    hold_s: float = 0.0
    rate: float | None = None
    name: str = "ramp"

    @property
    def duration_s(self) -> float:
        return self.over_s + self.hold_s

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.duration_s:
            return None
        users = self.max_users if t >= self.over_s else math.ceil(self.max_users * t / self.over_s)
        rate = self.rate or max(1.0, self.max_users / max(0.1, self.over_s))
        return max(1, users), rate


@dataclass(frozen=True, slots=True)
class Spike:
    """``base`` sessions, ``max_users`` from ``at_s`` for ``for_s``, ending at ``total_s``."""

    base: int
    max_users: int
    at_s: float
    for_s: float
    total_s: float
    rate: float | None = None
    name: str = "spike"

    @property
    def duration_s(self) -> float:
        return self.total_s

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.total_s:
            return None
        spiking = self.at_s <= t < self.at_s + self.for_s
        rate = self.rate or max(1.0, float(self.max_users - self.base) * 5)  # a spike is sudden
        return (self.max_users if spiking else self.base), rate


@dataclass(frozen=True, slots=True)
class Soak:
    """``users`` sessions held for ``total_s``."""

    users: int
    total_s: float
    rate: float | None = None
    name: str = "soak"

    @property
    def duration_s(self) -> float:
        return self.total_s

    def tick(self, t: float) -> tuple[int, float] | None:
        if t >= self.total_s:
            return None
        return self.users, _rate(self.rate, self.users, self.total_s / 10)


_SPEC = {
    "steps": ("users", "every", "max"),
    "ramp": ("max", "over"),
    "spike": ("base", "max", "at", "for", "duration"),
    "soak": ("users", "duration"),
}
_OPTIONAL = {"steps": ("rate",), "ramp": ("hold", "rate"), "spike": ("rate",), "soak": ("rate",)}
_TIMES = {"every", "over", "hold", "at", "for", "duration"}
_EXAMPLES = {
    "steps": "steps:users=10,every=30s,max=100",
    "ramp": "ramp:max=200,over=5m,hold=5m",
    "spike": "spike:base=20,max=200,at=2m,for=1m,duration=6m",
    "soak": "soak:users=100,duration=2h",
}


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def parse_shape(value: str) -> Shape:
    """A ``--shape`` value as a shape; :class:`ShapeError` names what is wrong."""
    name, _, rest = value.strip().partition(":")
    if name not in _SPEC:
        raise ShapeError(
            f"--shape {value!r}: unknown shape {name!r}; choose from "
            + ", ".join(f"{n} (e.g. {example})" for n, example in _EXAMPLES.items())
        )
    fields: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = part.partition("=")
        allowed = (*_SPEC[name], *_OPTIONAL[name])
        if not sep or key not in allowed:
            raise ShapeError(
                f"--shape {value!r}: {part!r} is not one of {', '.join(allowed)} "
                f"(e.g. {_EXAMPLES[name]})"
            )
        try:
            number = _seconds(raw) if key in _TIMES else float(raw)
        except ValueError:
            raise ShapeError(f"--shape {value!r}: {key}={raw!r} is not a number") from None
        if number <= 0 and not (key in ("base", "at") and number == 0):
            raise ShapeError(f"--shape {value!r}: {key} must be positive")
        fields[key] = number
    missing = [key for key in _SPEC[name] if key not in fields]
    if missing:
        raise ShapeError(
            f"--shape {value!r}: missing {', '.join(missing)} (e.g. {_EXAMPLES[name]})"
        )
    rate = fields.get("rate")
    if name == "steps":
        if fields["users"] > fields["max"]:
            raise ShapeError(f"--shape {value!r}: users must not exceed max")
        return Steps(int(fields["users"]), fields["every"], int(fields["max"]), rate)
    if name == "ramp":
        return Ramp(int(fields["max"]), fields["over"], fields.get("hold", 0.0), rate)
    if name == "spike":
        if fields["at"] + fields["for"] > fields["duration"] or fields["base"] > fields["max"]:
            raise ShapeError(
                f"--shape {value!r}: the spike must end before duration and max >= base"
            )
        return Spike(
            int(fields["base"]), int(fields["max"]), fields["at"], fields["for"],
            fields["duration"], rate,
        )  # fmt: skip
    return Soak(int(fields["users"]), fields["duration"], rate)
