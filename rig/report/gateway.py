"""summary.json's ``direct`` and ``gateway`` sections: what a gateway in front of the
provider buys (ingress saved at the client edge) and costs (added TTFT, upstream bytes,
checkpoints, memory).

``direct`` (a run with ``--direct-url``): the direct twins, cells that ran the same
sessions under the same load straight to the upstream (records tagged ``target=direct``):

* ``target``, ``url``: the twins' target tag and base URL;
* ``transports.<name>``: the twin's figures, as ``transports.<name>`` has them;
* ``added_ttft.<name>``: ``turns`` and ``direct_turns`` (answered turns of the target's
  cell and of its twin), ``paired_turns`` (answered in both: the same session and turn
  index), and over the paired turns ``ttft_ms_p50``/``ttft_ms_p90`` (through the target),
  ``direct_ttft_ms_p50``/``direct_ttft_ms_p90`` (straight to the upstream) and
  ``added_ttft_ms_p50``/``added_ttft_ms_p90`` (the difference: what the target adds).

``gateway`` (a run whose target is a gateway: ``rig compare --target gateway``): the
gateway's ``/stats`` over the run (:data:`GATEWAY_FILE`, written by the run): counters as
the difference between the end and the start of the run, summed over replicas; a figure
the gateway does not report is ``null``.

* ``url``, ``embedded`` (the gateway and its upstream mock were child processes);
* ``client_bytes_in``/``client_bytes_out``: application bytes at the client edge;
  ``upstream_bytes_out``/``upstream_bytes_in``: what the gateway sent to and got from the
  upstream (the datacenter side, full context every call);
* ``ingress_saved_bytes`` (``upstream_bytes_out - client_bytes_in``) and ``ingress_saved``
  (``1 - client_bytes_in / upstream_bytes_out``): ingress saved at the client edge;
* ``upstream_errors``, ``upstream_rate_limited`` (429s passed to clients) and
  ``upstream_retries`` (calls sent again, the upstream had not processed them);
* ``responses_completed``, ``responses_failed``, ``upstream_requests``, and the hits and
  misses: ``hits_connection``, ``hits_checkpoint`` (older gateways: ``hits_store``),
  ``misses_not_found`` and by cause ``misses_evicted``, ``misses_expired``,
  ``misses_foreign``, ``misses_unavailable``, ``misses_unknown``; ``resumes``, ``evictions``;
* checkpoints: ``checkpoint_writes``, ``checkpoint_bytes``, ``checkpoint_failures``,
  ``checkpoint_ms_mean`` (write latency), ``checkpoint_bytes_per_write``;
  ``upstream_ttfb_ms_mean``;
* ``memory``: from the sample of ``/stats`` with the most sessions: ``sessions``,
  ``session_bytes``, ``memory_rss_bytes``, ``memory_rss_bytes_start`` (before the run),
  ``memory_rss_bytes_per_session`` (RSS over sessions), ``memory_rss_growth_per_session``
  (RSS growth since the start over sessions), ``session_bytes_per_session``;
* ``added_ttft``: ``direct.added_ttft`` (when the run had direct twins);
* ``reconciliation``: ``client_bytes_in`` against the load generator's application bytes
  sent through the gateway (``load_generator``, ``gateway``, ``difference``); with the
  upstream's ``/stats`` (the embedded mock), ``upstream_bytes_out`` against the
  upstream's ``bytes_in`` less the direct twins' bytes (``upstream``, ``gateway``,
  ``difference``). A difference other than 0 gets a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rig.metrics.records import TurnRecord
from rig.report.palette import ordered
from rig.report.stats import percentile, rounded

__all__ = [
    "GATEWAY_FILE",
    "GAUGES",
    "added_ttft",
    "direct_section",
    "gateway_section",
    "stats_delta",
]

GATEWAY_FILE = "gateway.json"
"""The run directory's file of the gateway's ``/stats`` samples (see :func:`gateway_section`)."""

GAUGES = frozenset(
    {
        "connections_open",
        "in_flight",
        "sessions",
        "session_bytes",
        "memory_rss_bytes",
        "checkpoint_up",
        "draining",
    }
)
"""``/stats`` figures that are levels, not counters: never differenced."""

_COUNTERS = (
    "client_bytes_in",
    "client_bytes_out",
    "upstream_bytes_out",
    "upstream_bytes_in",
    "upstream_requests",
    "upstream_errors",
    "upstream_rate_limited",
    "upstream_retries",
    "responses_completed",
    "responses_failed",
    "hits_connection",
    "misses_not_found",
    "misses_evicted",
    "misses_expired",
    "misses_foreign",
    "misses_unavailable",
    "misses_unknown",
    "resumes",
    "evictions",
    "checkpoint_writes",
    "checkpoint_bytes",
    "checkpoint_failures",
)
"""Counters copied into the section as they are (their change over the run)."""

_OK = frozenset({"ok", "reconnected"})


def stats_delta(start: Mapping[str, Any], end: Mapping[str, Any]) -> dict[str, int]:
    """The integer figures of ``end``: counters less their value in ``start`` (0 when
    absent there), gauges (:data:`GAUGES`) as they are at the end."""
    out: dict[str, int] = {}
    for name, value in end.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        before = start.get(name, 0)
        before = before if isinstance(before, int) and not isinstance(before, bool) else 0
        out[name] = value if name in GAUGES else value - before
    return out


def _ratio(part: float | None, whole: float | None, digits: int) -> float | None:
    if part is None or not whole:
        return None
    return rounded(part / whole, digits)


def _answered(turns: Sequence[TurnRecord]) -> dict[tuple[str, int], float]:
    """TTFT of each answered turn, by session and turn index."""
    return {(turn.session, turn.turn): turn.ttft_ms for turn in turns if turn.status in _OK}


def added_ttft(
    through: Mapping[str, Sequence[TurnRecord]], direct: Mapping[str, Sequence[TurnRecord]]
) -> dict[str, dict[str, Any]]:
    """Per transport with a direct twin: TTFT p50/p90 through the target and straight to
    the upstream, and the difference (what the target adds).

    Over paired turns only: the same session and turn index answered in both cells (a
    twin plays its cell's tasks), so both sides have the same requests and the same
    planned latency, and a cell that ran longer or started earlier does not tilt them.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in ordered(direct):
        mine, twins = _answered(through.get(name, ())), _answered(direct[name])
        paired = sorted(set(mine) & set(twins))
        figures: dict[str, Any] = {
            "turns": len(mine),
            "direct_turns": len(twins),
            "paired_turns": len(paired),
        }
        for q in (50, 90):
            value = percentile([mine[key] for key in paired], q)
            base = percentile([twins[key] for key in paired], q)
            figures[f"ttft_ms_p{q}"] = rounded(value, 2)
            figures[f"direct_ttft_ms_p{q}"] = rounded(base, 2)
            added = None if value is None or base is None else value - base
            figures[f"added_ttft_ms_p{q}"] = rounded(added, 2)
        out[name] = figures
    return out


def direct_section(
    meta: Mapping[str, Any],
    figures: Mapping[str, Any],
    through: Mapping[str, Sequence[TurnRecord]],
    direct: Mapping[str, Sequence[TurnRecord]],
) -> dict[str, Any]:
    """summary.json's ``direct``: the twins' figures and the TTFT the target adds."""
    plan = meta.get("direct") or {}
    return {
        "target": plan.get("target"),
        "url": plan.get("url"),
        "transports": dict(figures),
        "added_ttft": added_ttft(through, direct),
    }


def gateway_section(
    observed: Mapping[str, Any],
    transports: Mapping[str, Mapping[str, Any]],
    direct: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], list[str]]:
    """summary.json's ``gateway`` from :data:`GATEWAY_FILE`'s content (``observed``), the
    target's cells' figures and the ``direct`` section (or ``None``), and its warnings."""
    stats = stats_delta(observed.get("stats_start") or {}, observed.get("stats_end") or {})
    section: dict[str, Any] = {
        "url": observed.get("url"),
        "embedded": bool(observed.get("embedded")),
    }
    for name in _COUNTERS:
        section[name] = stats.get(name)
    section["hits_checkpoint"] = stats.get("hits_checkpoint", stats.get("hits_store"))
    client_in, upstream_out = stats.get("client_bytes_in"), stats.get("upstream_bytes_out")
    saved = None if client_in is None or upstream_out is None else upstream_out - client_in
    section["ingress_saved_bytes"] = saved
    section["ingress_saved"] = _ratio(saved, upstream_out, 4)
    checkpoint_us = stats.get("checkpoint_us")
    writes = stats.get("checkpoint_writes")
    section["checkpoint_ms_mean"] = _ratio(
        None if checkpoint_us is None else checkpoint_us / 1000, writes, 3
    )
    section["checkpoint_bytes_per_write"] = _ratio(stats.get("checkpoint_bytes"), writes, 1)
    ttfb_us = stats.get("upstream_ttfb_us")
    section["upstream_ttfb_ms_mean"] = _ratio(
        None if ttfb_us is None else ttfb_us / 1000, stats.get("upstream_requests"), 3
    )
    section["memory"] = _memory(observed)
    section["added_ttft"] = (direct or {}).get("added_ttft")
    section["reconciliation"], warnings = _reconcile(observed, stats, transports, direct)
    return section, warnings


