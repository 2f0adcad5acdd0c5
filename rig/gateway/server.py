"""Running the gateway: the app with its store and upstreams, on uvicorn.

One process per replica in this slice; replicas share stored responses through Redis
(``--store redis://...``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from rig.conversation import Conversations, RedisStore, open_store
from rig.fdlimit import raise_open_files_limit
from rig.gateway.app import Gateway, build_app
from rig.gateway.config import GatewayConfig
from rig.gateway.stats import GatewayStats
from rig.gateway.upstream import Upstream
from rig.redact import install_redaction

__all__ = ["create_app", "log_config", "serve"]

log = logging.getLogger("rig.gateway")


def _secrets(config: GatewayConfig) -> list[str]:
    """Every key the process knows: the clients' and the upstreams' (never logged)."""
    secrets = list(config.api_keys)
    for upstream in config.upstreams:
        key = upstream.key()
        if key:
            secrets.append(key)
    return secrets


def log_config(config: GatewayConfig) -> dict[str, Any]:
    """uvicorn's logging configuration with the :mod:`rig.redact` filter on every handler
    and the gateway's loggers at ``--log-level``."""
    redacting = {"()": "rig.redact.RedactingFilter", "secrets": _secrets(config)}
    base = uvicorn.config.LOGGING_CONFIG
    handlers = {
        name: {**handler, "filters": ["redact"]} for name, handler in base["handlers"].items()
    }
    return {
        **base,
        "filters": {"redact": redacting},
        "handlers": handlers,
        "loggers": {
            **base["loggers"],
            "rig": {"handlers": ["default"], "level": config.log_level.upper(), "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway's app: counters, store, conversations, one pooled client per upstream
    (opened at startup, closed at shutdown)."""
    install_redaction(_secrets(config))
    stats = GatewayStats()
    store = open_store(
        config.store,
        ttl_s=config.store_ttl_s,
        max_bytes=config.store_max_bytes,
        on_evict=lambda n: stats.add("store_evictions", n),
    )
    upstreams = {upstream: Upstream(upstream, stats) for upstream in config.upstreams}
    gateway = Gateway(config, Conversations(store), stats, upstreams)
    app = build_app(gateway)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if isinstance(store, RedisStore):
            await store.ping()  # fail at start, not on the first continuation
        yield
        for upstream in upstreams.values():
            await upstream.close()
        await store.close()

    app.router.lifespan_context = lifespan
    return app


def serve(config: GatewayConfig) -> None:
    """Run the gateway until interrupted."""
    install_redaction(_secrets(config))
    raise_open_files_limit()
    uv_config = uvicorn.Config(
        create_app(config),
        host=config.host,
        port=config.port,
        loop="uvloop",
        ws_max_size=config.max_message_bytes + 1024,
        log_level=config.log_level,
        log_config=log_config(config),
        access_log=False,
        lifespan="on",
        timeout_keep_alive=120,
    )
    sock = uv_config.bind_socket()
    sock.listen(uv_config.backlog)
    upstreams = ", ".join(f"{u.dialect} {u.base_url}" for u in config.upstreams)
    print(
        f"rig gateway listening on http://{config.host}:{sock.getsockname()[1]} "
        f"(upstream {upstreams})",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.Server(uv_config).run(sockets=[sock])
    finally:
        sock.close()
