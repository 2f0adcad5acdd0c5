"""Simulated coding agents, one Locust user per transport.

    locust -f locustfiles/agent_sessions.py --target-url http://127.0.0.1:8000/v1 \\
        --transports http,ws --headless -u 20 -r 5 -t 2m

Options: see the "agentic load rig" group in ``--help`` (also in the web UI). Records go
to ``runs/<run-id>/``; render them with ``rig report runs/<run-id>``. Distributed:
``--master`` here and ``--worker --master-host HOST`` on the workers, same options.
"""

from rig.locust.plugin import (  # noqa: F401 - Locust finds the users here
    ChatAgent,
    HttpAgent,
    HttpChainedAgent,
    WsAgent,
    WsStoredAgent,
)
