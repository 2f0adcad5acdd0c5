"""summary.json: a run's figures per transport, and every transport against ``http``.

A stable interface for CI pipelines and Kubernetes jobs: keys are only ever added. Every
figure is ``null`` when it has no data (never NaN); the file is written with sorted keys,
and means are exactly rounded sums (``math.fsum``), so the same records give the same
bytes whatever order the workers wrote them in.

Per transport (``transports.<name>``):

* ``tasks``: completed tasks (``TaskRecord.ok``); every per-task figure is over them.
  ``tasks_failed``: task records with ``ok`` false. ``task_success_rate``: ``tasks`` over
  every task record (completed and failed); ``null`` without any.
* ``turns``: turn records of any status. ``errors``: turns whose status is ``error`` or
  ``timeout``; ``timeouts``: those with status ``timeout`` (``--request-timeout``, or the
  stream idle timeout on the last attempt). ``rate_limited``: turns that gave up with
  status ``rate_limited``.
  ``rate_limit_hits``: rejected attempts (``ratelimits.jsonl``), retried or not;
  ``rate_limits_by_kind``: them by limit (``requests``, ``tokens``, ``inflight``,
  ``connections``); ``rate_limit_wait_s``: the time sessions spent waiting after them.
* ``successful_turns``: turns with status ``ok`` or ``reconnected``.
* ``bytes_sent_total`` / ``bytes_recv_total``: wire bytes of every turn;
  ``body_bytes_sent_total`` / ``body_bytes_recv_total``: application bytes (request
  bodies or message payloads out, response bodies or message payloads in), the figures a
  server's own counters can be reconciled with (the mock's ``/stats`` ``bytes_in`` and
  ``bytes_out``).
* ``bytes_sent_per_task`` / ``bytes_recv_per_task``: mean wire bytes of a completed task.
* ``task_seconds_mean`` / ``task_seconds_p50`` / ``task_seconds_p90`` /
  ``task_seconds_p95``: completed tasks' time, first turn's start to the final answer, tool
  time included.
* ``turns_per_task_mean``: mean turns of a completed task.
* ``ttft_ms_mean`` / ``ttft_ms_p50`` / ``ttft_ms_p95``: TTFT over successful turns (status ``ok`` or
  ``reconnected``; failed turns have no meaningful TTFT). ``ttft_ms_first_turn_mean``: the
  same over turn index 0 only.
* ``per_turn``: one entry per turn index with at least one successful turn, ascending:
  ``n`` successful turns at that index and their mean ``bytes_sent``, ``bytes_recv`` and
  ``ttft_ms``.
* ``per_turn_outcomes``: one entry per turn index with any turn record, ascending: ``turns``
  (records at that index, any status), ``successful`` (``ok`` or ``reconnected``),
  ``errors``, ``timeouts``, ``rate_limited``, and ``success_rate`` (successful over turns)
  and ``timeout_rate`` (timeouts over turns). A task ends at its first failed turn, so a
  turn index is reached only by tasks whose earlier turns succeeded: on a poor link the
  success rate falling with the index is the context outgrowing the request timeout.
* ``task_time_parts``: a completed task's mean time by part, in seconds, from its turns'
  records (:data:`TASK_TIME_PARTS`); the parts add up to ``task_seconds_mean``.
* ``recovery``: connections that broke and what it cost: ``breaks`` (connections that
  broke under a turn: reset, closed, refused, idle-timed out), ``reconnected_turns`` (turns
  that succeeded after one) and ``reconnect_rate`` (them over ``turns``), ``lost_turns``
  (turns that gave up after one: status ``error`` or ``timeout``), ``resent_bytes`` (request
  body bytes sent again after a break), ``recover_ms_mean`` / ``recover_ms_p95`` (from a
  turn's first break to the target's next answer, over turns that recovered),
  ``fallback_sessions`` (sessions that went on over HTTP after WebSocket failures,
  ``--ws-fallback``) and ``fallback_turns`` (turns carried over HTTP so).

``links``: the link profiles of the target's records (their ``link`` tag, ``direct`` for no
shaping), sorted. ``by_link``: only for a run with more than one link (a ``--links`` mix),
per link and per transport that ran on it, :data:`LINK_FIGURES` (the per-transport
figures of the same names, over that link's records); each count sums over the links to
the transport's.

Percentiles are nearest-rank (:func:`rig.report.stats.percentile`): always a measured value.

``comparison.<name>_vs_http``: for each transport other than ``http``, when ``http`` ran,
``1 - figure(name) / figure(http)`` for ``bytes_sent_reduction`` (bytes sent per task),
``bytes_recv_reduction``, ``task_time_reduction`` (task seconds mean), ``ttft_reduction``
(TTFT mean, all turns), ``ttft_first_turn_reduction``, ``task_time_p95_reduction`` and
``ttft_p95_reduction``. 0.82 means 82% less; negative
means larger; ``null`` when either figure is missing or the http figure is zero.

``rig``: load-generator health from ``health.jsonl``: ``samples``, ``workers``,
``lag_ms_p99_max`` (worst scheduling-lag p99 of any sample), ``lag_ms_max``,
``cpu_percent_mean`` / ``cpu_percent_max``, ``saturated`` (any sample saturated),
``saturated_samples``; ``by_worker``: the same per load-generator process (its ``worker``
tag: ``local``, or ``w0``, ``w1``... with ``--processes`` or distributed workers) with
``samples``, ``users_max``, ``turns_per_s_mean``, ``cpu_percent_mean``/``_max``,
``lag_ms_p99_max``, ``lag_ms_max`` and ``saturated_samples``; the InfluxDB sink's
``sink`` (``influx``, ``influx-v1`` or ``null``), ``points_written`` and
``points_dropped`` over the run (``null`` without a sink), taken after the sink's final
attempt: their sum is every record the run made, and a run that dropped points gets a
warning (``--check rig.points_dropped==0`` fails it).

``rate_limits``: ``quota`` (the embedded mock's ``--rpm``/``--tpm``/... when it enforced
one, else ``null``) and per transport ``hits``, ``by_kind``, ``wait_s``, ``turns_per_s``
(successful turns over the run's duration) and ``share_of_request_quota`` (those turns
per second over the quota's requests per second).

``projection``: see :mod:`rig.report.projection`; ``projection_caveats``: why its figures
should not be trusted (failed tasks, failed turns, rate limits, few tasks: a projection
assumes every session keeps completing tasks as the run's did); empty when none.
``warnings``: sentences a reader must
see before trusting the figures (saturation, errors, few tasks, missing baseline).

``workload`` (only for a trace replay, ``--workload trace:NAME``): ``trace`` (the name or
path given), ``sessions`` and ``turns`` of the trace, and ``fidelity``: per transport the
turns whose request body had a traced size over the same transport (``turns``) and how
far the bodies sent were from it, ``mean_rel_diff`` and ``max_rel_diff`` (|sent - traced|
/ traced; 0.01 is 1%), ``null`` for a transport with no such turn. A replay should be
within 2%; a run beyond gets a warning.

``direct`` (only for a run with direct twins, ``--direct-url``) and ``gateway`` (only for a
run against a gateway, ``rig compare --target gateway``): see :mod:`rig.report.gateway`.
The twins' records are in neither ``transports`` nor ``comparison``: those are the
target's cells.

``capacity`` (only for a run driven by a steps shape): per transport the knee
``max_sessions``, its ``criteria``, ``bound_by``, ``at_knee`` and every level's figures;
see :mod:`rig.report.capacity`. Of ``rig capacity --target gateway`` (or with
``--gateway-stats``), each transport's also has ``gateway``: the gateway's figures over
that transport's phase, as the run-wide ``gateway`` section has them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rig.loadgen import registry
from rig.metrics.records import HealthRecord, RateLimitRecord, TaskRecord, TurnRecord
from rig.metrics.rundir import RunDirectory, RunDirectoryError
from rig.report.capacity import DEFAULT_MAX_RATE_LIMITED, DEFAULT_TTFT_SLO_MS, capacity
from rig.report.errors import ReportError
from rig.report.gateway import GATEWAY_FILE, direct_section, gateway_section
from rig.report.palette import BASELINE, ordered
from rig.report.projection import project
from rig.report.stats import mean, percentile, rounded

__all__ = [
    "ERROR_STATUSES",
    "FEW_TASKS",
    "LINK_FIGURES",
    "OK_STATUSES",
    "REDUCTIONS",
    "SCHEMA_VERSION",
    "TASK_TIME_PARTS",
    "build_summary",
    "comparison_key",
    "projection_caveats",
    "summarize",
]

SCHEMA_VERSION = 1
"""Bumped only if a key changes meaning or disappears (adding keys does not bump it)."""

OK_STATUSES = frozenset({"ok", "reconnected"})
"""Turn statuses whose timings count: the turn produced an answer."""

ERROR_STATUSES = frozenset({"error", "timeout"})
"""Turn statuses counted as ``errors``."""

FEW_TASKS = 10
"""Fewer completed tasks than this, and a transport's per-task figures get a warning."""

