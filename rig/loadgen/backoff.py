"""What a session does when a rate limit rejects a turn: the retry policy.

``--retry-policy`` picks one:

* ``backoff`` (default): honour the target's ``retry-after`` (or ``retry-after-ms``), else
  wait ``base`` seconds doubling per attempt, with full jitter, never more than ``cap``,
  for at most ``attempts`` retries: ``backoff:base=0.5,cap=30,attempts=8``. The jitter
  keeps sessions rejected together from retrying together (AWS's "full jitter");
* ``fail-fast``: no retry; the turn ends ``rate_limited`` and the task fails;
* ``fixed:attempts=N,wait=S``: N retries, S seconds apart (``retry-after`` when larger).

Every rejected attempt becomes a ``ratelimit`` record; the waiting is part of the turn's
time (and so the task's), because the agent waits it.

``--task-backoff`` (:class:`TaskBackoff`) is the other wait: after a task that failed
(refused, timed out, broken answer), a session waits before starting the next one, ``base``
seconds doubling per consecutive failed task up to ``cap`` (``base=1,cap=30``, the
default), each wait drawn between half and all of that ("equal jitter": sessions that
failed together spread out, yet each waits at least half). A task that succeeds resets it;
``off`` starts the next task at once. Without it a dead target makes every session a tight
loop of connection attempts (about 560 a second per transport).

``--stream-idle-timeout``, ``--stream-retries`` and ``--ws-fallback`` (:class:`StreamPolicy`)
say what an agent does when a connection breaks under a turn, as Codex does (its
``stream_idle_timeout_ms``, ``stream_max_retries`` and WebSocket-to-HTTPS fallback): a
stream silent for the idle timeout ends its attempt; an attempt whose connection broke
(reset, closed, refused, idle) is repeated after 0.2 s doubling per retry (jittered by 10%),
at most ``retries`` times, then the turn gives up; after ``ws_fallback`` failed WebSocket
attempts in a row a WebSocket session continues over HTTP with the full context.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rig.errors import RigError

__all__ = [
    "DEFAULT_STREAM_POLICY",
    "DEFAULT_TASK_BACKOFF",
    "RetryPolicy",
    "RetryPolicyError",
    "StreamPolicy",
    "TaskBackoff",
    "TaskBackoffError",
    "parse_retry_policy",
    "parse_task_backoff",
]


class RetryPolicyError(RigError, ValueError):
    """A ``--retry-policy`` value that cannot be used."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry a rate-limited turn, and how long to wait before each."""

    name: str = "backoff"
    attempts: int = 8
    base_s: float = 0.5
    cap_s: float = 30.0
    fixed_s: float = 1.0

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based); ``None``: give up."""
        if self.name == "fail-fast" or attempt > self.attempts:
            return None
        if self.name == "fixed":
            return max(self.fixed_s, retry_after_s or 0.0)
        if retry_after_s is not None and retry_after_s >= 0:
            # The server's figure, with a little jitter so rejected sessions spread out.
            return min(self.cap_s, retry_after_s * rng.uniform(1.0, 1.2))
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


_EXAMPLES = "backoff:base=0.5,cap=30,attempts=8 | fail-fast | fixed:attempts=3,wait=1"


def parse_retry_policy(value: str) -> RetryPolicy:
    """``--retry-policy`` as a :class:`RetryPolicy`; a clear error otherwise."""
    name, _, rest = value.strip().partition(":")
    keys = {
        "backoff": {"base": "base_s", "cap": "cap_s", "attempts": "attempts"},
        "fixed": {"attempts": "attempts", "wait": "fixed_s"},
        "fail-fast": {},
    }
    if name not in keys:
        raise RetryPolicyError(f"--retry-policy {value!r}: unknown policy; use {_EXAMPLES}")
    fields: dict[str, float | int] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key not in keys[name]:
            raise RetryPolicyError(
                f"--retry-policy {value!r}: {part!r} not understood; use {_EXAMPLES}"
            )
        try:
            number = float(raw.rstrip("s"))
        except ValueError:
            raise RetryPolicyError(
                f"--retry-policy {value!r}: {key}={raw!r} is not a number"
            ) from None
        if number < 0 or (key == "attempts" and number != int(number)):
            kind = "integer" if key == "attempts" else "number"
            raise RetryPolicyError(f"--retry-policy {value!r}: {key} must be a non-negative {kind}")
        fields[keys[name][key]] = int(number) if key == "attempts" else number
    if name == "fail-fast":
        return RetryPolicy(name="fail-fast", attempts=0)
    if name == "fixed":
        return RetryPolicy(
            name="fixed",
            attempts=int(fields.get("attempts", 3)),
            fixed_s=float(fields.get("fixed_s", 1.0)),
        )
    return RetryPolicy(
        name="backoff",
        attempts=int(fields.get("attempts", 8)),
        base_s=float(fields.get("base_s", 0.5)),
        cap_s=float(fields.get("cap_s", 30.0)),
    )


class TaskBackoffError(RigError, ValueError):
    """A ``--task-backoff`` value that cannot be used."""


@dataclass(frozen=True, slots=True)
class TaskBackoff:
    """How long a session waits before its next task after consecutive failed tasks."""

    base_s: float = 1.0
    cap_s: float = 30.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` failed tasks in a row (0: none failed):
        between half and all of ``min(cap, base * 2 ** (failures - 1))``."""
        if failures <= 0 or self.base_s <= 0:
            return 0.0
        ceiling = min(self.cap_s, self.base_s * 2 ** min(failures - 1, 62))
        return ceiling * rng.uniform(0.5, 1.0)


