"""What ``rig gateway`` is told: where it listens, who may call it, where state lives, and
its upstreams (base URL, dialect, model mapping, the variable holding the key).

The same settings come from the command line or from a YAML file
(:func:`load_config_file`, ``rig gateway --config FILE``), whose keys are the fields of
:class:`GatewayConfig` and, under ``upstreams``, of :class:`UpstreamConfig`; under
``clients``, the client keys accepted and their organisations. ``examples/gateway.yaml``
shows every field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from rig.errors import RigError
from rig.serving.body import DEFAULT_BODY_TIMEOUT_S
from rig.serving.httpproto import DEFAULT_HEADER_TIMEOUT_S

__all__ = [
    "CHECK",
    "CLIENT_KEY_MODES",
    "DIALECTS",
    "PASS_THROUGH",
    "ConfigError",
    "GatewayConfig",
    "UpstreamConfig",
    "load_config_file",
    "parse_model_map",
]

DIALECTS = ("responses", "chat")
"""Upstream dialects: the Responses API (``store: false``, full ``input``) or Chat
Completions (full ``messages``)."""

CHECK = "check"
PASS_THROUGH = "pass-through"
CLIENT_KEY_MODES = (CHECK, PASS_THROUGH)
"""What the gateway does with a client's key: ``check`` it against the configured keys (any
caller when none) and call upstreams with their own keys, or ``pass-through``: send it to
the upstream as its ``Authorization``, so the upstream decides (listed keys, if any, are
still checked first)."""


class ConfigError(RigError, ValueError):
    """The gateway's configuration is wrong (the message says where and how to fix it)."""


