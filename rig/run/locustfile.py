"""The rig's locustfile: ``rig locust ARGS`` runs Locust with it, and
``locustfiles/agent_sessions.py`` (for ``locust -f`` from a checkout) re-exports it.

It installs the Locust integration with the end-of-run report and verdict, and exposes
one user class per registered transport (``HttpAgent``, ``WsAgent``, ...), where Locust
looks for them. Installed with the package, so a container image needs no checkout.
"""

from locust import events

from rig.locust.plugin import install, user_classes
from rig.run.verdict import report_at_end

install(events, on_end=report_at_end)

globals().update({cls.__name__: cls for cls in user_classes()})  # Locust finds them here
