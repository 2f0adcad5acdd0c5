"""Who owns a stored response: the API key that created it, or that key's organisation.

A stored response is visible only to its owner; any other caller gets the same
``not found`` as for an unknown id (HTTP ``GET``/``DELETE /v1/responses/{id}``, and
``previous_response_id`` over HTTP and WebSocket). The owner is a digest, never the key:
stores (Redis included) and their keys hold no secret.
"""

from __future__ import annotations

import hashlib

__all__ = ["ANONYMOUS_OWNER", "owner_id"]

ANONYMOUS_OWNER = "anonymous"
"""The owner of everything created without an API key."""


def owner_id(key: str | None, organization: str | None = None) -> str:
    """The owner of what ``key`` creates: its ``organization`` when it has one (every key of
    an organisation shares its responses, as in the API), else the key itself; as
    ``org:``/``key:`` plus 32 hex digits of SHA-256. ``ANONYMOUS_OWNER`` without a key."""
    if organization is not None:
        return "org:" + hashlib.sha256(organization.encode()).hexdigest()[:32]
    if not key:
        return ANONYMOUS_OWNER
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