REDUCTIONS = {
    "bytes_sent_reduction": "bytes_sent_per_task",
    "bytes_recv_reduction": "bytes_recv_per_task",
    "task_time_reduction": "task_seconds_mean",
    "ttft_reduction": "ttft_ms_mean",
    "ttft_first_turn_reduction": "ttft_ms_first_turn_mean",
    "task_time_p95_reduction": "task_seconds_p95",
    "ttft_p95_reduction": "ttft_ms_p95",
}
"""Each comparison key and the per-transport figure it compares."""

LINK_FIGURES = (
    "tasks",
    "tasks_failed",
    "task_success_rate",
    "turns",
    "errors",
    "timeouts",
    "task_seconds_p50",
    "task_seconds_p90",
    "ttft_ms_p50",
    "bytes_sent_per_task",
    "bytes_recv_per_task",
)
"""The figures of each link and transport in ``by_link``: a transport's figures of the
same names, over one link's records."""

TASK_TIME_PARTS = {
    "connect_s": "connection set-up: TCP, TLS and WebSocket upgrade (connect_ms)",
    "upload_s": "writing the requests to the socket (upload_ms)",
    "first_token_s": "request written to first token: the server's parse, queueing and "
    "prefill, and any rate-limit back-off (ttft_ms - connect_ms - upload_ms)",
    "streaming_s": "first token to the end of the answer (turn_ms - ttft_ms)",
    "tools_s": "between turns: the simulated tools and the agent (task_ms - sum of turn_ms)",
}
"""The parts of ``task_time_parts``, each with what it is."""

