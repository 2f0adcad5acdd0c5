"""The gateway's configuration and upstream calls, end to end with mocks as upstreams:
several upstreams from a YAML file, client keys passed through (and never logged),
organisations sharing responses, encrypted reasoning carried in the re-sent context, and
the bytes counted (HTTP/2 upstreams: tests/integration/test_gateway_http2.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from rig.gateway.config import UpstreamConfig
from rig.gateway.stats import GatewayStats
from rig.gateway.upstream import Upstream, UpstreamCall
from rig.protocol.requests import parse_create_request
from tests.sdk import until_done
from tests.servers import ManagedProcess, free_port, server_stats, start_gateway, start_mock

ALPHA = "sk-pass-alpha-4b7e19d2c6"
BETA = "sk-pass-beta-83f0a5e1d7"
WRONG = "sk-pass-wrong-5c2d9e7a01"


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[ManagedProcess, str]:
    """``rig gateway`` with ``args`` only (no ``--upstream``: a ``--config`` names them)."""
    port = free_port()
    argv = [sys.executable, "-m", "rig", "gateway", "--port", str(port), *args]
    process = ManagedProcess(argv, "rig gateway listening on", env=env)
    process.wait_ready()
    return process, f"http://127.0.0.1:{port}/v1"


def _sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


# -- several upstreams from a file ------------------------------------------------------


def test_models_go_to_the_upstream_naming_them_and_options_override_the_file(
    tmp_path: Path, mock_url: str
) -> None:
    file_port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"port: {file_port}\n"
        "upstreams:\n"
        f"  - base_url: {mock_url}\n"
        "    dialect: responses\n"
        "    models: [agent-r]\n"
        "    model_map: {agent-r: mock-agent}\n"
        f"  - base_url: {mock_url}\n"
        "    dialect: chat\n"
    )
    gateway, url = _start("--config", str(config), "--log-level", "info")  # --port wins
    try:
        assert not url.endswith(f":{file_port}/v1")
        with _sdk(url, "sk-any") as client:
            chats = server_stats(mock_url)["chat_completions"]
            routed = client.responses.create(model="agent-r", input="Explain the fix")
            assert routed.status == "completed" and routed.model == "agent-r"
            assert server_stats(mock_url)["chat_completions"] == chats  # the responses upstream
            other = client.responses.create(model="anything-else", input="Explain the fix")
            assert other.status == "completed"
            assert server_stats(mock_url)["chat_completions"] == chats + 1  # the one naming none
        upstreams = server_stats(url)["upstreams"]
        assert [u["dialect"] for u in upstreams] == ["responses", "chat"]
        assert [u["http2"] for u in upstreams] == [False, False]
    finally:
        gateway.stop()


def test_the_models_api_lists_routed_names_and_the_catch_all_upstreams_models(
    tmp_path: Path, mock_url: str
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams:\n"
        f"  - base_url: {mock_url}\n"
        "    models: [agent-r, agent-s]\n"
        f"  - base_url: {mock_url}\n"
    )
    gateway, url = _start("--config", str(config))
    dead, dead_url = _start("--upstream", f"http://127.0.0.1:{free_port()}/v1")
    try:
        with _sdk(url, "sk-any") as client:
            listed = [model.id for model in client.models.list()]
            assert listed[:2] == ["agent-r", "agent-s"]
            assert "mock-agent" in listed  # the catch-all upstream's own list
            assert client.models.retrieve("agent-s").id == "agent-s"
            assert client.models.retrieve("any/other-model").id == "any/other-model"
        with _sdk(dead_url, "sk-any") as client, pytest.raises(openai.APIStatusError) as failed:
            client.models.list()
        assert failed.value.status_code == 502
        assert failed.value.body["code"] == "upstream_error"
    finally:
        gateway.stop()
        dead.stop()


# -- reasoning with store=false upstreams -----------------------------------------------


@pytest.fixture(scope="module")
def thinking_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    preset = tmp_path_factory.mktemp("preset") / "thinker.yaml"
    preset.write_text(
        "name: thinker\nbase_ms: 0\nparse_ms_per_kb: 0\nrehydrate_ms_per_kb: 0\n"
        "prefill_ms_per_1k_tokens: 0\ntokens_per_s: 0\njitter: 0\nreasoning_tokens: 150\n"
    )
    process, url = start_mock("--preset", str(preset))
    yield url
    process.stop()


ENCRYPTED = "reasoning.encrypted_content"


def _create(url: str, body: dict) -> dict:
    answer = httpx.post(
        url + "/responses", json=body, headers={"authorization": "Bearer sk-r"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_reasoning_items_keep_their_encrypted_content_in_the_resent_context(
    thinking_mock: str,
) -> None:
    gateway, url = start_gateway(thinking_mock)
    try:
        question = {"type": "message", "role": "user", "content": "Explain the fix"}
        # The client does not ask for encrypted reasoning; the gateway does, of its
        # store=false upstream, or the reasoning could not be carried to the next turn.
        first = _create(url, {"model": "mock-agent", "input": [question], "store": True})
        reasoning = first["output"][0]
        # ... and keeps it: the client gets the item as the API sends it without include.
        assert reasoning["type"] == "reasoning" and "encrypted_content" not in reasoning
        before = server_stats(url)["upstream_bytes_out"]
        follow_up = {"type": "message", "role": "user", "content": "go on"}
        second = _create(
            url,
            {
                "model": "mock-agent",
                "previous_response_id": first["id"],
                "input": [follow_up],
                "store": True,
            },
        )
        assert second["status"] == "completed"
        # The second upstream call carried the first turn whole, its encrypted reasoning
        # (over 500 bytes at this preset) included.
        resent = server_stats(url)["upstream_bytes_out"] - before
        context = orjson.dumps([question, *first["output"], follow_up])
        assert resent >= len(context) + 500
        # A client that asks gets it, in the events and in the response.
        asked = {"model": "mock-agent", "input": "Explain", "include": [ENCRYPTED]}
        assert len(_create(url, asked)["output"][0]["encrypted_content"]) > 500
        streamed = httpx.post(
            url + "/responses",
            json={"model": "mock-agent", "input": "Explain", "stream": True},
            headers={"authorization": "Bearer sk-r"},
            timeout=30,
        )
        assert b"reasoning" in streamed.content
        assert b"encrypted_content" not in streamed.content
        # GET answers the same way: the content only to a client that asks.
        with openai.OpenAI(base_url=url, api_key="sk-r", max_retries=0) as client:
            kept = client.responses.retrieve(first["id"])
            assert kept.output[0].type == "reasoning" and not kept.output[0].encrypted_content
            asked_again = client.responses.retrieve(first["id"], include=[ENCRYPTED])
            assert len(asked_again.output[0].encrypted_content or "") > 500
    finally:
        gateway.stop()


def test_encrypted_reasoning_is_not_asked_for_when_turned_off(thinking_mock: str) -> None:
    gateway, url = start_gateway(thinking_mock, "--no-encrypted-reasoning")
    try:
        first = _create(url, {"model": "mock-agent", "input": "Explain the fix"})
        assert first["output"][0]["type"] == "reasoning"
        assert not first["output"][0].get("encrypted_content")
        asked = _create(
            url,
            {"model": "mock-agent", "input": "Explain", "include": ["reasoning.encrypted_content"]},
        )
        assert asked["output"][0]["encrypted_content"]  # the client's own include still goes
    finally:
        gateway.stop()


# -- client keys passed through ---------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_mock() -> Iterator[str]:
    process, url = start_mock("--preset", "instant", "--api-key", ALPHA, "--api-key", BETA)
    yield url
    process.stop()


@pytest.fixture(scope="module")
def pass_through(keyed_mock: str) -> Iterator[str]:
    process, url = start_gateway(keyed_mock, "--client-keys", "pass-through")
    yield url
    process.stop()


def test_the_upstream_judges_a_passed_through_key_and_its_refusal_is_the_clients(
    pass_through: str,
) -> None:
    with _sdk(pass_through, ALPHA) as client:
        assert client.responses.create(model="mock-agent", input="hi").status == "completed"
    with _sdk(pass_through, WRONG) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.responses.create(model="mock-agent", input="hi")
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
        with client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="hi", store=False)
            event = until_done(connection)
            assert event.type == "error" and event.status == 401
            assert event.error.code == "invalid_api_key"
    anonymous = httpx.post(pass_through + "/responses", json={"model": "m", "input": "hi"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_api_key"


def test_a_passed_through_key_owns_what_it_creates(pass_through: str) -> None:
    with _sdk(pass_through, ALPHA) as alpha:
        created = alpha.responses.create(model="mock-agent", input="secret plan", store=True)
        assert alpha.responses.retrieve(created.id).id == created.id
    with _sdk(pass_through, BETA) as beta:  # a key the upstream accepts too
        with pytest.raises(openai.NotFoundError):
            beta.responses.retrieve(created.id)
        with pytest.raises(openai.BadRequestError) as caught:
            beta.responses.create(
                model="mock-agent", previous_response_id=created.id, input="go on"
            )
        assert caught.value.code == "previous_response_not_found"


def test_a_passed_through_key_is_never_logged_even_at_debug(keyed_mock: str) -> None:
    gateway, url = start_gateway(
        keyed_mock, "--client-keys", "pass-through", "--log-level", "debug"
    )
    try:
        with _sdk(url, ALPHA) as client:
            created = client.responses.create(model="mock-agent", input="hi", store=True)
            client.responses.retrieve(created.id)
            list(client.responses.create(model="mock-agent", input="hi", stream=True))
            with client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="hi", store=False)
                assert until_done(connection).type == "response.completed"
                connection.response.create(
                    model="mock-agent", previous_response_id="resp_x", input="x"
                )
                assert until_done(connection).type == "error"
        with _sdk(url, WRONG) as client, pytest.raises(openai.AuthenticationError):
            client.responses.create(model="mock-agent", input="hi")
    finally:
        gateway.stop()
    output = "".join(gateway.output)
    assert "rig gateway listening on" in output
    assert "DEBUG" in output or "INFO" in output  # it did log at debug
    for key in (ALPHA, WRONG):
        assert key not in output
        assert key[-10:] not in output  # not even a key's tail


# -- organisations ----------------------------------------------------------------------


def test_keys_of_one_organisation_share_their_responses(tmp_path: Path, mock_url: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"upstreams: [{{base_url: '{mock_url}'}}]\n"
        "clients:\n"
        "  - {key_env: TEAM_A_KEY, org: org-agents}\n"
        "  - {key_env: TEAM_B_KEY, org: org-agents}\n"
        "  - {key_env: OPS_KEY}\n"
    )
    keys = {
        "TEAM_A_KEY": "sk-team-a-0001",
        "TEAM_B_KEY": "sk-team-b-0002",
        "OPS_KEY": "sk-ops-0003",
    }
    gateway, url = _start("--config", str(config), env=keys)
    try:
        with _sdk(url, keys["TEAM_A_KEY"]) as team_a:
            created = team_a.responses.create(model="mock-agent", input="plan", store=True)
        with _sdk(url, keys["TEAM_B_KEY"]) as team_b:
            assert team_b.responses.retrieve(created.id).id == created.id
            follow = team_b.responses.create(
                model="mock-agent", previous_response_id=created.id, input="go on", store=True
            )
            assert follow.status == "completed"
        with _sdk(url, keys["OPS_KEY"]) as ops, pytest.raises(openai.NotFoundError):
            ops.responses.retrieve(created.id)
        # The organisation is the configuration's, not a header a caller may claim.
        claimed = httpx.get(
            f"{url}/responses/{created.id}",
            headers={
                "authorization": f"Bearer {keys['OPS_KEY']}",
                "openai-organization": "org-agents",
            },
        )
        assert claimed.status_code == 404
        with _sdk(url, "sk-not-listed-0004") as stranger, pytest.raises(openai.AuthenticationError):
            stranger.responses.create(model="mock-agent", input="hi")
    finally:
        gateway.stop()


# -- the upstream client counts the bytes on the wire -------------------------------------


def test_upstream_bytes_are_the_bodies_the_upstream_counted(mock_url: str) -> None:
    """One streamed call against the real mock: the events arrive whole and in order, and
    the gateway's upstream byte counters equal the request and response bodies the mock
    counted (no compression, nothing decoded in between)."""

    async def call() -> tuple[list[str], GatewayStats]:
        stats = GatewayStats()
        upstream = Upstream(UpstreamConfig(mock_url), stats)
        body = {"model": "mock-agent", "input": "hi"}
        request = parse_create_request(body)
        transcript = [{"type": "message", "role": "user", "content": "hi"}]
        try:
            events = [
                e.type async for e in upstream.stream(UpstreamCall(request, body, transcript))
            ]
        finally:
            await upstream.close()
        return events, stats

    before = server_stats(mock_url)
    events, stats = asyncio.run(call())
    after = server_stats(mock_url)
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.output_text.delta" in events
    counted = stats.snapshot()
    assert counted["upstream_bytes_out"] == after["bytes_in"] - before["bytes_in"]
    assert counted["upstream_bytes_in"] == after["bytes_out"] - before["bytes_out"]
