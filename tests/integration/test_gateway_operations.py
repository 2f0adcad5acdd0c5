"""The gateway under operations' events, real processes on loopback: Redis killed and back
mid-session, stored responses retrieved and deleted across replicas sharing Redis,
eviction under a tiny memory cap, Prometheus ``/metrics`` against ``/stats``,
and SIGTERM draining a WebSocket with a response in flight."""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.sdk import until_done
from tests.servers import ManagedProcess, free_port, require_binary, start_gateway, start_mock

SLOW_PRESET = str(Path(__file__).resolve().parents[1] / "data" / "slow.yaml")
"""A response that streams for a few seconds."""


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


def _redis(port: int, directory: str) -> ManagedProcess:
    argv = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", directory]  # fmt: skip
    process = ManagedProcess(argv, "Ready to accept connections")
    process.wait_ready()
    return process


def _origin(url: str) -> str:
    return url.removesuffix("/v1")


def _stats(url: str) -> dict[str, Any]:
    return httpx.get(_origin(url) + "/stats", timeout=10).json()


def _health(url: str) -> httpx.Response:
    return httpx.get(_origin(url) + "/health", timeout=10)


def _turn(connection: Any, previous: str | None, text: str) -> Any:
    connection.response.create(
        model="mock-agent", previous_response_id=previous, input=text, store=False
    )
    return until_done(connection)


