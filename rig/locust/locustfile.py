"""The locustfile inside the package: ``rig locust ARGS`` runs Locust with it.

Same users as ``locustfiles/agent_sessions.py`` (which is for ``locust -f`` from a
checkout); installed with the package, so a container image needs no checkout.
"""

from rig.locust.plugin import (  # noqa: F401 - Locust finds the users here
    ChatAgent,
    HttpAgent,
    HttpChainedAgent,
    WsAgent,
    WsStoredAgent,
)
