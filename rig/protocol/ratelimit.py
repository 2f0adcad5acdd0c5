"""Rate limits on the wire, formatted (servers) and parsed (clients) from one definition.

What a refusal carries, and what each part means:

* HTTP status 429 (over WebSocket: an ``error`` event with ``status: 429``) and the error
  ``code`` :data:`RATE_LIMIT_CODE` (``rate_limit_exceeded``): this is a rate limit. The
  OpenAI SDK raises its ordinary ``RateLimitError`` for it.
* The error's ``type`` names the limit kind: ``requests`` or ``tokens`` as OpenAI sends
  them, and - our choice, for limits OpenAI does not document - ``inflight`` (responses
  in flight) and ``connections`` (open WebSocket connections).
* ``request_too_large: true`` in the error object (:data:`TOO_LARGE_FIELD`, ours) says the
  request alone exceeds the bucket, so waiting cannot help; such an answer carries no
  ``retry-after``.
* Headers, over HTTP and repeated in a WebSocket error's ``error.headers``:
  ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, ``retry-after`` (whole
  seconds, rounded up) and ``retry-after-ms``.

The message is prose for people; nothing here reads it. A body without our fields (a real
OpenAI endpoint) parses too: an unknown or missing ``type`` counts as ``requests`` (or the
caller's default: a refused WebSocket handshake is about connections), and without
``request_too_large`` a refusal counts as one that waiting can help.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rig.protocol.errors import RateLimitError

__all__ = [
    "BUCKET_KINDS",
    "LIMIT_KINDS",
    "RATE_LIMIT_CODE",
    "RETRY_AFTER",
    "RETRY_AFTER_MS",
    "TOO_LARGE_FIELD",
    "LimitExceededError",
    "LimitKind",
    "RateLimitInfo",
    "bucket_headers",
    "format_duration",
    "is_rate_limit",
    "limit_header",
    "parse_rate_limit",
    "remaining_header",
    "reset_header",
    "retry_after_headers",
]

LimitKind = Literal["requests", "tokens", "inflight", "connections"]
LIMIT_KINDS: tuple[LimitKind, ...] = ("requests", "tokens", "inflight", "connections")
"""What can refuse a caller; the error's ``type``."""
BUCKET_KINDS: tuple[LimitKind, ...] = ("requests", "tokens")
"""The kinds with per-minute buckets and ``x-ratelimit-*`` headers."""

RATE_LIMIT_CODE = "rate_limit_exceeded"
"""The error ``code`` of every rate-limit refusal."""
RETRY_AFTER = "retry-after"
RETRY_AFTER_MS = "retry-after-ms"
TOO_LARGE_FIELD = "request_too_large"
"""Error field (ours): ``true`` when waiting cannot help, the request exceeds the bucket."""


def limit_header(kind: str) -> str:
    """``x-ratelimit-limit-<kind>``: the per-minute limit."""
    return f"x-ratelimit-limit-{kind}"


def remaining_header(kind: str) -> str:
    """``x-ratelimit-remaining-<kind>``: what is left in the bucket."""
    return f"x-ratelimit-remaining-{kind}"


def reset_header(kind: str) -> str:
    """``x-ratelimit-reset-<kind>``: when the bucket is full again (a Go duration)."""
    return f"x-ratelimit-reset-{kind}"


def format_duration(seconds: float) -> str:
    """A wait as OpenAI's headers and messages write it (Go durations): ``20ms``, ``1s``,
    ``1.5s``, ``6m0s``, ``1h2m3.5s``; rounded up to the millisecond."""
    ms = math.ceil(round(seconds * 1000, 6)) if seconds > 0 else 0
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def bucket_headers(kind: str, limit: int, remaining: int, reset_s: float) -> dict[str, str]:
    """The three ``x-ratelimit-*`` headers of one bucket."""
    return {
        limit_header(kind): str(limit),
        remaining_header(kind): str(max(0, remaining)),
        reset_header(kind): format_duration(reset_s),
    }


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, rounded up, at least 1) and ``retry-after-ms``."""
    return {
        RETRY_AFTER: str(max(1, math.ceil(seconds))),
        RETRY_AFTER_MS: str(max(1, math.ceil(seconds * 1000))),
    }


class LimitExceededError(RateLimitError):
    """A rate-limit refusal with its kind in ``type`` and, when waiting cannot help,
    ``request_too_large: true`` in the error object."""

    def __init__(
        self,
        message: str,
        *,
        kind: LimitKind,
        headers: Mapping[str, str] | None = None,
        too_large: bool = False,
    ):
        super().__init__(message, kind=kind, headers=dict(headers or {}), code=RATE_LIMIT_CODE)
        self.too_large = too_large

    def to_dict(self) -> dict[str, Any]:
        """The inner ``error`` object, with :data:`TOO_LARGE_FIELD` when it applies."""
        error = super().to_dict()
        if self.too_large:
            error[TOO_LARGE_FIELD] = True
        return error


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a client learns from a refusal."""

    limit: LimitKind
    retry_after_s: float | None
    """How long the target asked the client to wait (``None``: not said)."""
    remaining: int
    """What is left of that limit's bucket (-1: not said)."""
    retryable: bool
    """``False`` when waiting cannot help (the request exceeds the bucket)."""


def is_rate_limit(status: int | None, code: str | None) -> bool:
    """Whether an error answer is a rate-limit refusal."""
    return status == 429 or code == RATE_LIMIT_CODE


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_rate_limit(
    error: Mapping[str, Any], headers: Mapping[str, Any] | None, default: LimitKind = "requests"
) -> RateLimitInfo:
    """Read a refusal's error object and headers (HTTP headers, or a WebSocket error's
    ``error.headers``); ``default`` is the kind when ``type`` names none of ours."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    kind = error.get("type")
    limit: LimitKind = kind if kind in LIMIT_KINDS else default
    wait_ms = _number(lowered.get(RETRY_AFTER_MS))
    if wait_ms is None and (seconds := _number(lowered.get(RETRY_AFTER))) is not None:
        wait_ms = seconds * 1000
    bucket = limit if limit in BUCKET_KINDS else "requests"
    remaining = _number(lowered.get(remaining_header(bucket)))
    return RateLimitInfo(
        limit=limit,
        retry_after_s=wait_ms / 1000 if wait_ms is not None else None,
        remaining=int(remaining) if remaining is not None else -1,
        retryable=error.get(TOO_LARGE_FIELD) is not True,
    )
