"""Rate limits of the mock provider: per API key and per organisation, as token buckets.

Four limits per scope (an API key, or an organisation grouping keys), each 0 = unlimited:

* ``rpm`` - requests per minute: one per ``POST /v1/responses``, ``response.create`` or
  chat completion;
* ``tpm`` - tokens per minute, input plus output as the mock's ``usage`` reports them (a
  continuation's input includes the whole resumed context);
* ``max_inflight`` - responses between admission and their terminal event;
* ``max_connections`` - open WebSocket connections.

Requests and tokens are token buckets that refill continuously at ``limit / 60`` per second
up to ``burst x limit`` (``burst`` 1.0, the default, holds one minute's worth, as OpenAI
does). A response needs one request and its input tokens in every bucket that applies to
it; its output tokens are debited when it ends, which may leave the token bucket in debt
(the next request waits for the refill). A rejected attempt costs nothing.

The maths here is pure and takes the time as an argument; :class:`MemoryLimitStore` holds
the state of one process and :class:`RedisLimitStore` shares it across processes and
replicas with one Lua script that does the same arithmetic atomically on Redis' clock.
:class:`RateLimiter` ties them to callers and renders the OpenAI headers and errors.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rig.errors import RigError
from rig.protocol.ratelimit import (
    LIMIT_KINDS,
    LimitExceededError,
    LimitKind,
    bucket_headers,
    format_duration,
    retry_after_headers,
)

__all__ = [
    "LIMIT_KINDS",
    "LimitPolicy",
    "LimitStore",
    "Limits",
    "LimitsFileError",
    "MemoryLimitStore",
    "RateLimiter",
    "RedisLimitStore",
    "Rejection",
    "Scope",
    "ScopeState",
    "Verdict",
    "admit_response",
    "check_connection",
    "check_response",
    "format_duration",
    "load_limits_file",
    "open_limit_store",
    "rate_limit_error",
    "rate_limit_headers",
    "refill",
]

RATE_LIMITS_URL = "https://platform.openai.com/account/rate-limits"


@dataclass(frozen=True, slots=True)
class Limits:
    """One scope's limits; 0 means unlimited. ``burst`` is the bucket size as a fraction
    (or multiple) of a minute's worth."""

    rpm: int = 0
    tpm: int = 0
    max_connections: int = 0
    max_inflight: int = 0
    burst: float = 1.0

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return bool(self.rpm or self.tpm or self.max_connections or self.max_inflight)

    @property
    def request_capacity(self) -> float:
        """Requests the bucket holds when full (at least one, or nothing could pass)."""
        return max(1.0, self.rpm * self.burst)

    @property
    def token_capacity(self) -> float:
        """Tokens the bucket holds when full."""
        return max(1.0, self.tpm * self.burst)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom limits apply to: one API key or one organisation."""

    id: str
    """Storage id, shared by every process: ``key:<sha256 prefix>``, ``org:<id>``."""
    label: str
    """Non-secret name for messages: the key's label or the organisation's id."""
    kind: Literal["key", "org"]
    limits: Limits

    @property
    def where(self) -> str:
        """The scope as a rate-limit message names it."""
        return f"organization {self.label}" if self.kind == "org" else f"API key {self.label}"


@dataclass(slots=True)
class ScopeState:
    """A scope's two buckets and two gauges at time ``updated``."""

    requests: float
    tokens: float
    inflight: int = 0
    connections: int = 0
    updated: float = 0.0

    @classmethod
    def full(cls, limits: Limits, now: float) -> ScopeState:
        """A scope nobody has used yet: both buckets full."""
        return cls(limits.request_capacity, limits.token_capacity, updated=now)


@dataclass(frozen=True, slots=True)
class Rejection:
    """The limit that refused a response or a connection, and by how much."""

    scope: Scope
    kind: LimitKind
    limit: int
    used: int
    requested: int
    retry_after_s: float | None
    """``None`` when waiting alone cannot help (a request larger than the token bucket) or
    the wait is unknown (concurrency limits: until something in flight ends)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A limiter's answer: the scopes charged, the headers to send, and any refusal."""

    scopes: tuple[Scope, ...]
    headers: dict[str, str]
    error: LimitExceededError | None = None
    rejection: Rejection | None = None


# -- the maths ------------------------------------------------------------------------------