DEFAULT_TASK_BACKOFF = TaskBackoff()
"""1 s after the first failed task, doubling to 30 s (``--task-backoff base=1,cap=30``)."""

_TASK_EXAMPLES = "base=1,cap=30 (seconds) | off"


def parse_task_backoff(value: str) -> TaskBackoff:
    """``--task-backoff`` as a :class:`TaskBackoff`; a clear error otherwise."""
    text = value.strip()
    if text in ("off", "0"):
        return TaskBackoff(base_s=0.0, cap_s=0.0)
    fields = {"base": DEFAULT_TASK_BACKOFF.base_s, "cap": DEFAULT_TASK_BACKOFF.cap_s}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key not in fields:
            raise TaskBackoffError(
                f"--task-backoff {value!r}: {part!r} not understood; use {_TASK_EXAMPLES}"
            )
        try:
            number = float(raw.rstrip("s"))
        except ValueError:
            raise TaskBackoffError(
                f"--task-backoff {value!r}: {key}={raw!r} is not a number"
            ) from None
        if not number >= 0:
            raise TaskBackoffError(f"--task-backoff {value!r}: {key} must be >= 0")
        fields[key] = number
    if fields["cap"] < fields["base"]:
        raise TaskBackoffError(f"--task-backoff {value!r}: cap must be at least base")
    return TaskBackoff(base_s=fields["base"], cap_s=fields["cap"])


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """How an agent bounds a stream and repeats one whose connection broke; Codex's
    defaults (``stream_idle_timeout_ms`` 300,000, ``stream_max_retries`` 5, its back-off
    of 200 ms doubling per retry with a jitter of 10%)."""

    idle_timeout_s: float = 300.0
    """Seconds without a byte from the target (while the client is not writing) that end an
    attempt as a ``timeout``; 0: no idle timeout (the request timeout still bounds a turn)."""
    retries: int = 5
    """Attempts repeated after a broken connection before the turn gives up."""
    base_s: float = 0.2
    """The wait before the first repeat; doubled for each next one."""
    ws_fallback: int = 0
    """Failed WebSocket attempts in a row after which a WebSocket session continues over
    HTTP with the full context; 0: never (a WebSocket cell stays WebSocket)."""

    def delay(self, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait before repeat number ``attempt`` (1-based); ``None``: give up."""
        if attempt > self.retries:
            return None
        return self.base_s * 2 ** min(attempt - 1, 62) * rng.uniform(0.9, 1.1)


DEFAULT_STREAM_POLICY = StreamPolicy()
"""Codex's: a 300 s idle timeout, 5 repeats 0.2-3.2 s apart, no fallback."""
