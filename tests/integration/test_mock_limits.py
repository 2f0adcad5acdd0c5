"""Rate limits of a real mock process: HTTP 429s and headers, WebSocket error events and
refused handshakes, in-flight and token limits, and limits shared through a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.servers import server_stats, start_mock

# One mock, one key per test: each key has its own buckets, so tests do not interfere.
LIMITS = """
keys:
  - {key: sk-http, label: http, rpm: 2, tpm: 1000000}
  - {key: sk-sse, label: sse, rpm: 5}
  - {key: sk-sdk, label: sdk, rpm: 1}
  - {key: sk-retry, label: retry, rpm: 60, burst: 0.001}
  - {key: sk-chat, label: chat, rpm: 1}
  - {key: sk-ws, label: ws, rpm: 60, burst: 0.001}
  - {key: sk-conn, label: conn, max_connections: 2}
  - {key: sk-tpm, label: tpm, tpm: 2000}
  - {key: sk-ctx, label: ctx, tpm: 60, burst: 1000}
  - {key: sk-org-1, org: org-shared}
  - {key: sk-org-2, org: org-shared}
organizations:
  org-shared: {rpm: 2}
"""

SLOW_PRESET = """
name: slow
base_ms: 0
tokens_per_s: 5
"""

TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}
MODEL = "mock-agent"
BODY = {"model": MODEL, "input": "hello"}
RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("limits") / "limits.yaml"
    path.write_text(LIMITS)
    process, url = start_mock("--limits", str(path))
    yield url
    process.stop()


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Responses stream one token every 200 ms; one response in flight per key."""
    preset = tmp_path_factory.mktemp("preset") / "slow.yaml"
    preset.write_text(SLOW_PRESET)
    keys = ("--api-key", "sk-http", "--api-key", "sk-ws")
    process, url = start_mock("--preset", str(preset), "--max-inflight", "1", *keys)
    yield url
    process.stop()


