"""Pass/fail thresholds on summary figures, in the style of k6's thresholds.

A check is ``<path><op><number>``, for example ``ws_vs_http.bytes_sent_reduction>=0.8``
or ``transports.ws.ttft_ms_p95<1500``. Operators: ``>=``, ``<=``, ``>``, ``<``, ``==``.
The path is dotted keys into summary.json from its top level (``rig.lag_ms_p99_max``);
a comparison (``ws_vs_http.…``) or a transport (``ws.…``) may be named without its
``comparison.`` or ``transports.`` prefix; a number selects a list entry by position
(``transports.http.per_turn.0.bytes_sent_mean``). ``true``/``false`` figures compare as
1/0. A figure that is ``null`` (no data) fails its check; a path that does not exist, or
that ends at something other than a number, is a :class:`CheckError`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rig.report.errors import CheckError

__all__ = ["OPERATORS", "Check", "CheckError", "CheckResult", "evaluate", "parse_check"]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
"""The comparison operators a check may use."""

_EXPRESSION = re.compile(
    r"^\s*(?P<path>[A-Za-z_]\w*(?:\.\w+)*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[^\s<>=]+)\s*$"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold: a figure's dotted path, an operator and the number to compare with."""

    expression: str
    path: tuple[str, ...]
    op: str
    threshold: float


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check against one summary."""

    check: Check
    passed: bool
    actual: float | None
    message: str


def parse_check(expression: str) -> Check:
    """Parse ``"<path><op><number>"``; a :class:`CheckError` naming the check when it is
    not one."""
    match = _EXPRESSION.match(expression)
    if match is None:
        raise CheckError(
            f"check {expression!r}: expected <path><op><number>, such as "
            f"'ws_vs_http.bytes_sent_reduction>=0.8'; operators: {', '.join(OPERATORS)}"
        )
    text = match["value"]
    try:
        threshold = float(text)
    except ValueError:
        raise CheckError(f"check {expression!r}: {text!r} is not a number") from None
    if not math.isfinite(threshold):
        raise CheckError(f"check {expression!r}: the threshold must be a finite number")
    return Check(
        expression=expression.strip(),
        path=tuple(match["path"].split(".")),
        op=match["op"],
        threshold=threshold,
    )


def evaluate(checks: Iterable[Check], summary: Mapping[str, Any]) -> list[CheckResult]:
    """Each check against ``summary``, in order. A result's message names the check and the
    actual figure, not the verdict (``passed`` holds it), so callers can prefix their own
    mark. Raises :class:`CheckError` for a path the summary does not have (listing what it
    does have)."""
    results = []
    for check in checks:
        actual = _resolve(check, summary)
        if actual is None:
            message = f"{check.expression} (no data: the figure is null)"
            results.append(CheckResult(check, False, None, message))
            continue
        passed = OPERATORS[check.op](actual, check.threshold)
        message = f"{check.expression} (actual {actual:.6g})"
        results.append(CheckResult(check, passed, actual, message))
    return results


def _resolve(check: Check, summary: Mapping[str, Any]) -> float | None:
    first, *rest = check.path
    comparisons = summary.get("comparison") or {}
    transports = summary.get("transports") or {}
    if first in summary:
        node: Any = summary[first]
    elif first in comparisons:
        node = comparisons[first]
    elif first in transports:
        node = transports[first]
    else:
        raise CheckError(
            f"check {check.expression!r}: unknown figure {first!r}; "
            f"top-level keys: {_names(summary)}; comparisons: {_names(comparisons)}; "
            f"transports: {_names(transports)}"
        )
    walked = [first]
    for part in rest:
        node = _step(check, node, part, ".".join(walked))
        walked.append(part)
    if node is None:
        return None
    if isinstance(node, bool):
        return float(node)
    if isinstance(node, int | float):
        return float(node)
    kinds: dict[type[object], str] = {dict: "an object", list: "a list", str: "a string"}
    kind = kinds.get(type(node), type(node).__name__)
    raise CheckError(
        f"check {check.expression!r}: {'.'.join(walked)} is {kind}, not a number"
        + (f"; its keys: {_names(node)}" if isinstance(node, dict) else "")
    )


def _step(check: Check, node: Any, part: str, where: str) -> Any:
    if isinstance(node, Mapping):
        if part not in node:
            raise CheckError(
                f"check {check.expression!r}: {where} has no {part!r}; its keys: {_names(node)}"
            )
        return node[part]
    if isinstance(node, list):
        if not node:
            raise CheckError(f"check {check.expression!r}: {where} is an empty list")
        if not part.isdigit() or int(part) >= len(node):
            raise CheckError(
                f"check {check.expression!r}: {where} is a list of {len(node)}; "
                f"select an entry by position 0-{len(node) - 1}, not {part!r}"
            )
        return node[int(part)]
    raise CheckError(f"check {check.expression!r}: {where} is a number; it has no {part!r}")


def _names(mapping: Mapping[str, Any]) -> str:
    return ", ".join(sorted(mapping)) or "(none)"