def _memory(observed: Mapping[str, Any]) -> dict[str, Any]:
    samples = [s for s in observed.get("samples") or () if isinstance(s, Mapping)]
    samples.append(observed.get("stats_end") or {})
    peak = max(samples, key=lambda s: s.get("sessions") or 0)
    sessions, rss = peak.get("sessions"), peak.get("memory_rss_bytes")
    session_bytes = peak.get("session_bytes")
    rss_start = (observed.get("stats_start") or {}).get("memory_rss_bytes")
    growth = None if rss is None or rss_start is None else rss - rss_start
    return {
        "sessions": sessions,
        "session_bytes": session_bytes,
        "memory_rss_bytes": rss,
        "memory_rss_bytes_start": rss_start,
        "memory_rss_bytes_per_session": _ratio(rss, sessions, 1),
        "memory_rss_growth_per_session": _ratio(growth, sessions, 1),
        "session_bytes_per_session": _ratio(session_bytes, sessions, 1),
    }


def _reconcile(
    observed: Mapping[str, Any],
    stats: Mapping[str, int],
    transports: Mapping[str, Mapping[str, Any]],
    direct: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    sent = sum(f.get("body_bytes_sent_total") or 0 for f in transports.values())
    client_in = stats.get("client_bytes_in")
    edge = {
        "load_generator": sent,
        "gateway": client_in,
        "difference": None if client_in is None else client_in - sent,
    }
    if edge["difference"]:
        warnings.append(
            f"the gateway counted {client_in:,} bytes received from clients, the load "
            f"generator sent {sent:,} through it ({edge['difference']:+,}): another client "
            "used the gateway during the run, or a side counts differently"
        )
    out: dict[str, Any] = {"client_bytes_in": edge, "upstream_bytes_out": None}
    upstream_end = observed.get("upstream_stats_end")
    if isinstance(upstream_end, Mapping):
        upstream = stats_delta(observed.get("upstream_stats_start") or {}, upstream_end)
        twins = (direct or {}).get("transports") or {}
        twin_bytes = sum(f.get("body_bytes_sent_total") or 0 for f in twins.values())
        received = upstream.get("bytes_in")
        via_gateway = None if received is None else received - twin_bytes
        gateway_out = stats.get("upstream_bytes_out")
        difference = (
            None if via_gateway is None or gateway_out is None else gateway_out - via_gateway
        )
        out["upstream_bytes_out"] = {
            "upstream": via_gateway,
            "gateway": gateway_out,
            "difference": difference,
        }
        if difference:
            warnings.append(
                f"the gateway counted {gateway_out:,} bytes sent upstream, the upstream "
                f"received {via_gateway:,} from it ({difference:+,})"
            )
    return out, warnings