def _post(url: str, key: str, body: dict | None = None, path: str = "/responses") -> httpx.Response:
    return httpx.post(
        url + path, json=body or BODY, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def _ws(url: str, key: str) -> ClientConnection:
    return connect(
        url.replace("http", "ws", 1) + "/responses",
        additional_headers={"authorization": f"Bearer {key}"},
        open_timeout=10,
    )


def _send(ws: ClientConnection, **fields: object) -> None:
    ws.send(orjson.dumps({"type": "response.create", **BODY, **fields}).decode())


def _terminal(ws: ClientConnection) -> dict:
    while True:
        event = orjson.loads(ws.recv(timeout=30))
        if event["type"] in TERMINAL:
            return event


def _until(condition, timeout_s: float = 10.0) -> None:
    """Poll an observable server state (each poll is a request) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"


# -- HTTP ------------------------------------------------------------------------------------


def test_accepted_responses_carry_the_rate_limit_headers(limited: str) -> None:
    first = _post(limited, "sk-http")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert first.headers["x-ratelimit-limit-tokens"] == "1000000"
    input_tokens = first.json()["usage"]["input_tokens"]
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 1000000 - input_tokens
    assert "retry-after" not in first.headers


def test_a_refused_request_is_a_429_with_the_openai_body_and_retry_after(limited: str) -> None:
    for _ in range(2):
        _post(limited, "sk-http")
    refused = _post(limited, "sk-http")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert error["param"] is None
    assert error["message"].startswith(
        f"Rate limit reached for {MODEL} in API key http on requests per min (RPM): "
        "Limit 2, Used 2, Requested 1. Please try again in "
    )
    assert "sk-http" not in refused.text
    assert 0 < int(refused.headers["retry-after-ms"]) <= 30_000
    assert int(refused.headers["retry-after"]) == -(-int(refused.headers["retry-after-ms"]) // 1000)
    for name in RATE_HEADERS:
        assert name in refused.headers
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_streamed_response_has_the_headers_on_its_response(limited: str) -> None:
    with httpx.stream(
        "POST",
        limited + "/responses",
        json={**BODY, "stream": True},
        headers={"authorization": "Bearer sk-sse"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-ratelimit-remaining-requests"] == "4"
        assert b"response.completed" in response.read()


def test_chat_completions_are_limited_too(limited: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert _post(limited, "sk-chat", body, "/chat/completions").status_code == 200
    refused = _post(limited, "sk-chat", body, "/chat/completions")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_the_sdk_without_retries_raises_rate_limit_error(limited: str) -> None:
    with openai.OpenAI(base_url=limited, api_key="sk-sdk", max_retries=0) as client:
        client.responses.create(model=MODEL, input="hello")
        with pytest.raises(openai.RateLimitError) as caught:
            client.responses.create(model=MODEL, input="hello")
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_the_sdk_with_retries_waits_as_told_and_succeeds(limited: str) -> None:
    # 60 RPM with a one-request bucket: the second request waits up to a second.
    with openai.OpenAI(base_url=limited, api_key="sk-retry", max_retries=3) as client:
        client.responses.create(model=MODEL, input="hello")
        raw = client.responses.with_raw_response.create(model=MODEL, input="hello")
    assert raw.retries_taken >= 1
    assert raw.parse().status == "completed"


def test_an_organisation_limit_holds_across_its_keys(limited: str) -> None:
    assert _post(limited, "sk-org-1").status_code == 200
    assert _post(limited, "sk-org-2").status_code == 200
    refused = _post(limited, "sk-org-1")
    assert refused.status_code == 429
    assert "in organization org-shared" in refused.json()["error"]["message"]


def test_an_unlisted_caller_is_not_limited(limited: str) -> None:
    answers = [_post(limited, "sk-anyone-else") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ratelimit-limit-requests" not in answers[0].headers


# -- tokens ----------------------------------------------------------------------------------


def test_tokens_per_minute_refuse_a_large_request_while_small_ones_pass(limited: str) -> None:
    small = _post(limited, "sk-tpm")
    assert small.status_code == 200
    large = _post(limited, "sk-tpm", {"model": MODEL, "input": "word " * 3000})
    assert large.status_code == 429
    error = large.json()["error"]
    assert error["type"] == "tokens" and error["code"] == "rate_limit_exceeded"
    assert error["message"].startswith(
        f"Request too large for {MODEL} in API key tpm on tokens per min (TPM): Limit 2000"
    )
    assert "retry-after" not in large.headers
    assert _post(limited, "sk-tpm").status_code == 200


def test_a_continuation_is_charged_its_whole_context(limited: str) -> None:
    # 60 TPM refills one token a second; a 60,000-token bucket makes room for the test.
    first = _post(limited, "sk-ctx", {**BODY, "store": True})
    first_usage = first.json()["usage"]
    second = _post(
        limited,
        "sk-ctx",
        {"model": MODEL, "input": "go on", "previous_response_id": first.json()["id"]},
    )
    second_usage = second.json()["usage"]
    assert second_usage["input_tokens"] > first_usage["input_tokens"]
    debited = int(first.headers["x-ratelimit-remaining-tokens"]) - int(
        second.headers["x-ratelimit-remaining-tokens"]
    )
    charged = first_usage["output_tokens"] + second_usage["input_tokens"]
    assert charged - 5 <= debited <= charged  # less the refill of the seconds between


# -- WebSocket -------------------------------------------------------------------------------


def test_a_refused_ws_request_is_an_error_event_and_the_connection_stays_usable(
    limited: str,
) -> None:
    with _ws(limited, "sk-ws") as ws:
        _send(ws)
        assert _terminal(ws)["type"] == "response.completed"
        _send(ws)
        event = _terminal(ws)
        assert event["type"] == "error" and event["status"] == 429
        error = event["error"]
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
        assert error["message"].startswith(f"Rate limit reached for {MODEL} in API key ws")
        headers = error["headers"]
        assert headers["x-ratelimit-limit-requests"] == "60"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        wait_ms = int(headers["retry-after-ms"])
        assert 0 < wait_ms <= 1000
        time.sleep(wait_ms / 1000)  # the wait the server asked for, not a synchronisation
        _send(ws)
        assert _terminal(ws)["type"] == "response.completed"


def test_the_connection_limit_refuses_the_next_handshake_with_429(limited: str) -> None:
    with _ws(limited, "sk-conn") as first, _ws(limited, "sk-conn"):
        with pytest.raises(InvalidStatus) as caught:
            _ws(limited, "sk-conn")
        refused = caught.value.response
        assert refused.status_code == 429
        error = orjson.loads(refused.body)["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "Limit 2 open connections" in error["message"]
        before = server_stats(limited)
        closed_before = before["connections_total"] - before["connections_open"]
        first.close()

        def released() -> bool:
            stats = server_stats(limited)
            return stats["connections_total"] - stats["connections_open"] > closed_before

        _until(released)
        with _ws(limited, "sk-conn") as third:
            _send(third)
            assert _terminal(third)["type"] == "response.completed"
    assert server_stats(limited)["rate_limited_connections"] >= 1


# -- in flight -------------------------------------------------------------------------------


def test_the_in_flight_limit_refuses_a_second_response_until_the_first_ends(slow: str) -> None:
    with httpx.Client(timeout=30, headers={"authorization": "Bearer sk-http"}) as client:
        with client.stream("POST", slow + "/responses", json={**BODY, "stream": True}) as first:
            assert first.status_code == 200
            refused = client.post(slow + "/responses", json=BODY)
            assert refused.status_code == 429
            assert "Limit 1 responses in flight" in refused.json()["error"]["message"]
        # The client left mid-stream: the server notices at its next event and releases.
        _until(lambda: server_stats(slow)["responses_failed"] >= 1)
        with client.stream("POST", slow + "/responses", json={**BODY, "stream": True}) as again:
            assert again.status_code == 200
    assert server_stats(slow)["rate_limited_inflight"] >= 1


def test_a_ws_lane_over_the_in_flight_limit_gets_an_error_on_its_lane(slow: str) -> None:
    with _ws(slow, "sk-ws") as ws:
        _send(ws, stream_id="a")
        assert orjson.loads(ws.recv(timeout=30))["type"] == "response.created"
        _send(ws, stream_id="b")
        while True:
            event = orjson.loads(ws.recv(timeout=30))
            if event.get("stream_id") == "b":
                break
        assert event["type"] == "error" and event["error"]["code"] == "rate_limit_exceeded"


# -- Redis: limits across processes ----------------------------------------------------------


@pytest.fixture
def two_limited_mocks(redis_url: str) -> Iterator[tuple[str, str]]:
    flags = ("--limits-store", redis_url, "--rpm", "2", "--max-connections", "1")
    a, url_a = start_mock(*flags)
    b, url_b = start_mock(*flags)
    yield url_a, url_b
    a.stop()
    b.stop()


def test_two_processes_share_one_keys_request_budget(two_limited_mocks: tuple[str, str]) -> None:
    url_a, url_b = two_limited_mocks
    assert [_post(url_a, "k").status_code for _ in range(2)] == [200, 200]
    refused = _post(url_b, "k")
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_two_processes_share_one_keys_connection_count(
    two_limited_mocks: tuple[str, str],
) -> None:
    url_a, url_b = two_limited_mocks
    with _ws(url_a, "k"), pytest.raises(InvalidStatus) as caught:
        _ws(url_b, "k")
    assert caught.value.response.status_code == 429


def test_an_unreachable_limits_store_fails_at_start() -> None:
    with pytest.raises(RuntimeError) as caught:
        start_mock("--rpm", "1", "--limits-store", "redis://127.0.0.1:1/0")
    assert "cannot reach the limits store" in str(caught.value)


def test_a_bad_limits_file_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text("keys:\n  - {key: k, rpm: many}\n")
    with pytest.raises(RuntimeError) as caught:
        start_mock("--limits", str(path))
    assert f"{path}: keys[0].rpm:" in str(caught.value)
