"""Conversation state a server keeps between responses: resolving ``previous_response_id``,
checking tool-call pairing, recording finished responses, and the stored-response routes.

Shared by the mock and the gateway, so both resolve, refuse and record alike. A
continuation resolves first from the connection's cache (WebSocket mode), then from the
store, and only within its owner's responses (:mod:`rig.conversation.ownership`); whatever
is not found, for whatever reason, is the same ``previous_response_not_found``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rig.conversation.cache import ConnectionCache
from rig.conversation.pairing import check_pairing, pending_calls
from rig.conversation.store import ResponseStore, StoredResponse
from rig.protocol.errors import NotFoundError, PreviousResponseNotFoundError

__all__ = ["Conversations", "Resumed"]


@dataclass(frozen=True, slots=True)
class Resumed:
    """The response a continuation resumes from, and where it was found."""

    stored: StoredResponse
    from_store: bool
    """Rehydrated from the store rather than found in connection memory."""


class Conversations:
    """The conversation state of one server process over one response store."""

    def __init__(self, store: ResponseStore):
        self.store = store

    def begin(self, items: Sequence[dict[str, Any]]) -> None:
        """Check a new conversation's items (no ``previous_response_id``)."""
        check_pairing(items)

    async def resume(
        self,
        previous_id: str,
        items: Sequence[dict[str, Any]],
        *,
        owner: str,
        connection: ConnectionCache | None = None,
    ) -> Resumed:
        """The response ``previous_id`` resumed with the new ``items``: from the
        connection's cache, else ``owner``'s store; the items must answer its open calls.

        Raises :class:`PreviousResponseNotFoundError` or the pairing error.
        """
        prior = connection.get(previous_id) if connection is not None else None
        from_store = prior is None
        if prior is None:
            prior = await self.store.get(owner, previous_id)
            if prior is None:
                raise PreviousResponseNotFoundError(previous_id)
        check_pairing(items, pending_calls(prior.response))
        return Resumed(prior, from_store)

    async def record(
        self,
        response_id: str,
        stored: StoredResponse,
        *,
        owner: str,
        store: bool,
        connection: ConnectionCache | None = None,
        lane: str = "",
    ) -> None:
        """A response finished: the latest of its lane in connection memory, and in the
        store as ``owner``'s when it was created with ``store=true``."""
        if connection is not None:
            connection.put(lane, response_id, stored)
        if store:
            await self.store.put(owner, response_id, stored)

    async def retrieve(self, owner: str, response_id: str) -> StoredResponse:
        """``GET /v1/responses/{id}``: ``owner``'s stored response, else 404."""
        stored = await self.store.get(owner, response_id)
        if stored is None:
            raise NotFoundError(f"Response with id '{response_id}' not found.")
        return stored

    async def delete(self, owner: str, response_id: str) -> None:
        """``DELETE /v1/responses/{id}``: forget ``owner``'s stored response, else 404."""
        if not await self.store.delete(owner, response_id):
            raise NotFoundError(f"Response with id '{response_id}' not found.")
