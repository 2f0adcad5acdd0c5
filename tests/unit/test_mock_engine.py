"""The mock's engine: context resolution, tool pairing, token accounting, prompt cache,
latency model and presets - no sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from pathlib import Path

import pytest

from rig.conversation import ANONYMOUS_OWNER, ConnectionCache, MemoryStore, StoredResponse
from rig.mock.engine import PromptCache, TurnEngine, cacheable_tokens
from rig.mock.latency import LatencyModel, PresetError, builtin_presets, load_preset
from rig.protocol.errors import InvalidRequestError, PreviousResponseNotFoundError
from rig.protocol.requests import parse_create_request
from rig.protocol.tokens import split_tokens
from rig.workload.policy import ModelTurn, ToolCall


class EchoPolicy:
    """A stand-in model at the policy boundary: one tool call, then an answer."""

    def __init__(self) -> None:
        self.transcripts: list[list[dict]] = []

    def next_turn(self, transcript, tools, metadata=None) -> ModelTurn:
        self.transcripts.append(list(transcript))
        if transcript[-1]["type"] == "function_call_output":
            return ModelTurn(text="Done: " + transcript[-1]["output"], tool_calls=())
        return ModelTurn(text="Reading.", tool_calls=(ToolCall("read_file", '{"path": "a.ts"}'),))


def _engine(
    latency: LatencyModel | None = None, store: MemoryStore | None = None
) -> tuple[TurnEngine, EchoPolicy]:
    policy = EchoPolicy()
    store = store if store is not None else MemoryStore()
    return TurnEngine(policy, latency or LatencyModel(), store, seed=1), policy


def _run(coro):
    return asyncio.run(coro)


def _request(**body) -> object:
    return parse_create_request({"model": "m", **body})


def _turn(engine: TurnEngine, request, body_bytes: int = 100, connection=None):
    async def go():
        turn = await engine.prepare(request, body_bytes=body_bytes, connection=connection)
        turn.run_to_completion()
        stored = await engine.finish(turn, connection=connection)
        return turn, stored

    return _run(go())


def test_cacheable_tokens_follow_the_1024_and_128_rule() -> None:
    assert cacheable_tokens(1023) == 0
    assert cacheable_tokens(1024) == 1024
    assert cacheable_tokens(1300) == 1280
    assert cacheable_tokens(0) == 0


def test_continuation_from_the_connection_cache_sees_the_whole_conversation() -> None:
    engine, policy = _engine()
    cache = ConnectionCache()
    first, _ = _turn(engine, _request(input="fix it", store=False), connection=cache)
    call_id = first.call_pieces[0][0]
    output = [{"type": "function_call_output", "call_id": call_id, "output": "contents"}]
    second, _ = _turn(
        engine,
        _request(input=output, previous_response_id=first.stream.response_id, store=False),
        connection=cache,
    )
    assert [i["type"] for i in policy.transcripts[-1]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert second.model_turn.text == "Done: contents"
    assert second.input_tokens > first.input_tokens


def test_store_false_is_not_persisted_and_store_true_is() -> None:
    store = MemoryStore()
    engine, _ = _engine(store=store)
    unstored, _ = _turn(engine, _request(input="a", store=False))
    stored, _ = _turn(engine, _request(input="b", store=True))
    assert _run(store.get(ANONYMOUS_OWNER, unstored.stream.response_id)) is None
    assert (
        _run(store.get(ANONYMOUS_OWNER, stored.stream.response_id)).response["status"]
        == "completed"
    )


def test_unknown_previous_response_id_raises_not_found() -> None:
    engine, _ = _engine()
    with pytest.raises(PreviousResponseNotFoundError):
        _turn(engine, _request(input="x", previous_response_id="resp_missing"))


def test_a_continuation_must_answer_every_pending_call() -> None:
    engine, _ = _engine()
    first, _ = _turn(engine, _request(input="go", store=True))
    with pytest.raises(InvalidRequestError, match="No tool output found"):
        _turn(
            engine, _request(input="ignore the call", previous_response_id=first.stream.response_id)
        )


def test_an_output_for_an_unknown_call_is_refused() -> None:
    engine, _ = _engine()
    orphan = [{"type": "function_call_output", "call_id": "call_x", "output": "?"}]
    with pytest.raises(InvalidRequestError, match="call_x"):
        _turn(engine, _request(input=orphan))


def test_empty_input_without_previous_response_is_refused() -> None:
    engine, _ = _engine()
    with pytest.raises(InvalidRequestError) as caught:
        _turn(engine, _request(input=[]))
    assert caught.value.param == "input"


def test_stateless_resend_of_a_known_prefix_reports_cached_tokens() -> None:
    engine, _ = _engine()
    prompt = "x" * 6000  # about 1,500 tokens: over the cache minimum
    first, stored = _turn(engine, _request(input=prompt, store=False))
    assert first.cached_tokens == 0
    assert first.usage["input_tokens_details"]["cache_write_tokens"] == cacheable_tokens(
        first.input_tokens
    )
    call_id = first.call_pieces[0][0]
    history = [{"role": "user", "content": prompt}]
    history += [
        {"type": "message", "role": "assistant", "content": "Reading."},
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "read_file",
            "arguments": '{"path": "a.ts"}',
        },
        {"type": "function_call_output", "call_id": call_id, "output": "contents"},
    ]
    second, _ = _turn(engine, _request(input=history, store=False))
    assert second.cached_tokens == cacheable_tokens(stored.context_tokens)
    assert 0 < second.cached_tokens < second.input_tokens


def test_prompt_cache_hit_rate_zero_never_hits() -> None:
    engine, _ = _engine(LatencyModel(prompt_cache_hit_rate=0.0))
    _turn(engine, _request(input="y" * 6000, store=False))
    again, _ = _turn(engine, _request(input="y" * 6000, store=False))
    assert again.cached_tokens == 0


def test_prompt_cache_is_bounded() -> None:
    cache = PromptCache(max_entries=2)
    for key in (b"a", b"b", b"c"):
        cache.add(hash(key), 1)
    assert cache.longest([hash(b"a")]) == 0 and cache.longest([hash(b"c")]) == 1


def test_ttft_grows_with_processed_bytes_rehydration_and_uncached_tokens() -> None:
    model = LatencyModel(
        base_ms=100, parse_ms_per_kb=2, rehydrate_ms_per_kb=1, prefill_ms_per_1k_tokens=50
    )
    rng = random.Random(0)
    assert model.ttft_s(0, 0, 0, rng) == pytest.approx(0.1)
    assert model.ttft_s(10 * 1024, 0, 0, rng) == pytest.approx(0.12)
    assert model.ttft_s(0, 10 * 1024, 0, rng) == pytest.approx(0.11)
    assert model.ttft_s(0, 0, 2000, rng) == pytest.approx(0.2)


def test_http_full_context_pays_parse_cost_that_a_ws_continuation_does_not() -> None:
    latency = LatencyModel(parse_ms_per_kb=10)
    engine, _ = _engine(latency)
    cache = ConnectionCache()
    first, _ = _turn(
        engine, _request(input="start", store=False), body_bytes=2_000, connection=cache
    )
    call_id = first.call_pieces[0][0]
    output = [{"type": "function_call_output", "call_id": call_id, "output": "o"}]
    ws_turn, _ = _turn(
        engine,
        _request(input=output, previous_response_id=first.stream.response_id, store=False),
        body_bytes=2_000,
        connection=cache,
    )
    http_turn, _ = _turn(engine, _request(input="start", store=False), body_bytes=40_000)
    assert http_turn.ttft_s > ws_turn.ttft_s * 10


def test_jitter_is_seeded() -> None:
    model = LatencyModel(base_ms=1000, jitter=0.2)
    a = [model.ttft_s(0, 0, 0, random.Random(7)) for _ in range(3)]
    b = [model.ttft_s(0, 0, 0, random.Random(7)) for _ in range(3)]
    assert a == b and len({model.ttft_s(0, 0, 0, random.Random(s)) for s in range(5)}) == 5


def test_timed_events_are_paced_by_ttft_and_token_rate() -> None:
    engine, _ = _engine(LatencyModel(base_ms=500, tokens_per_s=100))
    turn = _run(engine.prepare(_request(input="go"), body_bytes=10))
    timed = list(turn.timed_events())
    assert timed[0][0] == 0.0  # response.created leaves at once
    first_delta = next(t for t, e in timed if e["type"].endswith(".delta"))
    assert first_delta == pytest.approx(0.5)
    assert timed[-1][0] == pytest.approx(0.5 + 0.01 * turn.output_tokens)
    assert turn.total_s == pytest.approx(timed[-1][0])


def test_delta_tokens_coalesces_deltas_but_keeps_the_text() -> None:
    def deltas(engine: TurnEngine) -> list[str]:
        turn = _run(engine.prepare(_request(input="go"), body_bytes=1))
        return [e["delta"] for _, e in turn.timed_events() if e["type"].endswith(".delta")]

    one = deltas(_engine()[0])
    four = deltas(TurnEngine(EchoPolicy(), LatencyModel(), MemoryStore(), delta_tokens=4))
    text_tokens = len(split_tokens("Reading."))
    arg_tokens = len(split_tokens('{"path": "a.ts"}'))
    assert len(one) == text_tokens + arg_tokens
    assert len(four) == -(-text_tokens // 4) + -(-arg_tokens // 4)
    assert "".join(four) == "".join(one)


def test_builtin_presets_load_and_are_ordered_by_speed() -> None:
    presets = builtin_presets()
    assert {"instant", "fast", "gpt-5.4"} <= set(presets)
    assert presets["instant"].instant
    rng = random.Random(0)
    assert presets["fast"].ttft_s(4096, 0, 1000, rng) < presets["gpt-5.4"].ttft_s(
        4096, 0, 1000, rng
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base_ms: -1\n", "base_ms: must be >= 0"),
        ("base_ms: fast\n", "base_ms: expected a number"),
        ("speed: 3\n", "unknown field(s) speed"),
        ("prompt_cache_hit_rate: 2\n", "between 0 and 1"),
        ("preamble_scale: 1.5\n", "preamble_scale: must be between 0 and 1"),
        ("answer_scale: 2\n", "answer_scale: must be between 0 and 1"),
        ("- a list\n", "expected a mapping"),
        ("base_ms: [\n", "not valid YAML"),
    ],
)
def test_bad_preset_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(PresetError, match=re.escape(message)):
        load_preset(str(path))


def test_unknown_preset_name_lists_the_known_ones() -> None:
    with pytest.raises(PresetError, match=r"gpt-5\.4"):
        load_preset("warp-speed")


def test_stored_response_round_trips_through_bytes() -> None:
    stored = StoredResponse(
        {"id": "resp_1"}, [{"type": "message", "role": "user", "content": "é"}], 5, 9
    )
    assert StoredResponse.from_bytes(stored.to_bytes()) == stored


def test_preamble_scale_zero_answers_with_the_calls_alone() -> None:
    engine, _ = _engine(LatencyModel(preamble_scale=0.0))
    turn, _ = _turn(engine, _request(input="fix it", store=False))
    assert turn.text_pieces == []
    assert [item["type"] for item in turn.stream.output] == ["function_call"]
    assert "".join(turn.call_pieces[0][2]) == '{"path": "a.ts"}'
    assert turn.output_tokens == len(split_tokens('{"path": "a.ts"}'))


def test_answer_scale_keeps_the_start_of_the_final_answer() -> None:
    answer = "Fixed the failing test by correcting the date parser and its time zone handling."
    model = LatencyModel(answer_scale=0.5)
    kept = model.kept_text(answer, final=True)
    tokens = split_tokens(answer)
    assert answer.startswith(kept)
    assert len(split_tokens(kept)) == round(len(tokens) * 0.5)
    assert LatencyModel(answer_scale=0.0).kept_text(answer, final=True) == tokens[0]
    assert model.kept_text(answer, final=False) == answer  # preambles are preamble_scale's


def _task_lengths(latency: LatencyModel) -> tuple[int, int]:
    """Output tokens of the stand-in model's tool turn and final answer."""
    engine, _ = _engine(latency)
    first, _ = _turn(engine, _request(input="fix it", store=False))
    call_id = first.call_pieces[0][0]
    output = [{"type": "function_call_output", "call_id": call_id, "output": "x" * 200}]
    history = [{"role": "user", "content": "fix it"}, *first.stream.output, *output]
    final, _ = _turn(engine, _request(input=history, store=False))
    assert final.model_turn.is_final
    return first.output_tokens, final.output_tokens