def refill(state: ScopeState, limits: Limits, now: float) -> None:
    """Bring ``state``'s buckets forward to ``now`` (a clock going backwards adds nothing)."""
    elapsed = now - state.updated
    if elapsed <= 0:
        return
    if limits.rpm:
        state.requests = min(limits.request_capacity, state.requests + elapsed * limits.rpm / 60)
    if limits.tpm:
        state.tokens = min(limits.token_capacity, state.tokens + elapsed * limits.tpm / 60)
    state.updated = now


def _wait_s(level: float, need: float, per_minute: int) -> float:
    return max(0.0, need - level) * 60.0 / per_minute


def _binding(candidates: list[Rejection]) -> Rejection | None:
    """The refusal to report: one that waiting cannot fix, else the longest wait."""
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda r: math.inf if r.retry_after_s is None else r.retry_after_s,
    )


def check_response(
    scopes: Sequence[Scope], states: Sequence[ScopeState], tokens: int
) -> Rejection | None:
    """Why a response asking for ``tokens`` input tokens cannot start now, or ``None``.

    Every scope must have room in every bucket; of several refusals the binding one wins.
    """
    found: list[Rejection] = []
    for scope, state in zip(scopes, states, strict=True):
        limits = scope.limits
        if limits.max_inflight and state.inflight >= limits.max_inflight:
            found.append(Rejection(scope, "inflight", limits.max_inflight, state.inflight, 1, None))
        if limits.rpm and state.requests < 1:
            used = round(limits.request_capacity - state.requests)
            found.append(
                Rejection(
                    scope, "requests", limits.rpm, used, 1, _wait_s(state.requests, 1, limits.rpm)
                )
            )
        if limits.tpm and state.tokens < tokens:
            used = round(limits.token_capacity - state.tokens)
            # A request larger than the bucket can never pass: no wait helps.
            wait = (
                _wait_s(state.tokens, tokens, limits.tpm)
                if tokens <= limits.token_capacity
                else None
            )
            found.append(Rejection(scope, "tokens", limits.tpm, used, tokens, wait))
    return _binding(found)


def admit_response(
    scopes: Sequence[Scope], states: Sequence[ScopeState], tokens: int
) -> Rejection | None:
    """Check, and when admitted debit one request and ``tokens`` and count it in flight."""
    rejection = check_response(scopes, states, tokens)
    if rejection is None:
        for scope, state in zip(scopes, states, strict=True):
            if scope.limits.rpm:
                state.requests -= 1
            if scope.limits.tpm:
                state.tokens -= tokens
            state.inflight += 1
    return rejection


def settle_response(scopes: Sequence[Scope], states: Sequence[ScopeState], tokens: int) -> None:
    """A response ended: debit its output ``tokens`` (debt allowed), release its slot."""
    for scope, state in zip(scopes, states, strict=True):
        if scope.limits.tpm:
            state.tokens -= tokens
        state.inflight = max(0, state.inflight - 1)


def check_connection(scopes: Sequence[Scope], states: Sequence[ScopeState]) -> Rejection | None:
    """Why another WebSocket connection cannot open now, or ``None``."""
    found = [
        Rejection(scope, "connections", limit, state.connections, 1, None)
        for scope, state in zip(scopes, states, strict=True)
        if (limit := scope.limits.max_connections) and state.connections >= limit
    ]
    return _binding(found)


# -- what the client sees -------------------------------------------------------------------


