"""Stored responses belong to the key (or organisation) that created them: another key gets
exactly the not-found an unknown id gets, over HTTP and WebSocket, with either store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from rig.protocol.sniff import is_terminal
from tests.servers import start_mock

KEY_A = "sk-owner-a-0123456789"
KEY_B = "sk-owner-b-9876543210"
CREATE = {"model": "mock-agent", "input": "Plan the refactor of the billing module", "store": True}


@pytest.fixture(params=["memory", "redis"])
def mock(request: pytest.FixtureRequest) -> Iterator[str]:
    """A mock with the in-process store, or with a real redis-server's."""
    args: tuple[str, ...] = ()
    if request.param == "redis":
        args = ("--store", request.getfixturevalue("redis_url"))
    process, url = start_mock(*args)
    yield url
    process.stop()


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30)


def _created(url: str, key: str) -> str:
    with _client(url, key) as client:
        response = client.post("/responses", json=CREATE)
        assert response.status_code == 200, response.text
        return response.json()["id"]


def _without_id(error: dict, response_id: str) -> dict:
    """An error body with the id it names replaced, to compare two not-founds."""
    return orjson.loads(orjson.dumps(error).replace(response_id.encode(), b"ID"))


def test_another_key_cannot_read_a_stored_response(mock: str) -> None:
    response_id = _created(mock, KEY_A)
    with _client(mock, KEY_B) as b:
        theirs = b.get(f"/responses/{response_id}")
        unknown = b.get("/responses/resp_unknown0000")
    assert theirs.status_code == unknown.status_code == 404
    assert _without_id(theirs.json(), response_id) == _without_id(
        unknown.json(), "resp_unknown0000"
    )
    with _client(mock, KEY_A) as a:
        assert a.get(f"/responses/{response_id}").json()["id"] == response_id


def test_another_key_cannot_delete_a_stored_response(mock: str) -> None:
    response_id = _created(mock, KEY_A)
    with _client(mock, KEY_B) as b:
        refused = b.delete(f"/responses/{response_id}")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    with _client(mock, KEY_A) as a:
        assert a.get(f"/responses/{response_id}").status_code == 200  # still there
        assert a.delete(f"/responses/{response_id}").json()["deleted"] is True


def test_another_key_cannot_continue_a_stored_response_over_http(mock: str) -> None:
    response_id = _created(mock, KEY_A)
    follow = dict(CREATE, input="go on", previous_response_id=response_id)
    with _client(mock, KEY_B) as b:
        refused = b.post("/responses", json=follow)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "previous_response_not_found"
    with _client(mock, KEY_A) as a:
        continued = a.post("/responses", json=follow)
    assert continued.status_code == 200
    assert continued.json()["previous_response_id"] == response_id


def test_another_key_cannot_continue_a_stored_response_over_websocket(mock: str) -> None:
    with _ws(mock, KEY_A) as ws:
        ws.send(orjson.dumps({"type": "response.create", **CREATE}).decode())
        first = _terminal(ws)
    response_id = first["response"]["id"]
    follow = {"type": "response.create", **CREATE, "input": "go on"}
    follow["previous_response_id"] = response_id
    with _ws(mock, KEY_B) as ws:
        ws.send(orjson.dumps(follow).decode())
        refused = _terminal(ws)
    assert refused["type"] == "error"
    assert refused["error"]["code"] == "previous_response_not_found"
    with _ws(mock, KEY_A) as ws:
        ws.send(orjson.dumps(follow).decode())
        assert _terminal(ws)["type"] == "response.completed"


def test_keys_of_one_organisation_share_their_responses(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text(
        f"keys:\n  - key: {KEY_A}\n    org: org-a\n  - key: {KEY_B}\n    org: org-a\n"
        "  - key: sk-outsider-000000000\n"
        "organizations:\n  org-a: {rpm: 100000}\n"
    )
    process, url = start_mock("--limits", str(limits))
    try:
        response_id = _created(url, KEY_A)
        with _client(url, KEY_B) as b:
            assert b.get(f"/responses/{response_id}").status_code == 200
        with _client(url, "sk-outsider-000000000") as outsider:
            assert outsider.get(f"/responses/{response_id}").status_code == 404
    finally:
        process.stop()


def test_without_a_key_responses_belong_to_the_anonymous_owner(mock: str) -> None:
    with httpx.Client(base_url=mock, timeout=30) as anonymous:
        response_id = anonymous.post("/responses", json=CREATE).json()["id"]
        assert anonymous.get(f"/responses/{response_id}").status_code == 200
    with _client(mock, KEY_A) as a:
        assert a.get(f"/responses/{response_id}").status_code == 404


def _ws(url: str, key: str) -> ClientConnection:
    return connect(
        url.replace("http://", "ws://") + "/responses",
        additional_headers={"authorization": f"Bearer {key}"},
    )


def _terminal(ws: ClientConnection) -> dict:
    while True:
        event = orjson.loads(ws.recv(timeout=30))
        if event["type"] == "error" or is_terminal(event["type"]):
            return event