# Digits kept in summary.json: bytes to 0.1 B, ms to 0.01 ms, seconds to 0.1 ms.
_BYTES, _MS, _SECONDS, _FRACTION = 1, 2, 4, 4


def comparison_key(name: str) -> str:
    """The comparison entry of transport ``name``: ``ws`` -> ``ws_vs_http``."""
    return f"{name}_vs_{BASELINE}"


def build_summary(run: RunDirectory) -> dict[str, Any]:
    """The summary of the run in ``run`` (see the module docstring for every field).

    Raises :class:`ReportError` when the directory is missing, has no ``meta.json``, holds a
    malformed line or recorded no turns.
    """
    if not run.path.is_dir():
        raise ReportError(f"{run.path}: no such run directory")
    try:
        meta = run.read_json("meta.json")
        turns = run.turns()
        tasks = run.tasks()
        ratelimits = run.ratelimits()
        health = run.health()
        gateway = run.read_json(GATEWAY_FILE) if (run.path / GATEWAY_FILE).is_file() else None
        phase_gateways = _phase_gateways(run, meta) if isinstance(meta, dict) else {}
    except RunDirectoryError as exc:
        raise ReportError(str(exc)) from exc
    if not isinstance(meta, dict):
        raise ReportError(f"{run.path / 'meta.json'}: expected a JSON object")
    if not turns:
        raise ReportError(
            f"{run.path / 'turns.jsonl'}: no turn records, so there is nothing to report; "
            "the run ended before any turn finished (check its log for connection errors), "
            "or the records went to InfluxDB only: run again with the run-directory sink"
        )
    return summarize(
        meta,
        turns,
        tasks,
        ratelimits,
        health,
        default_run_id=run.path.name,
        gateway=gateway,
        phase_gateways=phase_gateways,
    )