def test_output_scales_shorten_what_the_mock_streams() -> None:
    full_call, full_answer = _task_lengths(LatencyModel())
    call, answer = _task_lengths(LatencyModel(preamble_scale=0.0, answer_scale=0.5))
    assert call == full_call - len(split_tokens("Reading."))
    assert 0 < answer < full_answer


def test_gpt_5_4_preset_says_no_preamble_and_a_short_answer() -> None:
    """Calibrated to the published bytes per task (docs/metrics.md)."""
    model = load_preset("gpt-5.4")
    assert model.preamble_scale == 0.0
    assert 0.0 < model.answer_scale < 1.0


def test_gpt_5_4_preset_lands_on_the_published_ttft_figures() -> None:
    """Published: TTFT 1,075-1,255 ms on the first turn, about 1,111 ms for WebSocket turns
    and 1,253 ms for HTTP turns on average (docs/architecture.md, latency model)."""
    model = dataclasses.replace(load_preset("gpt-5.4"), jitter=0.0)
    rng = random.Random(0)
    first_turn = model.ttft_s(2_700, 0, 700, rng)
    ws_turn = model.ttft_s(3_500, 0, 1_000, rng)  # new items only, context in memory
    # A mid-task HTTP turn (20 KB, 5,000 tokens): half the time the prefix cache hits.
    http_hit = model.ttft_s(20_000, 0, 1_000, rng)
    http_miss = model.ttft_s(20_000, 0, 5_000, rng)
    http_mean = (
        model.prompt_cache_hit_rate * http_hit + (1 - model.prompt_cache_hit_rate) * http_miss
    )
    assert 1.05 <= first_turn <= 1.26
    assert 1.05 <= ws_turn <= 1.2
    assert 1.2 <= http_mean <= 1.35
    assert 1.0 / model.tokens_per_s < 0.012  # ~100 tokens/s decode


def test_a_reasoning_model_thinks_first_and_reports_it() -> None:
    engine, policy = _engine(LatencyModel(reasoning_tokens=100))
    plain, _ = _turn(engine, _request(input="go", store=False))
    asked, stored = _turn(
        engine, _request(input="go", store=False, include=["reasoning.encrypted_content"])
    )
    for turn in (plain, asked):
        assert turn.stream.output[0]["type"] == "reasoning"
        details = turn.usage["output_tokens_details"]
        assert details["reasoning_tokens"] == 100
        assert turn.usage["output_tokens"] == turn.output_tokens + 100
    assert "encrypted_content" not in plain.stream.output[0]
    # Only when asked: opaque, about 4 bytes per token of thought, base64.
    encrypted = asked.stream.output[0]["encrypted_content"]
    assert len(encrypted) == 4 * ((100 * 4 + 48 + 2) // 3)
    # The scripted model's view of the conversation has no reasoning in it.
    assert all(item["type"] != "reasoning" for item in stored.transcript)
    assert all(item["type"] != "reasoning" for item in policy.transcripts[-1])
