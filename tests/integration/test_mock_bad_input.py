"""Bad input gets the API's error (status, shape, param) and never a crash or a hang."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from rig.protocol.sniff import is_terminal
from rig.serving.wsproto import ws_read_limit
from tests.servers import start_mock

GOOD = {"model": "mock-agent", "input": "hello", "store": False}


@pytest.fixture(scope="module")
def small_mock() -> Iterator[str]:
    """A mock with small size limits and a short WebSocket age limit."""
    process, url = start_mock(
        "--max-body-bytes", "4096", "--max-message-bytes", "4096", "--ws-max-age", "3"
    )
    yield url
    assert process.process.poll() is None, "the mock died during the bad-input tests"
    process.stop()


@pytest.fixture
def http(small_mock: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_mock, timeout=30) as client:
        yield client


@pytest.fixture
def ws(small_mock: str) -> Iterator[ClientConnection]:
    with connect(small_mock.replace("http://", "ws://") + "/responses", open_timeout=10) as conn:
        yield conn


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _send(ws: ClientConnection, payload: dict | bytes | str) -> None:
    ws.send(payload if isinstance(payload, str | bytes) else orjson.dumps(payload).decode())


def _next_terminal(ws: ClientConnection) -> dict:
    while True:
        event = orjson.loads(ws.recv(timeout=30))
        if is_terminal(event["type"]):
            return event


# -- HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_type"),
        (b'{"input": "x"}', "model", "missing_required_parameter"),
        (b'{"model": "m", "input": 42}', "input", "invalid_type"),
        (b'{"model": "m", "input": [{"type": "nonsense"}]}', "input[0].type", "invalid_value"),
        (b'{"model": "m", "input": "x", "stream": "yes"}', "stream", "invalid_type"),
        (
            b'{"model": "m", "input": "x", "background": true}',
            "background",
            "unsupported_parameter",
        ),
    ],
)
def test_http_malformed_bodies(
    http: httpx.Client, content: bytes, param: str | None, code: str
) -> None:
    error = _error(http.post("/responses", content=content), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code


def test_http_oversized_body_is_413(http: httpx.Client) -> None:
    body = orjson.dumps({"model": "m", "input": "x" * 10_000})
    error = _error(http.post("/responses", content=body), 413)
    assert error["code"] == "request_too_large"


def test_http_oversized_chunked_body_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "input": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    error = _error(http.post("/responses", content=chunks()), 413)
    assert error["code"] == "request_too_large"


def test_http_tool_output_without_a_call(http: httpx.Client) -> None:
    body = {
        "model": "m",
        "input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
    }
    error = _error(http.post("/responses", json=body), 400)
    assert "call_nope" in error["message"] and error["param"] == "input"


def test_http_call_without_its_output(http: httpx.Client) -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "go"},
            {
                "type": "function_call",
                "call_id": "call_open",
                "name": "read_file",
                "arguments": "{}",
            },
        ],
    }
    error = _error(http.post("/responses", json=body), 400)
    assert "call_open" in error["message"]


def test_http_unknown_scenario_in_metadata(http: httpx.Client) -> None:
    body = dict(GOOD, metadata={"scenario": "no_such_scenario"})
    error = _error(http.post("/responses", json=body), 400)
    assert error["param"] == "metadata.scenario"


def test_http_unknown_route_and_method(http: httpx.Client) -> None:
    assert _error(http.post("/nope", json=GOOD), 404)["code"] == "unknown_url"
    assert _error(http.put("/responses", json=GOOD), 405)["code"] == "method_not_allowed"
    assert _error(http.get("/responses/resp_missing"), 404)["code"] == "not_found"
    assert _error(http.delete("/responses/resp_missing"), 404)["code"] == "not_found"


def test_http_chat_errors(http: httpx.Client) -> None:
    assert _error(http.post("/chat/completions", content=b"{"), 400)["code"] == "invalid_json"
    error = _error(http.post("/chat/completions", json={"model": "m", "messages": []}), 400)
    assert error["param"] == "messages"


def test_http_client_that_goes_away_mid_stream_leaves_the_server_serving(
    http: httpx.Client,
) -> None:
    with http.stream("POST", "/responses", json=dict(GOOD, stream=True)) as response:
        assert response.status_code == 200
        next(response.iter_raw())
    assert http.post("/responses", json=GOOD).json()["status"] == "completed"


# -- WebSocket ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ("{broken", None, "invalid_json"),
        ("[]", None, "invalid_type"),
        ({"model": "m"}, "type", "missing_required_parameter"),
        ({"type": "session.update"}, "type", "invalid_value"),
        ({"type": "response.create"}, "model", "missing_required_parameter"),
        ({"type": "response.create", "model": "m", "input": False}, "input", "invalid_type"),
        (
            {"type": "response.create", "model": "m", "background": True},
            "background",
            "unsupported_parameter",
        ),
        (
            {
                "type": "response.create",
                "model": "m",
                "input": "x",
                "previous_response_id": "resp_nope",
            },
            "previous_response_id",
            "previous_response_not_found",
        ),
    ],
)
def test_ws_bad_event_gets_an_error_event_and_the_socket_stays_usable(
    ws: ClientConnection, payload: dict | str, param: str | None, code: str
) -> None:
    _send(ws, payload)
    event = _next_terminal(ws)
    assert event["type"] == "error"
    assert event["status"] == 400
    assert event["error"]["param"] == param
    assert event["error"]["code"] == code
    _send(ws, {"type": "response.create", **GOOD})
    assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_binary_frame_is_parsed_like_text(ws: ClientConnection) -> None:
    ws.send(orjson.dumps({"type": "response.create", **GOOD}))
    assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_oversized_message_is_an_error_event(ws: ClientConnection) -> None:
    _send(ws, {"type": "response.create", "model": "m", "input": "z" * 8000})
    event = _next_terminal(ws)
    assert event["status"] == 413 and event["error"]["code"] == "request_too_large"
    _send(ws, {"type": "response.create", **GOOD})
    assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_message_at_the_read_limit_is_a_413_event_and_the_socket_stays(
    ws: ClientConnection,
) -> None:
    read_limit = ws_read_limit(4096)  # the small mock's --max-message-bytes
    ws.send(b" " * read_limit)
    event = _next_terminal(ws)
    assert event["status"] == 413 and event["error"]["code"] == "request_too_large"
    _send(ws, {"type": "response.create", **GOOD})
    assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_message_beyond_the_read_limit_is_a_413_event_then_a_1009_close(
    ws: ClientConnection,
) -> None:
    ws.send(b" " * (ws_read_limit(4096) + 1))
    event = orjson.loads(ws.recv(timeout=30))
    assert event["type"] == "error"
    assert event["status"] == 413 and event["error"]["code"] == "request_too_large"
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.fixture(scope="module")
def slow_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A mock whose responses take seconds to start, so a connection is surely busy."""
    preset = tmp_path_factory.mktemp("preset") / "slow.yaml"
    preset.write_text("name: slow\nbase_ms: 1500\ntokens_per_s: 2000\n")
    process, url = start_mock("--preset", str(preset))
    yield url
    process.stop()