def parse_model_map(pairs: Sequence[str]) -> dict[str, str]:
    """``["client=upstream", ...]`` as a mapping; raise :class:`ConfigError` on a bad pair."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        client, sep, upstream = pair.partition("=")
        if not sep or not client.strip() or not upstream.strip():
            raise ConfigError(f"--model-map {pair!r}: write CLIENT_MODEL=UPSTREAM_MODEL")
        mapping[client.strip()] = upstream.strip()
    return mapping


@dataclass(frozen=True, eq=False)
class UpstreamConfig:
    """One stateless provider behind the gateway (compared and hashed by identity: each
    configured upstream is its own, with its own connection pool)."""

    base_url: str
    """Its API base, e.g. ``https://api.openai.com/v1`` (``/responses`` or
    ``/chat/completions`` is appended)."""
    dialect: str = "responses"
    key_env: str = ""
    """Environment variable holding the upstream's API key (the key is read at start and
    never logged); empty: no ``Authorization`` header."""
    model_map: Mapping[str, str] = field(default_factory=dict)
    """Client model name -> upstream model name; unmapped names pass unchanged."""
    models: tuple[str, ...] = ()
    """Client model names routed here; empty: every model no other upstream names."""
    timeout_s: float = 120.0
    """Longest wait for the upstream's next bytes (and for its connection)."""
    max_in_flight: int = 128
    """Calls to this upstream running at once (and its connection pool's size); more
    wait their turn, first come first served. Bounds the gateway's work per call: a pool
    of a thousand busy connections cost it more CPU than the calls (docs/performance.md)."""
    encrypted_reasoning: bool = True
    """``responses`` dialect: ask for ``include: ["reasoning.encrypted_content"]`` (the
    upstream is called with ``store: false``, so a reasoning item is reusable in the next
    turn's context only with its encrypted content). Turn off for an upstream whose models
    refuse it ("Encrypted content is not supported with this model")."""
    http2: bool = False
    """Call it with HTTP/2 (httpx and ``h2``, :mod:`rig.gateway.http2`): over ``https://``
    where the upstream offers it (TLS ALPN), HTTP/1.1 where it does not; over ``http://``
    from the first byte (prior knowledge: the upstream must speak it). Fewer connections
    (calls multiplexed on one), several times the CPU per call of the gateway's own
    HTTP/1.1 client, which is used otherwise."""

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ConfigError(
                f"upstream {self.base_url}: dialect {self.dialect!r} is not one of "
                + ", ".join(DIALECTS)
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream {self.base_url!r}: give an http:// or https:// URL")
        if self.max_in_flight < 1:
            raise ConfigError(f"upstream {self.base_url}: max_in_flight must be at least 1")
        if not self.timeout_s > 0:
            raise ConfigError(f"upstream {self.base_url}: timeout {self.timeout_s} must be > 0")

    def key(self) -> str | None:
        """The upstream's API key from :attr:`key_env`; :class:`ConfigError` when it is
        named but not set."""
        if not self.key_env:
            return None
        value = os.environ.get(self.key_env)
        if not value:
            raise ConfigError(f"upstream {self.base_url}: {self.key_env} is not set")
        return value

    def upstream_model(self, model: str) -> str:
        """The name the upstream knows ``model`` by."""
        return self.model_map.get(model, model)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``rig gateway`` can be told."""

    upstreams: tuple[UpstreamConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8100
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    """Client keys accepted; empty: any caller (each key still owns what it creates)."""
    client_keys: str = CHECK
    """``check`` or ``pass-through`` (:data:`CLIENT_KEY_MODES`)."""
    key_organizations: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Client key -> organisation id: an organisation's keys share ownership of its
    responses (as the mock's limits file groups them)."""
    store: str | None = None
    """``memory`` (default) or ``redis://...``: where checkpoints (and with them the
    ``store=true`` responses) live."""
    store_ttl_s: int = 3600
    """How long a checkpoint, and a conversation held in memory, lives."""
    store_max_bytes: int = 256 * 1024 * 1024
    """Cap of the in-process checkpoints."""
    max_body_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 8 * 1024 * 1024
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """Seconds a connection may take to send a request's headers (then 408 and closed)."""
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    """Seconds a request body may stall between two reads (then 408 and closed)."""
    ws_max_age_s: float = 3600.0
    ws_ping_interval_s: float = 20.0
    """Seconds between keepalive pings (0: none); uvicorn's default."""
    ws_ping_timeout_s: float = 20.0
    """Seconds a pong may take before the WebSocket is closed with 1011 (0: never)."""
    ws_deflate: bool = True
    """permessage-deflate for clients that offer it (uvicorn's default and settings)."""
    memory_max_bytes: int = 1024 * 1024 * 1024
    """Cap of the conversations every WebSocket of the process holds."""
    compact_after_s: float = 10.0
    """Seconds a conversation waits unchanged before it is packed (zlib) in memory; 0:
    never."""
    checkpoint_timeout_s: float = 0.5
    drain_timeout_s: float = 30.0
    log_level: str = "warning"
    record: str | None = None
    """A directory: a trace of every session served is written there (docs/traces.md)."""
    keep_content: bool = False
    """With ``record``: the trace keeps instructions, tools and items."""

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ConfigError(
                "give at least one upstream (--upstream URL, or upstreams: in --config)"
            )
        if self.client_keys not in CLIENT_KEY_MODES:
            raise ConfigError(
                f"client_keys {self.client_keys!r} is not one of " + ", ".join(CLIENT_KEY_MODES)
            )
        if self.client_keys == PASS_THROUGH:
            for upstream in self.upstreams:
                if upstream.key_env:
                    raise ConfigError(
                        f"upstream {upstream.base_url}: with client_keys pass-through the "
                        f"client's key goes upstream; remove its key_env ({upstream.key_env})"
                    )
        routed: dict[str, str] = {}
        for upstream in self.upstreams:
            for model in upstream.models:
                if model in routed:
                    raise ConfigError(
                        f"model {model!r} is routed to two upstreams ({routed[model]} and "
                        f"{upstream.base_url}); name it under one upstream's models"
                    )
                routed[model] = upstream.base_url

    @property
    def pass_through(self) -> bool:
        """Clients' keys go to the upstream."""
        return self.client_keys == PASS_THROUGH

    def organization_of(self, key: str | None) -> str | None:
        """The organisation the configuration puts ``key`` in, if any."""
        return self.key_organizations.get(key) if key else None

    def upstream_for(self, model: str) -> UpstreamConfig:
        """The upstream serving client model ``model``: the one naming it, else the first
        that names none."""
        fallback = None
        for upstream in self.upstreams:
            if model in upstream.models:
                return upstream
            if not upstream.models and fallback is None:
                fallback = upstream
        return fallback if fallback is not None else self.upstreams[0]


# -- the configuration file -------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _UpstreamEntry(_Entry):
    base_url: str = Field(pattern=r"^https?://", min_length=8)
    dialect: Literal["responses", "chat"] = "responses"
    key_env: str = ""
    model_map: dict[str, str] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=120.0, gt=0)
    max_in_flight: int = Field(default=128, ge=1)
    encrypted_reasoning: bool = True
    http2: bool = False


class _ClientEntry(_Entry):
    key: str | None = Field(default=None, min_length=1, repr=False)
    key_env: str | None = Field(default=None, min_length=1)
    org: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> _ClientEntry:
        if (self.key is None) == (self.key_env is None):
            raise ValueError("give exactly one of 'key' (the secret) or 'key_env' (a variable)")
        return self


_WRITTEN_APART = ("upstreams", "api_keys", "key_organizations")
"""GatewayConfig fields a file gives as ``upstreams:`` and ``clients:``."""

_ZERO_TURNS_OFF = ("ws_ping_interval_s", "ws_ping_timeout_s")
"""Numbers where 0 is allowed: it turns the thing off."""

_SETTING_TYPES: dict[str, Any] = {
    "client_keys": Literal["check", "pass-through"],
    "log_level": Literal["debug", "info", "warning", "error"],
}