def _poll(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_redis_killed_mid_session_degrades_to_connection_memory_and_recovers(
    upstream: str,
) -> None:
    with tempfile.TemporaryDirectory(prefix="rig-redis-") as directory:
        port = free_port()
        redis = _redis(port, directory)
        gateway, url = start_gateway(upstream, "--store", f"redis://127.0.0.1:{port}/0")
        client = openai.OpenAI(base_url=url, api_key="sk-ops-client-0001", max_retries=0)
        try:
            with client.responses.connect() as ws:
                first = _turn(ws, None, "start")
                assert first.type == "response.completed"
                assert _stats(url)["checkpoint_writes"] == 1
                assert _health(url).json()["status"] == "ok"

                redis.process.send_signal(signal.SIGKILL)
                redis.process.wait()
                second = _turn(ws, first.response.id, "go on")  # connection memory
                assert second.type == "response.completed"
                stats = _stats(url)
                assert stats["checkpoint_failures"] == 1 and stats["hits_connection"] == 1
                health = _health(url)
                assert health.status_code == 200
                assert health.json() == {"status": "degraded", "checkpoints": "unavailable"}
                with client.responses.connect() as other:  # another connection cannot resume
                    missed = _turn(other, second.response.id, "elsewhere")
                    assert missed.type == "error"
                    assert missed.error.code == "previous_response_not_found"
                assert _stats(url)["misses_unavailable"] == 1

                redis = _redis(port, directory)  # back, empty
                _poll(lambda: _health(url).json()["status"] == "ok", "the store to answer")
                third = _turn(ws, second.response.id, "and on")
                assert third.type == "response.completed"
                assert _stats(url)["checkpoint_writes"] == 2
            with client.responses.connect() as later:  # a reconnect resumes from Redis
                resumed = _turn(later, third.response.id, "after reconnect")
                assert resumed.type == "response.completed"
            stats = _stats(url)
            assert stats["resumes"] == 1  # this one (the refused one is a miss)
            assert stats["hits_checkpoint"] == 1
        finally:
            client.close()
            gateway.stop()
            redis.stop()


def test_stored_responses_in_redis_are_retrieved_and_deleted_on_any_replica_by_their_owner(
    upstream: str,
) -> None:
    """Two replicas sharing Redis: a response stored through one is retrieved through the
    other (the response object, not the conversation: docs/gateway.md); another key gets
    not found; its owner's
    DELETE through one replica is seen by both; a ``store=false`` response has nothing to
    retrieve."""
    with tempfile.TemporaryDirectory(prefix="rig-redis-") as directory:
        port = free_port()
        redis = _redis(port, directory)
        store = ("--store", f"redis://127.0.0.1:{port}/0")
        one, url_one = start_gateway(upstream, *store)
        two, url_two = start_gateway(upstream, *store)
        owner = "sk-ops-client-0007"
        first = openai.OpenAI(base_url=url_one, api_key=owner, max_retries=0)
        second = openai.OpenAI(base_url=url_two, api_key=owner, max_retries=0)
        stranger = openai.OpenAI(base_url=url_two, api_key="sk-ops-client-0008", max_retries=0)
        try:
            made = [first.responses.create(model="mock-agent", input="start " + "log " * 200)]
            for step in range(3):
                made.append(
                    first.responses.create(
                        model="mock-agent", previous_response_id=made[-1].id, input=f"step {step}"
                    )
                )
            unstored = first.responses.create(model="mock-agent", input="hi", store=False)
            for response in made:
                found = second.responses.retrieve(response.id)
                assert found.id == response.id and found.output_text == response.output_text
                assert found.previous_response_id == response.previous_response_id
            with pytest.raises(openai.NotFoundError):
                stranger.responses.retrieve(made[-1].id)
            with pytest.raises(openai.NotFoundError):
                stranger.responses.delete(made[-1].id)
            with pytest.raises(openai.NotFoundError):
                second.responses.retrieve(unstored.id)
            second.responses.delete(made[1].id)
            for client in (first, second):
                with pytest.raises(openai.NotFoundError):
                    client.responses.retrieve(made[1].id)
                assert client.responses.retrieve(made[3].id).id == made[3].id
            # the conversation through the deleted response still continues
            after = second.responses.create(
                model="mock-agent", previous_response_id=made[3].id, input="go on"
            )
            assert after.status == "completed"
            assert _stats(url_two)["hits_checkpoint"] == 1
        finally:
            for client in (first, second, stranger):
                client.close()
            one.stop()
            two.stop()
            redis.stop()


def test_a_tiny_memory_cap_evicts_and_the_continuation_is_refused_not_confused(
    upstream: str,
) -> None:
    gateway, url = start_gateway(
        upstream, "--memory-max-bytes", "20000", "--store-max-bytes", "20000"
    )
    client = openai.OpenAI(base_url=url, api_key="sk-ops-client-0002", max_retries=0)
    try:
        with client.responses.connect() as old, client.responses.connect() as new:
            kept = _turn(old, None, "first conversation")
            previous = _turn(new, None, "second conversation")
            assert _stats(url)["sessions"] == 2
            # The second conversation grows until the cap pushes the first one out of
            # memory (and, least recently used there too, out of the checkpoints).
            for step in range(60):
                if _stats(url)["sessions"] == 1:
                    break
                previous = _turn(new, previous.response.id, f"step {step} " + "x" * 400)
                assert previous.type == "response.completed"
            else:
                raise AssertionError("the memory cap never evicted anything")
            event = _turn(old, kept.response.id, "still there?")
            assert event.type == "error" and event.error.code == "previous_response_not_found"
            again = _turn(new, previous.response.id, "the survivor continues")
            assert again.type == "response.completed"
        stats = _stats(url)
        assert stats["evictions"] >= 2  # from memory and from the checkpoints
        assert stats["misses_evicted"] == 1
        assert stats["session_bytes"] == 0  # both connections closed: memory released
    finally:
        client.close()
        gateway.stop()


def test_packed_conversations_continue_byte_for_byte_and_stay_their_owners(
    upstream: str,
) -> None:
    """Conversations packed while idle (``--compact-after``), in the connection's memory and
    in the in-process checkpoints' records: the connection continues, another connection
    resumes an earlier (packed) response, GET and DELETE answer for packed responses, and
    another key gets the unknown id's answer."""
    gateway, url = start_gateway(upstream, "--compact-after", "0.2")
    client = openai.OpenAI(base_url=url, api_key="sk-ops-client-0005", max_retries=0)
    stranger = openai.OpenAI(base_url=url, api_key="sk-ops-client-0006", max_retries=0)

    def stored_turn(connection: Any, previous: str | None, text: str) -> Any:
        connection.response.create(
            model="mock-agent", previous_response_id=previous, input=text, store=True
        )
        event = until_done(connection)
        assert event.type == "response.completed"
        return event.response

    def packed_since(before: dict[str, Any]) -> None:
        def done() -> bool:
            stats = _stats(url)
            return stats["compaction_backlog"] == 0 and stats["compactions"] > before["compactions"]

        _poll(done, "the idle conversation to be packed")

    try:
        with client.responses.connect() as ws:
            made = [stored_turn(ws, None, "start " + "the build failed in step three; " * 30)]
            for step in range(2):
                made.append(stored_turn(ws, made[-1].id, f"step {step} " + "log line " * 80))
            packed_since({"compactions": 0})
            before = _stats(url)
            assert before["session_bytes"] > 0 and before["compacted_bytes"] > 0
            # The same connection continues its packed conversation...
            made.append(stored_turn(ws, made[-1].id, "go on"))
            assert _stats(url)["hits_connection"] == before["hits_connection"] + 1
            packed_since(before)
        # ...and after it closed, another resumes an earlier packed response (a branch).
        with client.responses.connect() as other:
            branch = stored_turn(other, made[1].id, "branch from the second")
            assert branch.id not in {m.id for m in made}
            with stranger.responses.connect() as foreign:  # another key: not found
                foreign.response.create(
                    model="mock-agent", previous_response_id=made[2].id, input="mine?"
                )
                event = until_done(foreign)
                assert event.type == "error"
                assert event.error.code == "previous_response_not_found"
        stats = _stats(url)
        assert stats["hits_checkpoint"] >= 1 and stats["misses_foreign"] == 1
        # GET and DELETE of packed responses, by their owner only.
        for response in made:
            assert client.responses.retrieve(response.id).id == response.id
        with pytest.raises(openai.NotFoundError):
            stranger.responses.retrieve(made[0].id)
        with pytest.raises(openai.NotFoundError):
            stranger.responses.delete(made[0].id)
        client.responses.delete(made[0].id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(made[0].id)
        assert client.responses.retrieve(made[1].id).id == made[1].id  # the rest stays
    finally:
        client.close()
        stranger.close()
        gateway.stop()


def test_metrics_expose_the_same_figures_as_stats(upstream: str) -> None:
    gateway, url = start_gateway(upstream)
    client = openai.OpenAI(base_url=url, api_key="sk-ops-client-0003", max_retries=0)
    try:
        with client.responses.connect() as ws:
            first = _turn(ws, None, "hello")
            _turn(ws, first.response.id, "again")
            _turn(ws, "resp_unknown", "nope")
            text = httpx.get(_origin(url) + "/metrics", timeout=10).text
            stats = _stats(url)
    finally:
        client.close()
        gateway.stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("rig_gateway_connections_open", ())] == 1
    assert samples[("rig_gateway_cache_hits_total", (("source", "connection"),))] == 1
    assert samples[("rig_gateway_cache_misses_total", (("cause", "unknown"),))] == 1
    assert (
        samples[("rig_gateway_client_bytes_total", (("direction", "in"),))]
        == stats["client_bytes_in"]
    )
    assert (
        samples[("rig_gateway_upstream_bytes_total", (("direction", "out"),))]
        == stats["upstream_bytes_out"]
    )
    assert samples[("rig_gateway_checkpoint_writes_total", ())] == stats["checkpoint_writes"] == 2
    assert samples[("rig_gateway_upstream_ttfb_seconds_count", ())] == 2
    # The gateway's own time to the first event, per streamed response: the two answered.
    assert samples[("rig_gateway_relay_seconds_count", ())] == stats["relayed_first"] == 2
    relay_sum_us = 1e6 * samples[("rig_gateway_relay_seconds_sum", ())]
    assert stats["relay_us"] > 0 and abs(stats["relay_us"] - relay_sum_us) <= 2  # µs truncated
    assert samples[("rig_gateway_sessions", ())] == 1
    assert samples[("rig_gateway_memory_rss_bytes", ())] > 0


def test_sigterm_finishes_the_response_in_flight_then_sends_the_documented_close() -> None:
    mock, upstream = start_mock("--preset", SLOW_PRESET)
    gateway, url = start_gateway(upstream, "--drain-timeout", "30")
    ws_url = url.replace("http://", "ws://") + "/responses"
    try:
        with connect(ws_url, additional_headers={"Authorization": "Bearer sk-drain-0001"}) as ws:
            ws.send(json.dumps({"type": "response.create", "model": "mock-agent",
                                "input": "write a long answer", "store": False}))  # fmt: skip
            assert json.loads(ws.recv(timeout=10))["type"] == "response.created"
            gateway.process.send_signal(signal.SIGTERM)
            _poll(lambda: _health(url).status_code == 503, "/health to say draining")
            assert _stats(url)["draining"] == 1
            events = []
            while True:
                event = json.loads(ws.recv(timeout=30))
                events.append(event)
                if event["type"] == "error":
                    break
            types = [e["type"] for e in events]
            assert "response.completed" in types
            assert types.index("response.completed") == len(types) - 2
            assert events[-1]["error"]["code"] == "websocket_connection_limit_reached"
            with pytest.raises(Exception) as closed:
                ws.recv(timeout=10)
            assert ws.close_code == 1000, closed.value
        assert gateway.process.wait(timeout=30) is not None
    finally:
        gateway.stop()
        mock.stop()