def test_ws_second_create_while_busy_is_refused_without_stream_id(slow_mock: str) -> None:
    create = orjson.dumps({"type": "response.create", **GOOD}).decode()
    with connect(slow_mock.replace("http://", "ws://") + "/responses") as ws:
        ws.send(create)
        ws.send(create)
        busy = _next_terminal(ws)  # the refusal comes before the first response's first token
        assert busy["type"] == "error"
        assert busy["error"]["code"] == "conversation_already_has_active_response"
        assert _next_terminal(ws)["type"] == "response.completed"
        ws.send(create)  # idle again: accepted
        assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_stream_ids_multiplex_conversations(ws: ClientConnection) -> None:
    for lane in ("a", "b", "c"):
        _send(ws, {"type": "response.create", "stream_id": lane, **GOOD})
    completed = {}
    while len(completed) < 3:
        event = orjson.loads(ws.recv(timeout=30))
        assert event["type"] != "error", event
        assert event["stream_id"] in ("a", "b", "c")
        if event["type"] == "response.completed":
            completed[event["stream_id"]] = event["response"]["id"]
    # A lane can fork from a response made on another lane of the same connection.
    _send(
        ws,
        {
            "type": "response.create",
            "stream_id": "d",
            **dict(GOOD, input="more"),
            "previous_response_id": completed["a"],
        },
    )
    event = _next_terminal(ws)
    assert event["type"] == "response.completed" and event["stream_id"] == "d"


def test_ws_one_stream_id_too_many_is_refused_and_the_others_still_work(
    ws: ClientConnection,
) -> None:
    for lane in range(32):
        _send(ws, {"type": "response.create", "stream_id": f"s{lane}", **GOOD})
    _send(ws, {"type": "response.create", "stream_id": "s32", **GOOD})
    completed = set()
    refused = None
    while len(completed) < 32 or refused is None:
        event = orjson.loads(ws.recv(timeout=30))
        if event["type"] == "error":
            refused = event
        elif event["type"] == "response.completed":
            completed.add(event["stream_id"])
    assert refused["status"] == 400 and refused["stream_id"] == "s32"
    assert refused["error"]["code"] == "websocket_stream_limit_reached"
    assert refused["error"]["param"] == "stream_id"
    assert completed == {f"s{lane}" for lane in range(32)}
    _send(ws, {"type": "response.create", "stream_id": "s7", **GOOD})  # a known stream
    assert _next_terminal(ws)["type"] == "response.completed"


def test_ws_creates_beyond_16_in_flight_wait_for_a_slot(slow_mock: str) -> None:
    with connect(slow_mock.replace("http://", "ws://") + "/responses") as conn:
        for lane in range(20):
            _send(conn, {"type": "response.create", "stream_id": f"l{lane}", **GOOD})
        started_before_first_end = []
        ended = 0
        while ended < 20:
            event = orjson.loads(conn.recv(timeout=30))
            assert event["type"] != "error", event
            if event["type"] == "response.created" and not ended:
                started_before_first_end.append(event["stream_id"])
            ended += event["type"] == "response.completed"
    assert started_before_first_end == [f"l{lane}" for lane in range(16)]


