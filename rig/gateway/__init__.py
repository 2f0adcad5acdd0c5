"""The stateful gateway: Responses API WebSocket mode and ``previous_response_id``
continuation in front of stateless providers (issue 11).

Clients speak the Responses API to it (HTTP, SSE, WebSocket mode) and send only new items;
the gateway keeps each conversation (:mod:`rig.conversation`), rebuilds the full context
and calls a stateless upstream (:mod:`rig.gateway.upstream`: the Responses API with
``store: false`` or Chat Completions), relaying the upstream's stream back as Responses
events. A thin asyncio shell over :mod:`rig.protocol` and :mod:`rig.conversation`, like the
mock; it never imports the mock or the load generator.
"""

from rig.gateway.config import GatewayConfig, UpstreamConfig

__all__ = ["GatewayConfig", "UpstreamConfig"]
