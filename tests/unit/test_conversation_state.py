"""Conversation state without a server: resolution order, ownership, pairing, recording."""

from __future__ import annotations

import asyncio

import pytest

from rig.conversation import (
    ANONYMOUS_OWNER,
    ConnectionCache,
    Conversations,
    MemoryStore,
    StoredResponse,
    owner_id,
)
from rig.protocol.errors import (
    InvalidRequestError,
    NotFoundError,
    PreviousResponseNotFoundError,
)

A = owner_id("sk-key-a")
B = owner_id("sk-key-b")


def _stored(text: str, calls: tuple[str, ...] = ()) -> StoredResponse:
    output = [
        {"type": "function_call", "call_id": c, "name": "f", "arguments": "{}"} for c in calls
    ]
    return StoredResponse({"id": text, "output": output}, [], 10, 100)


def _output(call_id: str) -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


def test_an_owner_is_a_digest_never_the_key() -> None:
    assert "sk-key-a" not in A
    assert A.startswith("key:") and len(A) == 4 + 32
    assert A != B
    assert owner_id("sk-key-a", "org-1") == owner_id("sk-key-b", "org-1")
    assert owner_id(None) == owner_id("") == ANONYMOUS_OWNER


def test_resolution_prefers_the_connection_cache_then_the_store() -> None:
    conversations = Conversations(MemoryStore())
    cache = ConnectionCache()
    cached, stored = _stored("cached"), _stored("stored")
    cache.put("", "resp_1", cached)
    asyncio.run(conversations.record("resp_1", stored, owner=A, store=True))
    from_cache = asyncio.run(conversations.resume("resp_1", [], owner=A, connection=cache))
    assert from_cache.stored is cached and not from_cache.from_store
    from_store = asyncio.run(conversations.resume("resp_1", [], owner=A))
    assert from_store.stored == stored and from_store.from_store


def test_another_owner_resolves_nothing_as_an_unknown_id_does() -> None:
    conversations = Conversations(MemoryStore())
    asyncio.run(conversations.record("resp_1", _stored("x"), owner=A, store=True))
    with pytest.raises(PreviousResponseNotFoundError):
        asyncio.run(conversations.resume("resp_1", [], owner=B))
    with pytest.raises(NotFoundError) as theirs:
        asyncio.run(conversations.retrieve(B, "resp_1"))
    with pytest.raises(NotFoundError) as unknown:
        asyncio.run(conversations.retrieve(B, "resp_2"))
    assert theirs.value.to_dict() | {"message": ""} == unknown.value.to_dict() | {"message": ""}
    with pytest.raises(NotFoundError):
        asyncio.run(conversations.delete(B, "resp_1"))
    assert asyncio.run(conversations.retrieve(A, "resp_1")).response["id"] == "x"


def test_store_false_reaches_only_connection_memory() -> None:
    conversations = Conversations(MemoryStore())
    cache = ConnectionCache()
    asyncio.run(
        conversations.record("resp_1", _stored("x"), owner=A, store=False, connection=cache)
    )
    assert cache.get("resp_1") is not None
    with pytest.raises(PreviousResponseNotFoundError):
        asyncio.run(conversations.resume("resp_1", [], owner=A))


def test_a_continuation_must_answer_the_resumed_calls() -> None:
    conversations = Conversations(MemoryStore())
    asyncio.run(conversations.record("resp_1", _stored("x", ("call_1",)), owner=A, store=True))
    with pytest.raises(InvalidRequestError, match="No tool output found for function call"):
        asyncio.run(conversations.resume("resp_1", [], owner=A))
    asyncio.run(conversations.resume("resp_1", [_output("call_1")], owner=A))


def test_an_output_without_its_call_is_refused() -> None:
    conversations = Conversations(MemoryStore())
    with pytest.raises(InvalidRequestError, match="No tool call found") as refused:
        conversations.begin([_output("call_9")])
    assert refused.value.param == "input" and refused.value.status == 400