def test_ws_connection_is_closed_at_its_maximum_age(small_mock: str) -> None:
    with connect(small_mock.replace("http://", "ws://") + "/responses") as conn:
        _send(conn, {"type": "response.create", **GOOD})
        assert _next_terminal(conn)["type"] == "response.completed"
        event = orjson.loads(conn.recv(timeout=30))  # arrives when the 3 s age limit passes
        assert event["type"] == "error"
        assert event["error"]["code"] == "websocket_connection_limit_reached"
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=30)
        assert closed.value.rcvd.reason == "websocket_connection_limit_reached"


def test_server_is_healthy_after_all_of_it(small_mock: str) -> None:
    root = small_mock.removesuffix("/v1")
    assert httpx.post(small_mock + "/responses", content=b"{").status_code == 400
    assert httpx.post(small_mock + "/responses", json=GOOD).status_code == 200
    assert httpx.get(root + "/health").json() == {"status": "ok"}
    stats = httpx.get(root + "/stats").json()
    assert stats["errors"] > 0 and stats["responses_completed"] > 0


# -- nesting beyond the JSON depth bound -------------------------------------------------


def _deep(depth: int) -> bytes:
    """A JSON value nested ``depth`` levels in alternating objects and lists."""
    opening = b"".join(b"[" if level % 2 else b'{"a":' for level in range(depth))
    closing = b"".join(b"]" if level % 2 else b"}" for level in reversed(range(depth)))
    return opening + b"1" + closing


DEEP_BODIES = {
    "tools-parameters-126": b'{"model":"m","input":"hi","tools":[{"type":"function","name":"f",'
    b'"parameters":' + _deep(126) + b"}]}",
    "tools-parameters-300-streamed": b'{"model":"m","input":"hi","stream":true,"tools":[{"type":'
    b'"function","name":"f","parameters":' + _deep(300) + b"}]}",
    "input-1000": b'{"model":"m","input":[{"role":"user","content":' + _deep(1000) + b"}]}",
    "metadata-600": b'{"model":"m","input":"hi","metadata":' + _deep(600) + b"}",
}


@pytest.mark.parametrize("name", sorted(DEEP_BODIES))
def test_http_nesting_too_deep_is_400_and_keeps_the_connection(small_mock: str, name: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(small_mock)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = DEEP_BODIES[name]
    headers = {"content-type": "application/json"}
    try:
        conn.request("POST", "/v1/responses", body=body, headers=headers)
        first = conn.getresponse()
        payload = first.read()
        assert first.status == 400, payload[:300]
        assert orjson.loads(payload)["error"]["code"] == "json_too_deep"
        sock = conn.sock
        conn.request("POST", "/v1/responses", body=orjson.dumps(GOOD), headers=headers)
        second = conn.getresponse()
        assert second.status == 200 and orjson.loads(second.read())["status"] == "completed"
        assert conn.sock is sock and sock is not None, "the keep-alive connection was closed"
    finally:
        conn.close()


def test_chat_tools_nested_too_deep_is_400_and_keeps_the_connection(small_mock: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(small_mock)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    messages = b'[{"role":"user","content":"hi"}]'
    deep = (
        b'{"model":"m","messages":' + messages + b',"tools":[{"type":"function","function":'
        b'{"name":"f","parameters":' + _deep(300) + b"}}]}"
    )
    headers = {"content-type": "application/json"}
    try:
        conn.request("POST", "/v1/chat/completions", body=deep, headers=headers)
        first = conn.getresponse()
        payload = first.read()
        assert first.status == 400, payload[:300]
        assert orjson.loads(payload)["error"]["code"] == "json_too_deep"
        sock = conn.sock
        good = b'{"model":"m","messages":' + messages + b"}"
        conn.request("POST", "/v1/chat/completions", body=good, headers=headers)
        second = conn.getresponse()
        assert second.status == 200, second.read()[:300]
        assert orjson.loads(second.read())["object"] == "chat.completion"
        assert conn.sock is sock and sock is not None, "the keep-alive connection was closed"
    finally:
        conn.close()


def test_ws_nesting_too_deep_is_an_error_event_and_other_lanes_finish(
    ws: ClientConnection,
) -> None:
    _send(ws, {**GOOD, "type": "response.create", "stream_id": "lane-a"})
    _send(ws, b'{"type":"response.create","model":"m","input":' + _deep(1000) + b"}")
    seen: dict[str, dict] = {}
    while len(seen) < 2:
        event = orjson.loads(ws.recv(timeout=30))
        if event["type"] == "error":
            seen["error"] = event
        elif is_terminal(event["type"]):
            seen["lane-a"] = event
    assert seen["error"]["status"] == 400
    assert seen["error"]["error"]["code"] == "json_too_deep"
    assert seen["lane-a"]["type"] == "response.completed"
    assert seen["lane-a"].get("stream_id") == "lane-a"
    _send(ws, {**GOOD, "type": "response.create"})
    assert _next_terminal(ws)["type"] == "response.completed"
