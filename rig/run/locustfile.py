"""The rig's locustfile: ``rig locust ARGS`` runs Locust with it, and
``locustfiles/agent_sessions.py`` (for ``locust -f`` from a checkout) re-exports it.

It installs the Locust integration with the end-of-run report and verdict, and exposes
one user class per registered transport (``HttpAgent``, ``WsAgent``, ...), where Locust
looks for them. Installed with the package, so a container image needs no checkout.
"""

import os
from typing import Any

from locust import events

from rig.locust.plugin import install, user_classes
from rig.redact import install_redaction
from rig.run.verdict import report_at_end, watch_gateway

install_redaction()  # no key in any log (rig.redact); again once Locust set up logging
install(events, on_end=report_at_end)


@events.init.add_listener
def _redact_keys(environment: Any, **_: Any) -> None:
    """Mask the target's key by value too, on the handlers Locust has set up by now."""
    parsed = environment.parsed_options
    variable = getattr(parsed, "api_key_env", "") if parsed is not None else ""
    install_redaction([os.environ.get(variable, "")] if variable else [])


@events.test_start.add_listener
def _watch_gateway(environment: Any, **_: Any) -> None:
    """The gateway's figures at the start (``--gateway-stats``), for the summary."""
    watch_gateway(environment)


globals().update({cls.__name__: cls for cls in user_classes()})  # Locust finds them here
