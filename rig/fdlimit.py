"""The open-files limit: every simulated session or served connection holds a socket.

A Linux default of 1,024 open files stops a run at about a thousand WebSockets, with
``EMFILE`` errors that look like the target failing. Processes that hold many sockets
(the mock, ``rig compare``) raise their soft limit to the hard limit at start, as Locust's
own command line does.
"""

from __future__ import annotations

import logging

__all__ = ["raise_open_files_limit"]

log = logging.getLogger("rig")


def raise_open_files_limit(wanted: int = 65_536) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` toward ``wanted`` (never above the hard limit);
    return the soft limit in force afterwards."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
    return soft
