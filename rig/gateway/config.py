"""What ``rig gateway`` is told: where it listens, who may call it, where state lives, and
its upstreams (base URL, dialect, model mapping, the variable holding the key)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rig.errors import RigError

__all__ = ["DIALECTS", "ConfigError", "GatewayConfig", "UpstreamConfig", "parse_model_map"]

DIALECTS = ("responses", "chat")
"""Upstream dialects: the Responses API (``store: false``, full ``input``) or Chat
Completions (full ``messages``)."""


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

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ConfigError(
                f"upstream {self.base_url}: dialect {self.dialect!r} is not one of "
                + ", ".join(DIALECTS)
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream {self.base_url!r}: give an http:// or https:// URL")

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
    store: str | None = None
    """``memory`` (default) or ``redis://...``: where checkpoints (and with them the
    ``store=true`` responses) live."""
    store_ttl_s: int = 3600
    """How long a checkpoint, and a conversation held in memory, lives."""
    store_max_bytes: int = 256 * 1024 * 1024
    """Cap of the in-process checkpoints."""
    max_body_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 8 * 1024 * 1024
    ws_max_age_s: float = 3600.0
    memory_max_bytes: int = 1024 * 1024 * 1024
    """Cap of the conversations every WebSocket of the process holds."""
    checkpoint_timeout_s: float = 0.5
    drain_timeout_s: float = 30.0
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ConfigError("give at least one upstream (--upstream URL)")

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