def _phase_gateways(run: RunDirectory, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Per transport, the gateway's ``/stats`` over its phase of a ``rig capacity`` run
    (the phase's own :data:`GATEWAY_FILE`, kept under ``phases/``), where one was read."""
    found: dict[str, Any] = {}
    phases = meta.get("phases")
    for name, phase in phases.items() if isinstance(phases, Mapping) else ():
        phase_id = phase.get("phase_run_id") if isinstance(phase, Mapping) else None
        if not isinstance(phase_id, str) or "/" in phase_id or phase_id.startswith("."):
            continue  # a phase's own directory under phases/, nothing else
        path = run.path / "phases" / phase_id / GATEWAY_FILE
        if path.is_file():
            found[name] = RunDirectory(path.parent).read_json(GATEWAY_FILE)
    return found


def summarize(
    meta: Mapping[str, Any],
    turns: Sequence[TurnRecord],
    tasks: Sequence[TaskRecord],
    ratelimits: Sequence[RateLimitRecord] = (),
    health: Sequence[HealthRecord] = (),
    default_run_id: str | None = None,
    gateway: Mapping[str, Any] | None = None,
    phase_gateways: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The summary of records read from any source (run directory or InfluxDB);
    ``gateway``: the gateway's ``/stats`` over the run (:mod:`rig.report.gateway`);
    ``phase_gateways``: over each transport's phase of a ``rig capacity`` run."""
    plan = meta.get("direct")
    plan = plan if isinstance(plan, Mapping) else {}
    twin_target = plan.get("target")
    twin_turns = [t for t in turns if twin_target and t.tags.target == twin_target]
    twin_tasks = [t for t in tasks if twin_target and t.tags.target == twin_target]
    twin_hits = [r for r in ratelimits if twin_target and r.tags.target == twin_target]
    if twin_target:
        turns = [t for t in turns if t.tags.target != twin_target]
        tasks = [t for t in tasks if t.tags.target != twin_target]
        ratelimits = [r for r in ratelimits if r.tags.target != twin_target]
    turns_by = _group(turns)
    tasks_by = _group(tasks)
    hits_by = _group(ratelimits)
    names = set(turns_by) | set(tasks_by) | set(hits_by)
    planned = meta.get("transports")
    if isinstance(planned, list):
        names |= {name for name in planned if isinstance(name, str)}
    transports = {
        name: _transport(turns_by.get(name, []), tasks_by.get(name, []), hits_by.get(name, []))
        for name in ordered(names)
    }
    rig, rig_warnings = _rig_health(health, meta.get("sink"))
    comparison = _comparison(transports)
    warnings = rig_warnings + _warnings(transports)
    sections: dict[str, Any] = {}
    if twin_target:
        twin_turns_by, twin_tasks_by, twin_hits_by = (
            _group(twin_turns),
            _group(twin_tasks),
            _group(twin_hits),
        )
        twin_names = set(twin_turns_by) | set(twin_tasks_by)
        twin_names |= {n for n in plan.get("transports") or () if isinstance(n, str)}
        twins = {
            name: _transport(
                twin_turns_by.get(name, []), twin_tasks_by.get(name, []), twin_hits_by.get(name, [])
            )
            for name in ordered(twin_names)
        }
        sections["direct"] = direct_section(meta, twins, turns_by, twin_turns_by)
        warnings += _twin_warnings(twins)
    if gateway is not None:
        sections["gateway"], gateway_warnings = gateway_section(
            gateway, transports, sections.get("direct")
        )
        warnings += gateway_warnings
    workload = meta.get("workload")
    if isinstance(workload, Mapping):
        fidelity = {name: _fidelity(turns_by.get(name, [])) for name in transports}
        sections["workload"] = {**workload, "fidelity": fidelity}
        warnings += _fidelity_warnings(fidelity)
    capacity_sections = _capacity(meta, turns, ratelimits)
    by_transport = capacity_sections.get("capacity", {})
    for name, observed in (phase_gateways or {}).items():
        if name in by_transport and name in transports:
            section, phase_warnings = gateway_section(observed, {name: transports[name]}, None)
            by_transport[name]["gateway"] = section
            warnings += [f"{name} phase: {warning}" for warning in phase_warnings]
    every: list[TurnRecord | TaskRecord] = [*turns, *tasks]
    links = sorted({record.tags.link for record in every})
    if len(links) > 1:
        sections["by_link"] = _by_link(turns, tasks, ratelimits)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": _text(meta.get("run_id")) or default_run_id,
        "target": _text(meta.get("target")) or _tag_values(every, "target"),
        "scenario": _text(meta.get("scenario")) or _tag_values(every, "scenario"),
        "duration_s": _number(meta.get("duration_s")),
        "users": _number(meta.get("users")),
        "preset": _text(meta.get("preset")),
        "links": links,
        "transport_options": _transport_options(meta, transports),
        "transports": transports,
        "comparison": comparison,
        "projection": project(transports),
        "projection_caveats": projection_caveats(transports),
        "rig": rig,
        "rate_limits": _rate_limits(meta, transports),
        "warnings": warnings,
        **sections,
        **capacity_sections,
    }


def _transport_options(
    meta: Mapping[str, Any], transports: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The transports' own settings that differ from their defaults (``--ws-deflate yes``:
    ``{"ws": {"deflate": true}}``), for the transports of the run."""
    given = meta.get("transport_options")
    if not isinstance(given, Mapping):
        return {}
    changed: dict[str, dict[str, Any]] = {}
    for name, settings in given.items():
        if (
            name not in transports
            or name not in registry.REGISTRY
            or not isinstance(settings, Mapping)
        ):
            continue
        for option in registry.spec(name).options:
            if option.name in settings and settings[option.name] != option.default:
                changed.setdefault(name, {})[option.name] = settings[option.name]
    return changed


def _rate_limits(meta: Mapping[str, Any], transports: Mapping[str, Any]) -> dict[str, Any]:
    """The quota the embedded mock enforced (from its limit flags) and, per transport, the
    rejected attempts, the time waited after them, and successful turns per second against
    the quota's requests per second."""
    flags = meta.get("mock_limits") or []
    quota: dict[str, Any] = {}
    for flag, value in zip(flags[::2], flags[1::2], strict=False):
        name = str(flag).lstrip("-").replace("-", "_")
        quota[name] = _number(float(value)) if name != "limits" else value
    duration = _number(meta.get("duration_s"))
    per_second = (quota.get("rpm") or 0) / 60 or None
    out: dict[str, Any] = {}
    for name, figures in transports.items():
        rate = figures["successful_turns"] / duration if duration else None
        out[name] = {
            "hits": figures["rate_limit_hits"],
            "by_kind": figures["rate_limits_by_kind"],
            "wait_s": figures["rate_limit_wait_s"],
            "turns_per_s": rounded(rate, 3),
            "share_of_request_quota": rounded(rate / per_second, 3)
            if rate is not None and per_second
            else None,
        }
    return {"quota": quota or None, "transports": out}


def _capacity(
    meta: Mapping[str, Any], turns: Sequence[TurnRecord], ratelimits: Sequence[RateLimitRecord]
) -> dict[str, Any]:
    """``{"capacity": ...}`` for a run driven by a steps shape (``rig capacity`` or
    ``--shape steps:...``), else nothing."""
    shape = meta.get("shape") or ""
    if not meta.get("phases") and not (isinstance(shape, str) and shape.startswith("steps")):
        return {}
    criteria = meta.get("capacity_criteria") or {}
    return {
        "capacity": capacity(
            meta,
            turns,
            ratelimits,
            max_rate_limited=float(criteria.get("max_rate_limited", DEFAULT_MAX_RATE_LIMITED)),
            ttft_slo_ms=float(criteria.get("ttft_slo_ms", DEFAULT_TTFT_SLO_MS)),
        )
    }


def _by_link(
    turns: Sequence[TurnRecord], tasks: Sequence[TaskRecord], hits: Sequence[RateLimitRecord]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``by_link``: :data:`LINK_FIGURES` per link, per transport that ran on it."""
    turns_of, tasks_of, hits_of = _group_by_link(turns), _group_by_link(tasks), _group_by_link(hits)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for link in sorted(set(turns_of) | set(tasks_of)):
        turns_by = _group(turns_of.get(link, []))
        tasks_by = _group(tasks_of.get(link, []))
        hits_by = _group(hits_of.get(link, []))
        out[link] = {}
        for name in ordered(set(turns_by) | set(tasks_by)):
            figures = _transport(
                turns_by.get(name, []), tasks_by.get(name, []), hits_by.get(name, [])
            )
            out[link][name] = {key: figures[key] for key in LINK_FIGURES}
    return out


def _group_by_link(records: Iterable[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        groups[record.tags.link].append(record)
    return groups


def _group(records: Iterable[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        groups[record.tags.transport].append(record)
    return groups


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _tag_values(records: Sequence[TurnRecord | TaskRecord], tag: str) -> str | None:
    values = sorted({getattr(record.tags, tag) for record in records})
    return ", ".join(values) or None


def _transport(
    turns: list[TurnRecord], tasks: list[TaskRecord], hits: list[RateLimitRecord]
) -> dict[str, Any]:
    done = [task for task in tasks if task.ok]
    answered = [turn for turn in turns if turn.status in OK_STATUSES]
    ttfts = [turn.ttft_ms for turn in answered]
    task_seconds = [task.task_ms / 1000 for task in done]
    return {
        "tasks": len(done),
        "tasks_failed": len(tasks) - len(done),
        "task_success_rate": rounded(len(done) / len(tasks), _FRACTION) if tasks else None,
        "turns": len(turns),
        "errors": sum(turn.status in ERROR_STATUSES for turn in turns),
        "timeouts": sum(turn.status == "timeout" for turn in turns),
        "rate_limited": sum(turn.status == "rate_limited" for turn in turns),
        "rate_limit_hits": len(hits),
        "rate_limit_wait_s": rounded(math.fsum(h.waited_ms for h in hits) / 1000, _SECONDS),
        "rate_limits_by_kind": dict(sorted(Counter(h.limit for h in hits).items())),
        "successful_turns": len(answered),
        "bytes_sent_total": sum(t.bytes_sent for t in turns),
        "bytes_recv_total": sum(t.bytes_recv for t in turns),
        "body_bytes_sent_total": sum(t.body_bytes_sent for t in turns),
        "body_bytes_recv_total": sum(t.body_bytes_recv for t in turns),
        "bytes_sent_per_task": rounded(mean(task.bytes_sent for task in done), _BYTES),
        "bytes_recv_per_task": rounded(mean(task.bytes_recv for task in done), _BYTES),
        "task_seconds_mean": rounded(mean(task_seconds), _SECONDS),
        "task_seconds_p50": rounded(percentile(task_seconds, 50), _SECONDS),
        "task_seconds_p90": rounded(percentile(task_seconds, 90), _SECONDS),
        "task_seconds_p95": rounded(percentile(task_seconds, 95), _SECONDS),
        "turns_per_task_mean": rounded(mean(task.turns for task in done), 2),
        "ttft_ms_mean": rounded(mean(ttfts), _MS),
        "ttft_ms_first_turn_mean": rounded(
            mean(turn.ttft_ms for turn in answered if turn.turn == 0), _MS
        ),
        "ttft_ms_p50": rounded(percentile(ttfts, 50), _MS),
        "ttft_ms_p95": rounded(percentile(ttfts, 95), _MS),
        "per_turn": _per_turn(answered),
        "per_turn_outcomes": _per_turn_outcomes(turns),
        "task_time_parts": _task_time_parts(done, turns),
        "recovery": _recovery(turns),
    }


REPLAY_TOLERANCE = 0.02
"""How far a replayed request body may be from the traced one before a warning."""


def _fidelity(turns: list[TurnRecord]) -> dict[str, Any] | None:
    """How close a trace replay's request bodies were to the traced ones (same transport)."""
    diffs = [
        abs(t.body_bytes_sent - t.traced_body_bytes) / t.traced_body_bytes
        for t in turns
        if t.traced_body_bytes and t.status in OK_STATUSES
    ]
    if not diffs:
        return None
    return {
        "turns": len(diffs),
        "mean_rel_diff": rounded(mean(diffs), 4),
        "max_rel_diff": rounded(max(diffs), 4),
    }


def _fidelity_warnings(fidelity: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    return [
        f"{name}: replayed request bodies were up to {f['max_rel_diff']:.1%} from the "
        f"traced sizes (more than {REPLAY_TOLERANCE:.0%}): the replay is not the trace's shape"
        for name, f in fidelity.items()
        if f is not None and f["max_rel_diff"] > REPLAY_TOLERANCE
    ]


def _recovery(turns: list[TurnRecord]) -> dict[str, Any]:
    """Connections that broke under turns, and what recovering cost (``recovery``)."""
    reconnected = sum(turn.status == "reconnected" for turn in turns)
    recovered = [turn.recover_ms for turn in turns if turn.breaks and turn.recover_ms > 0]
    fallback = [turn for turn in turns if turn.fallback]
    return {
        "breaks": sum(turn.breaks for turn in turns),
        "reconnected_turns": reconnected,
        "reconnect_rate": rounded(reconnected / len(turns), _FRACTION) if turns else None,
        "lost_turns": sum(bool(t.breaks) and t.status in ERROR_STATUSES for t in turns),
        "resent_bytes": sum(turn.resent_bytes for turn in turns),
        "recover_ms_mean": rounded(mean(recovered), _MS),
        "recover_ms_p95": rounded(percentile(recovered, 95), _MS),
        # A session's tasks share its id up to the task number.
        "fallback_sessions": len({turn.session.rpartition("-")[0] for turn in fallback}),
        "fallback_turns": len(fallback),
    }


def _task_time_parts(done: list[TaskRecord], turns: list[TurnRecord]) -> dict[str, Any]:
    """A completed task's mean time by part (:data:`TASK_TIME_PARTS`), in seconds."""
    if not done:
        return dict.fromkeys(TASK_TIME_PARTS)
    sessions = {task.session for task in done}
    connect, upload, first, streaming, in_turns = [], [], [], [], []
    for turn in turns:
        if turn.session not in sessions:
            continue
        connect.append(turn.connect_ms)
        upload.append(turn.upload_ms)
        first.append(max(0.0, turn.ttft_ms - turn.connect_ms - turn.upload_ms))
        streaming.append(max(0.0, turn.turn_ms - turn.ttft_ms))
        in_turns.append(turn.turn_ms)
    count = len(done)
    sums = {
        "connect_s": math.fsum(connect),
        "upload_s": math.fsum(upload),
        "first_token_s": math.fsum(first),
        "streaming_s": math.fsum(streaming),
        "tools_s": max(0.0, math.fsum(t.task_ms for t in done) - math.fsum(in_turns)),
    }
    return {part: rounded(total / count / 1000, _SECONDS) for part, total in sums.items()}


def projection_caveats(transports: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Why the ingress projection is unreliable for this run (empty: no reason known).

    The projection assumes sessions keep completing tasks as the run's completed ones
    did; failed tasks, failed or rate-limited turns and back-off waits break that (a
    rate-limited fleet sends less, and its task times include waiting), and few tasks
    make its means noisy."""
    caveats = []
    for name, figures in transports.items():
        if figures["tasks_failed"]:
            total = figures["tasks"] + figures["tasks_failed"]
            caveats.append(f"{name}: {figures['tasks_failed']} of {total} tasks failed")
        if figures["errors"]:
            caveats.append(f"{name}: {figures['errors']} turns failed")
        if figures["rate_limit_hits"] or figures["rate_limited"]:
            caveats.append(
                f"{name}: {figures['rate_limit_hits']} rate-limit hits "
                "(task times include back-off; a limited fleet sends less)"
            )
        if figures["tasks"] < FEW_TASKS:
            caveats.append(f"{name}: only {figures['tasks']} completed tasks")
    return caveats


def _per_turn(answered: list[TurnRecord]) -> list[dict[str, Any]]:
    by_index: dict[int, list[TurnRecord]] = defaultdict(list)
    for turn in answered:
        by_index[turn.turn].append(turn)
    return [
        {
            "turn": index,
            "n": len(group),
            "bytes_sent_mean": rounded(mean(t.bytes_sent for t in group), _BYTES),
            "bytes_recv_mean": rounded(mean(t.bytes_recv for t in group), _BYTES),
            "ttft_ms_mean": rounded(mean(t.ttft_ms for t in group), _MS),
        }
        for index, group in sorted(by_index.items())
    ]


def _per_turn_outcomes(turns: list[TurnRecord]) -> list[dict[str, Any]]:
    """How the turns at each index ended (``per_turn_outcomes``)."""
    by_index: dict[int, Counter[str]] = defaultdict(Counter)
    for turn in turns:
        by_index[turn.turn][turn.status] += 1
    out = []
    for index, statuses in sorted(by_index.items()):
        count = statuses.total()
        successful = sum(statuses[status] for status in OK_STATUSES)
        out.append(
            {
                "turn": index,
                "turns": count,
                "successful": successful,
                "errors": sum(statuses[status] for status in ERROR_STATUSES),
                "timeouts": statuses["timeout"],
                "rate_limited": statuses["rate_limited"],
                "success_rate": rounded(successful / count, _FRACTION),
                "timeout_rate": rounded(statuses["timeout"] / count, _FRACTION),
            }
        )
    return out


def _reduction(baseline: float | None, other: float | None) -> float | None:
    if baseline is None or other is None or baseline <= 0:
        return None
    return rounded(1 - other / baseline, _FRACTION)


def _comparison(transports: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    if BASELINE not in transports:
        return {}
    base = transports[BASELINE]
    return {
        comparison_key(name): {
            key: _reduction(base[figure], figures[figure]) for key, figure in REDUCTIONS.items()
        }
        for name, figures in transports.items()
        if name != BASELINE
    }


def _sink_points(
    health: Sequence[HealthRecord], sink: Any
) -> tuple[str | None, int | None, int | None]:
    """The metrics sink's kind and its points written and dropped over the run.

    The run's own final counts (meta.json ``sink``, after the last flush) when present;
    otherwise each worker's last health sample, summed (their counters are cumulative).
    """
    if isinstance(sink, dict):
        return _text(sink.get("kind")), sink.get("points_written"), sink.get("points_dropped")
    last: dict[str, HealthRecord] = {}
    for record in health:
        if record.tags.worker not in last or record.ts >= last[record.tags.worker].ts:
            last[record.tags.worker] = record
    if not any(r.points_written or r.points_dropped for r in last.values()):
        return None, None, None
    written = sum(r.points_written for r in last.values())
    return None, written, sum(r.points_dropped for r in last.values())


def _by_worker(health: Sequence[HealthRecord]) -> dict[str, dict[str, Any]]:
    """Each load-generator process's own figures, by its ``worker`` tag."""
    samples: dict[str, list[HealthRecord]] = defaultdict(list)
    for record in health:
        samples[record.tags.worker].append(record)
    return {
        worker: {
            "samples": len(records),
            "users_max": max(r.users for r in records),
            "turns_per_s_mean": rounded(mean(r.turns_per_s for r in records), 2),
            "cpu_percent_mean": rounded(mean(r.cpu_percent for r in records), 1),
            "cpu_percent_max": rounded(max(r.cpu_percent for r in records), 1),
            "lag_ms_p99_max": rounded(max(r.lag_ms_p99 for r in records), _MS),
            "lag_ms_max": rounded(max(r.lag_ms_max for r in records), _MS),
            "saturated_samples": sum(r.saturated for r in records),
        }
        for worker, records in sorted(samples.items())
    }


def _rig_health(
    health: Sequence[HealthRecord], sink: Any = None
) -> tuple[dict[str, Any], list[str]]:
    saturated = [record for record in health if record.saturated]
    sink_kind, points_written, points_dropped = _sink_points(health, sink)
    figures = {
        "samples": len(health),
        "workers": len({record.tags.worker for record in health}),
        "lag_ms_p99_max": rounded(max((r.lag_ms_p99 for r in health), default=None), _MS),
        "lag_ms_max": rounded(max((r.lag_ms_max for r in health), default=None), _MS),
        "cpu_percent_mean": rounded(mean(r.cpu_percent for r in health), 1),
        "cpu_percent_max": rounded(max((r.cpu_percent for r in health), default=None), 1),
        "saturated": bool(saturated),
        "saturated_samples": len(saturated),
        "by_worker": _by_worker(health),
        "sink": sink_kind,
        "points_written": points_written,
        "points_dropped": points_dropped,
    }
    warnings = []
    if not health:
        warnings.append(
            "no load-generator health records (health.jsonl): "
            "cannot tell whether latency figures are reliable"
        )
    if saturated:
        workers = ", ".join(sorted({record.tags.worker for record in saturated}))
        warnings.append(
            f"load generator saturated in {len(saturated)} of {len(health)} health samples "
            f"(worker {workers}): latency figures unreliable; "
            "run more workers or fewer users per worker"
        )
    if points_dropped:
        made = (points_written or 0) + points_dropped
        warnings.append(
            f"the metrics sink dropped {points_dropped} points of {made} (its buffer was "
            "full, InfluxDB refused them, or InfluxDB could not be reached before the "
            "final flush's deadline): InfluxDB figures are incomplete; the run directory "
            "is complete"
        )
    return figures, warnings


def _twin_warnings(twins: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What makes a direct twin's TTFT no reference: no answered turns, failed turns."""
    warnings = []
    for name, figures in twins.items():
        if figures["successful_turns"] == 0:
            warnings.append(f"direct twin of {name}: no successful turns, so no added latency")
        if figures["errors"]:
            warnings.append(
                f"direct twin of {name}: {figures['errors']} of {figures['turns']} turns failed"
            )
    return warnings


def _warnings(transports: Mapping[str, Mapping[str, Any]]) -> list[str]:
    warnings = []
    if transports and BASELINE not in transports:
        warnings.append(
            f"{BASELINE} was not run: no comparison (every ratio is relative to {BASELINE})"
        )
    for name, figures in transports.items():
        if figures["tasks"] == 0:
            warnings.append(f"{name}: no completed tasks, so its per-task figures are null")
        elif figures["tasks"] < FEW_TASKS:
            warnings.append(
                f"{name}: only {figures['tasks']} completed tasks; per-task figures and their "
                "deltas are noisy (run longer or with more users)"
            )
        if figures["tasks_failed"]:
            total = figures["tasks"] + figures["tasks_failed"]
            warnings.append(f"{name}: {figures['tasks_failed']} of {total} tasks failed")
        if figures["errors"]:
            warnings.append(
                f"{name}: {figures['errors']} of {figures['turns']} turns failed (error or timeout)"
            )
        if figures["rate_limited"] or figures["rate_limit_hits"]:
            warnings.append(
                f"{name}: {figures['rate_limit_hits']} rate-limit hits, "
                f"{figures['rate_limited']} turns gave up rate-limited; "
                "retries after a hit lengthen task times"
            )
    return warnings
