"""Conversation state shared by the mock and the gateway: stored responses, the
connection-local cache, ``previous_response_id`` resolution, tool-call pairing, ownership."""

from rig.conversation.cache import ConnectionCache
from rig.conversation.ownership import ANONYMOUS_OWNER, owner_id
from rig.conversation.pairing import check_pairing, pending_calls
from rig.conversation.state import Conversations, Resumed
from rig.conversation.store import (
    MemoryStore,
    RedisStore,
    ResponseStore,
    StoredResponse,
    open_store,
)

__all__ = [
    "ANONYMOUS_OWNER",
    "ConnectionCache",
    "Conversations",
    "MemoryStore",
    "RedisStore",
    "ResponseStore",
    "Resumed",
    "StoredResponse",
    "check_pairing",
    "open_store",
    "owner_id",
    "pending_calls",
]
