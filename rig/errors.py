"""The base of every exception the rig raises on purpose.

Callers at a boundary (the CLI, the Locust plugin, a server's handler) catch
:class:`RigError` rather than a hand-picked tuple; each package's exceptions subclass it
(keeping a standard base such as ``ValueError`` where callers relied on one). A library's
exception is translated into one of these at the layer that calls the library. This
module imports nothing, so every layer, ``rig.protocol`` included, may use it.
"""

from __future__ import annotations

__all__ = ["RigError"]


class RigError(Exception):
    """Something the rig detected and can name: bad input, configuration, or a failure."""
