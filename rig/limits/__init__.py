"""Rate limits: token buckets, the limits file, and their memory and Redis stores
(:mod:`rig.limits.limiter`; everything it offers is offered here)."""

from rig.limits import limiter as _limiter
from rig.limits.limiter import *  # noqa: F403 - the package's face is the module's

__all__ = list(_limiter.__all__)