def rate_limit_headers(
    scopes: Sequence[Scope], states: Sequence[ScopeState], retry_after_s: float | None = None
) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` of the tightest scope (the
    one with the least remaining) for each configured kind; ``retry-after`` (whole seconds,
    rounded up) and ``retry-after-ms`` when a wait is known."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        tightest: tuple[float, int, float] | None = None  # level, per minute, seconds to full
        for scope, state in zip(scopes, states, strict=True):
            limits = scope.limits
            per_minute = limits.rpm if kind == "requests" else limits.tpm
            if not per_minute:
                continue
            level = state.requests if kind == "requests" else state.tokens
            capacity = limits.request_capacity if kind == "requests" else limits.token_capacity
            reset = _wait_s(level, capacity, per_minute)
            if tightest is None or level < tightest[0]:
                tightest = (level, per_minute, reset)
        if tightest is not None:
            level, per_minute, reset = tightest
            headers.update(bucket_headers(kind, per_minute, math.floor(level), reset))
    if retry_after_s is not None:
        headers.update(retry_after_headers(retry_after_s))
    return headers


def rate_limit_error(
    rejection: Rejection, model: str | None, headers: Mapping[str, str]
) -> LimitExceededError:
    """The OpenAI-shaped 429 for ``rejection`` (:mod:`rig.protocol.ratelimit` says which
    fields carry the kind and whether waiting helps); its message, for people, names the
    scope by label only."""
    r = rejection
    subject = f"{model} in {r.scope.where}" if model else r.scope.where
    visit = f"Visit {RATE_LIMITS_URL} to learn more."
    if r.kind == "requests":
        message = (
            f"Rate limit reached for {subject} on requests per min (RPM): Limit {r.limit}, "
            f"Used {r.used}, Requested 1. "
            f"Please try again in {format_duration(r.retry_after_s or 0)}. {visit}"
        )
    elif r.kind == "tokens" and r.retry_after_s is None:
        message = (
            f"Request too large for {subject} on tokens per min (TPM): Limit {r.limit}, "
            f"Requested {r.requested}. The input or output tokens must be reduced in order "
            f"to run successfully. {visit}"
        )
    elif r.kind == "tokens":
        message = (
            f"Rate limit reached for {subject} on tokens per min (TPM): Limit {r.limit}, "
            f"Used {r.used}, Requested {r.requested}. "
            f"Please try again in {format_duration(r.retry_after_s or 0)}. {visit}"
        )
    elif r.kind == "inflight":
        message = (
            f"Too many concurrent requests for {subject}: Limit {r.limit} responses in "
            f"flight, Used {r.used}, Requested 1. Retry when a response has finished."
        )
    else:
        message = (
            f"Too many WebSocket connections for {r.scope.where}: Limit {r.limit} open "
            f"connections, Used {r.used}, Requested 1. Close a connection, or retry when "
            "one has closed."
        )
    too_large = r.kind == "tokens" and r.retry_after_s is None
    return LimitExceededError(message, kind=r.kind, headers=headers, too_large=too_large)


# -- who is limited -------------------------------------------------------------------------


class LimitsFileError(RigError, ValueError):
    """The limits file is unreadable or invalid; the message names the file and field."""


class _LimitFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    max_connections: int | None = Field(default=None, ge=0)
    max_inflight: int | None = Field(default=None, ge=0)
    burst: float | None = Field(default=None, gt=0)

    def over(self, base: Limits) -> Limits:
        """``base`` with the fields this entry sets."""
        fields = self.model_dump(include=set(_LimitFields.model_fields), exclude_none=True)
        return replace(base, **fields)


class _KeyEntry(_LimitFields):
    key: str | None = Field(default=None, min_length=1, repr=False)
    key_env: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    org: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> _KeyEntry:
        if (self.key is None) == (self.key_env is None):
            raise ValueError("give exactly one of 'key' (the secret) or 'key_env' (a variable)")
        return self


class _LimitsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[_KeyEntry] = Field(default_factory=list)
    organizations: dict[str, _LimitFields] = Field(default_factory=dict)


def _key_id(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _key_label(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


ANONYMOUS = "anonymous"


@dataclass
class LimitPolicy:
    """Which scopes apply to a caller: its key's, and its organisation's if it has one.

    ``defaults`` (the flags) apply per key to every key the file does not list; a listed
    key overrides the fields it sets. Without authentication every caller not listed in
    the file shares one anonymous key.
    """

    defaults: Limits = field(default_factory=Limits)
    keys: dict[str, tuple[Scope, ...]] = field(default_factory=dict, repr=False)
    organizations: dict[str, Scope] = field(default_factory=dict)
    authenticated: bool = False

    @property
    def active(self) -> bool:
        """Whether any caller has any limit."""
        return (
            self.defaults.active
            or any(s for s in self.keys.values())
            or any(o.limits.active for o in self.organizations.values())
        )

    def scopes_for(self, token: str | None) -> tuple[Scope, ...]:
        """The scopes limiting the caller presenting ``token`` (only those with limits)."""
        if token is not None:
            known = self.keys.get(token)
            if known is not None:
                return known
            if self.authenticated:
                scopes = self._default_scopes(_key_id(token), _key_label(token))
                self.keys[token] = scopes  # tokens reaching here passed authentication
                return scopes
        return self._default_scopes("key:" + ANONYMOUS, ANONYMOUS)

    def _default_scopes(self, scope_id: str, label: str) -> tuple[Scope, ...]:
        if not self.defaults.active:
            return ()
        return (Scope(scope_id, label, "key", self.defaults),)


def load_limits_file(
    path: str | os.PathLike[str] | None,
    defaults: Limits,
    *,
    authenticated: bool = False,
    environ: Mapping[str, str] | None = None,
) -> LimitPolicy:
    """The policy from the flags (``defaults``) and, if given, a YAML limits file: a
    ``keys`` list (each entry ``key`` or ``key_env``, optional ``label`` and ``org``, any of
    ``rpm``, ``tpm``, ``max_connections``, ``max_inflight``, ``burst``; unset fields come
    from the flags) and an ``organizations`` mapping of id to limits (unset = unlimited).
    docs/architecture.md ("Rate limits") has an example.
    """
    policy = LimitPolicy(defaults=defaults, authenticated=authenticated)
    if path is None:
        return policy
    env = os.environ if environ is None else environ
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise LimitsFileError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise LimitsFileError(f"{source}: not valid YAML: {exc}") from None
    try:
        parsed = _LimitsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise LimitsFileError(
            f"{source}: {where.lstrip('.') or 'top level'}: {first['msg']}{more}"
        ) from None
    base_org = Limits(burst=defaults.burst)
    for org_id, fields in parsed.organizations.items():
        policy.organizations[org_id] = Scope("org:" + org_id, org_id, "org", fields.over(base_org))
    labels: set[str] = set()
    for i, entry in enumerate(parsed.keys):
        if entry.key is not None:
            key = entry.key
        else:
            key = env.get(entry.key_env or "", "")
            if not key:
                raise LimitsFileError(
                    f"{source}: keys[{i}].key_env: environment variable {entry.key_env} is not set"
                )
        if key in policy.keys:
            raise LimitsFileError(f"{source}: keys[{i}]: the same key is listed twice")
        label = entry.label or _key_label(key)
        if label in labels:
            raise LimitsFileError(f"{source}: keys[{i}].label: '{label}' is used twice")
        labels.add(label)
        scopes: list[Scope] = []
        limits = entry.over(defaults)
        if limits.active:
            scopes.append(Scope(_key_id(key), label, "key", limits))
        if entry.org is not None:
            org = policy.organizations.get(entry.org)
            if org is None:
                raise LimitsFileError(
                    f"{source}: keys[{i}].org: unknown organization '{entry.org}'; define "
                    "it under 'organizations'"
                )
            if org.limits.active:
                scopes.append(org)
        policy.keys[key] = tuple(scopes)
    return policy


# -- where the state lives ------------------------------------------------------------------


class LimitStore(Protocol):
    """Scope state behind one interface: in process, or shared through Redis."""

    async def admit(
        self, scopes: Sequence[Scope], tokens: int
    ) -> tuple[Rejection | None, list[ScopeState]]:
        """Admit a response (debiting it) or say why not; the states after the decision."""
        ...

    async def settle(self, scopes: Sequence[Scope], tokens: int) -> None:
        """A response ended with ``tokens`` output tokens."""
        ...

    async def connect(self, scopes: Sequence[Scope]) -> Rejection | None:
        """Count a new WebSocket connection, or say why it cannot open."""
        ...

    async def disconnect(self, scopes: Sequence[Scope]) -> None:
        """A counted connection closed."""
        ...

    async def ping(self) -> None:
        """Fail now if the state is unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryLimitStore:
    """State of one process (each ``--workers`` process limits on its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._states: dict[str, ScopeState] = {}

    def states(self, scopes: Sequence[Scope]) -> list[ScopeState]:
        """The scopes' states, refilled to now."""
        now = self.clock()
        states = []
        for scope in scopes:
            state = self._states.get(scope.id)
            if state is None:
                state = self._states[scope.id] = ScopeState.full(scope.limits, now)
            else:
                refill(state, scope.limits, now)
            states.append(state)
        return states

    async def admit(
        self, scopes: Sequence[Scope], tokens: int
    ) -> tuple[Rejection | None, list[ScopeState]]:
        """See :meth:`LimitStore.admit`."""
        states = self.states(scopes)
        return admit_response(scopes, states, tokens), states

    async def settle(self, scopes: Sequence[Scope], tokens: int) -> None:
        """See :meth:`LimitStore.settle`."""
        settle_response(scopes, self.states(scopes), tokens)

    async def connect(self, scopes: Sequence[Scope]) -> Rejection | None:
        """See :meth:`LimitStore.connect`."""
        states = self.states(scopes)
        rejection = check_connection(scopes, states)
        if rejection is None:
            for state in states:
                state.connections += 1
        return rejection

    async def disconnect(self, scopes: Sequence[Scope]) -> None:
        """See :meth:`LimitStore.disconnect`."""
        for state in self.states(scopes):
            state.connections = max(0, state.connections - 1)

    async def ping(self) -> None:
        """Always reachable."""

    async def close(self) -> None:
        """Nothing to release."""


_LUA = """
-- KEYS: one hash per scope. ARGV: op, tokens, ttl, then 6 per scope:
-- rpm, tpm, request capacity, token capacity, max in flight, max connections.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op, tokens, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local s = {}
for i = 1, #KEYS do
  local b = 3 + (i - 1) * 6
  local x = {rpm = tonumber(ARGV[b + 1]), tpm = tonumber(ARGV[b + 2]),
             capr = tonumber(ARGV[b + 3]), capt = tonumber(ARGV[b + 4]),
             maxi = tonumber(ARGV[b + 5]), maxc = tonumber(ARGV[b + 6])}
  local v = redis.call('HMGET', KEYS[i], 'r', 't', 'i', 'c', 'u')
  x.r = tonumber(v[1]) or x.capr
  x.t = tonumber(v[2]) or x.capt
  x.i = tonumber(v[3]) or 0
  x.c = tonumber(v[4]) or 0
  local elapsed = now - (tonumber(v[5]) or now)
  if elapsed > 0 then
    if x.rpm > 0 then x.r = math.min(x.capr, x.r + elapsed * x.rpm / 60) end
    if x.tpm > 0 then x.t = math.min(x.capt, x.t + elapsed * x.tpm / 60) end
  end
  s[i] = x
end
local ok = 1
if op == 'admit' then
  for i = 1, #KEYS do
    local x = s[i]
    if (x.maxi > 0 and x.i >= x.maxi) or (x.rpm > 0 and x.r < 1)
        or (x.tpm > 0 and x.t < tokens) then ok = 0 end
  end
  if ok == 1 then
    for i = 1, #KEYS do
      local x = s[i]
      if x.rpm > 0 then x.r = x.r - 1 end
      if x.tpm > 0 then x.t = x.t - tokens end
      x.i = x.i + 1
    end
  end
elseif op == 'settle' then
  for i = 1, #KEYS do
    local x = s[i]
    if x.tpm > 0 then x.t = x.t - tokens end
    x.i = math.max(0, x.i - 1)
  end
elseif op == 'connect' then
  for i = 1, #KEYS do
    local x = s[i]
    if x.maxc > 0 and x.c >= x.maxc then ok = 0 end
  end
  if ok == 1 then for i = 1, #KEYS do s[i].c = s[i].c + 1 end end
elseif op == 'disconnect' then
  for i = 1, #KEYS do s[i].c = math.max(0, s[i].c - 1) end
end
local out = {ok}
for i = 1, #KEYS do
  local x = s[i]
  redis.call('HSET', KEYS[i], 'r', tostring(x.r), 't', tostring(x.t), 'i', x.i, 'c', x.c,
             'u', tostring(now))
  redis.call('EXPIRE', KEYS[i], ttl)
  table.insert(out, tostring(x.r))
  table.insert(out, tostring(x.t))
  table.insert(out, x.i)
  table.insert(out, x.c)
end
return out
"""


class RedisLimitStore:
    """State shared by every mock process and replica through Redis, on Redis' clock.

    One hash per scope (``rig:limits:<scope id>``, expiring ``ttl_s`` after its last use);
    each operation is one ``EVALSHA`` of a Lua script, so check-and-debit is atomic across
    the fleet. In-flight and connection gauges of a process that is killed (not stopped)
    stay counted until the hash expires.
    """

    def __init__(self, url: str, ttl_s: int = 3600, prefix: str = "rig:limits:"):
        import redis.asyncio as redis

        self.url = url
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_LUA)

    async def _run(
        self, op: str, scopes: Sequence[Scope], tokens: int = 0
    ) -> tuple[bool, list[ScopeState]]:
        args: list[Any] = [op, tokens, self.ttl_s]
        for scope in scopes:
            limits = scope.limits
            args += [
                limits.rpm,
                limits.tpm,
                repr(limits.request_capacity),
                repr(limits.token_capacity),
                limits.max_inflight,
                limits.max_connections,
            ]
        keys = [self.prefix + scope.id for scope in scopes]
        raw = await self._script(keys=keys, args=args)
        states = [
            ScopeState(float(raw[i]), float(raw[i + 1]), int(raw[i + 2]), int(raw[i + 3]))
            for i in range(1, len(raw), 4)
        ]
        return int(raw[0]) == 1, states

    async def admit(
        self, scopes: Sequence[Scope], tokens: int
    ) -> tuple[Rejection | None, list[ScopeState]]:
        """See :meth:`LimitStore.admit`; the reason is worked out from the same states."""
        ok, states = await self._run("admit", scopes, tokens)
        if ok:
            return None, states
        rejection = check_response(scopes, states, tokens)
        if rejection is None:  # cannot happen unless float rounding differs; refuse anyway
            rejection = Rejection(scopes[0], "requests", scopes[0].limits.rpm, 0, 1, 1.0)
        return rejection, states

    async def settle(self, scopes: Sequence[Scope], tokens: int) -> None:
        """See :meth:`LimitStore.settle`."""
        await self._run("settle", scopes, tokens)

    async def connect(self, scopes: Sequence[Scope]) -> Rejection | None:
        """See :meth:`LimitStore.connect`."""
        ok, states = await self._run("connect", scopes)
        return None if ok else check_connection(scopes, states)

    async def disconnect(self, scopes: Sequence[Scope]) -> None:
        """See :meth:`LimitStore.disconnect`."""
        await self._run("disconnect", scopes)

    async def ping(self) -> None:
        """Fail fast when Redis is unreachable."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def open_limit_store(url: str | None) -> LimitStore:
    """The limit state named by ``url``: ``None``/``memory`` or ``redis://...``."""
    if url is None or url in ("", "memory"):
        return MemoryLimitStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisLimitStore(url)
    raise ValueError(f"unknown limits store {url!r}: use 'memory' or a redis:// URL")


# -- the limiter the app calls --------------------------------------------------------------


class RateLimiter:
    """Admits responses and connections for callers, and says what to tell them."""

    def __init__(self, policy: LimitPolicy, store: LimitStore):
        self.policy = policy
        self.store = store

    def scopes_for(self, token: str | None) -> tuple[Scope, ...]:
        """The scopes limiting the caller presenting ``token``."""
        return self.policy.scopes_for(token)

    async def admit(self, scopes: tuple[Scope, ...], tokens: int, model: str | None) -> Verdict:
        """Admit one response with ``tokens`` input tokens, or refuse it with a 429."""
        if not scopes:
            return Verdict(scopes, {})
        rejection, states = await self.store.admit(scopes, tokens)
        if rejection is None:
            return Verdict(scopes, rate_limit_headers(scopes, states))
        headers = rate_limit_headers(scopes, states, rejection.retry_after_s)
        error = rate_limit_error(rejection, model, headers)
        return Verdict(scopes, headers, error, rejection)

    async def settle(self, scopes: tuple[Scope, ...], output_tokens: int) -> None:
        """An admitted response ended (completed, failed or abandoned)."""
        if scopes:
            await self.store.settle(scopes, output_tokens)

    async def connect(self, scopes: tuple[Scope, ...]) -> Verdict:
        """Admit one WebSocket connection, or refuse it with a 429."""
        if not scopes:
            return Verdict(scopes, {})
        rejection = await self.store.connect(scopes)
        if rejection is None:
            return Verdict(scopes, {})
        error = rate_limit_error(rejection, None, {})
        return Verdict(scopes, {}, error, rejection)

    async def disconnect(self, scopes: tuple[Scope, ...]) -> None:
        """An admitted connection closed."""
        if scopes:
            await self.store.disconnect(scopes)
