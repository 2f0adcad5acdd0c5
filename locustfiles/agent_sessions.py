"""Simulated coding agents, one Locust user per transport.

    locust -f locustfiles/agent_sessions.py --target-url http://127.0.0.1:8000/v1 \\
        --transports http,ws --headless -u 20 -r 5 -t 2m

Options: see the rig's options in ``rig locust --help`` (also in the web UI). Records go
to ``runs/<run-id>/``; render them with ``rig report runs/<run-id>``. Distributed:
``--master`` here and ``--worker --master-host HOST`` on the workers, same options.
"""

from rig.run.locustfile import *  # noqa: F403 - the users and the installed listeners