def _setting(name: str, annotation: Any) -> tuple[Any, Any]:
    """A top-level file field for GatewayConfig's ``name``: optional (unset: the option's
    default or the command line's), numbers positive, a port a port."""
    annotation = _SETTING_TYPES.get(name, annotation)
    if name == "port":
        return int | None, Field(default=None, ge=0, le=65535)
    if annotation is int:
        return int | None, Field(default=None, ge=1)
    if name in _ZERO_TURNS_OFF:
        return float | None, Field(default=None, ge=0)
    if annotation is float:
        return float | None, Field(default=None, gt=0)
    return annotation | None, None


_HINTS_OF_CONFIG = get_type_hints(GatewayConfig)
_FILE_FIELDS: dict[str, Any] = {
    "upstreams": (list[_UpstreamEntry], Field(default_factory=list)),
    "clients": (list[_ClientEntry], Field(default_factory=list)),
    **{
        f.name: _setting(f.name, _HINTS_OF_CONFIG[f.name])
        for f in fields(GatewayConfig)
        if f.name not in _WRITTEN_APART
    },
}
_GatewayFile: type[_Entry] = create_model("_GatewayFile", __base__=_Entry, **_FILE_FIELDS)
"""The file: ``upstreams``, ``clients``, and every other :class:`GatewayConfig` field by
its name (so a setting added there can be written here)."""


_SECTIONS: dict[str, type[BaseModel]] = {
    "": _GatewayFile,
    "upstreams": _UpstreamEntry,
    "clients": _ClientEntry,
}
"""The file's parts, by the top-level field holding them."""

_HINTS = {
    "base_url": "an http:// or https:// URL, e.g. https://api.openai.com/v1",
    "upstreams": "a list, e.g. upstreams: [{base_url: http://127.0.0.1:8000/v1}]",
    "clients": "a list, e.g. clients: [{key_env: TEAM_A_KEY, org: org-agents}]",
    "model_map": "a mapping, e.g. model_map: {gpt-5: gpt-5-2025-08-07}",
    "models": "a list of client model names, e.g. models: [gpt-5]",
}


def _problem(error: Any) -> str:
    """One pydantic error as ``where: what is wrong; what to write``."""
    loc = error["loc"]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    field_name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if error["type"] == "extra_forbidden":
        section = next((p for p in loc if isinstance(p, str) and p in ("upstreams", "clients")), "")
        known = ", ".join(_SECTIONS[section].model_fields)
        return f"{where}: unknown field; write one of: {known}"
    message = "required; give it" if error["type"] == "missing" else error["msg"]
    hint = _HINTS.get(field_name)
    return f"{where or 'top level'}: {message}" + (f" ({hint})" if hint else "")


def _env(source: str, where: str, name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"{source}: {where}: environment variable {name} is not set")
    return value


def load_config_file(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The :class:`GatewayConfig` fields a YAML file sets (only those it sets, so the
    command line can override them): top-level settings by their field names,
    ``upstreams`` as :class:`UpstreamConfig` (keys read from the environment now, so an
    unset variable is named at start), ``clients`` as ``api_keys`` and
    ``key_organizations``. A bad file raises :class:`ConfigError` naming the file, the
    field, and what to write."""
    env = os.environ if environ is None else environ
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:  # where and what, never the line (it may hold a key)
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{source}: top level: write a mapping (upstreams:, clients:, port:, ...)"
        )
    try:
        parsed: Any = _GatewayFile.model_validate(data or {})
    except ValidationError as exc:
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {_problem(exc.errors()[0])}{more}") from None
    settings: dict[str, Any] = parsed.model_dump(
        exclude_unset=True, exclude={"upstreams", "clients"}
    )
    upstreams = []
    for i, entry in enumerate(parsed.upstreams):
        if entry.key_env:
            _env(source, f"upstreams[{i}].key_env", entry.key_env, env)
        try:
            upstreams.append(
                UpstreamConfig(
                    base_url=entry.base_url,
                    dialect=entry.dialect,
                    key_env=entry.key_env,
                    model_map=dict(entry.model_map),
                    models=tuple(entry.models),
                    timeout_s=entry.timeout_s,
                    max_in_flight=entry.max_in_flight,
                    encrypted_reasoning=entry.encrypted_reasoning,
                    http2=entry.http2,
                )
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: upstreams[{i}]: {exc}") from None
    if upstreams:
        settings["upstreams"] = tuple(upstreams)
    keys: list[str] = []
    organizations: dict[str, str] = {}
    for i, client in enumerate(parsed.clients):
        if client.key is not None:
            key = client.key
        else:
            key = _env(source, f"clients[{i}].key_env", client.key_env or "", env)
        if key in keys:
            raise ConfigError(f"{source}: clients[{i}]: the same key is listed twice")
        keys.append(key)
        if client.org is not None:
            organizations[key] = client.org
    if keys:
        settings["api_keys"] = tuple(keys)
        settings["key_organizations"] = organizations
    if upstreams:
        try:  # what the file says on its own must hold together (routes, key modes)
            GatewayConfig(**settings)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return settings
