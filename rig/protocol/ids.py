"""Object ids in the formats the real API uses (``resp_``, ``msg_``, ``fc_``, ``call_``...)."""

from __future__ import annotations

import os

__all__ = ["new_id"]


def new_id(prefix: str, nbytes: int = 24) -> str:
    """A fresh random id such as ``resp_<48 hex digits>``."""
    return f"{prefix}_{os.urandom(nbytes).hex()}"
