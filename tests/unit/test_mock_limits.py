"""The mock's rate limits: token-bucket maths on a fake clock, the headers and errors a
client sees, and the limits file - no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from rig.limits import (
    Limits,
    LimitsFileError,
    MemoryLimitStore,
    RateLimiter,
    Scope,
    ScopeState,
    Verdict,
    format_duration,
    load_limits_file,
    rate_limit_headers,
    refill,
)
from rig.protocol.errors import error_body, ws_error_event


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def key(limits: Limits, label: str = "team-a") -> Scope:
    return Scope(f"key:{label}", label, "key", limits)


def org(limits: Limits, label: str = "org-agents") -> Scope:
    return Scope(f"org:{label}", label, "org", limits)


def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(load_limits_file(None, Limits()), MemoryLimitStore(clock))


def admit(rl: RateLimiter, scopes: tuple[Scope, ...], tokens: int = 10) -> Verdict:
    return run(rl.admit(scopes, tokens, "mock-agent"))


# -- buckets ---------------------------------------------------------------------------------


def test_a_bucket_refills_at_the_limit_per_minute_up_to_its_capacity() -> None:
    limits = Limits(rpm=60, tpm=600)
    state = ScopeState(requests=0.0, tokens=0.0, updated=0.0)
    refill(state, limits, 0.5)
    assert (state.requests, state.tokens) == (0.5, 5.0)
    refill(state, limits, 3600.0)
    assert (state.requests, state.tokens) == (60.0, 600.0)


def test_a_clock_going_backwards_adds_nothing() -> None:
    state = ScopeState(requests=1.0, tokens=1.0, updated=10.0)
    refill(state, Limits(rpm=60, tpm=60), 5.0)
    assert (state.requests, state.tokens, state.updated) == (1.0, 1.0, 10.0)


def test_the_default_burst_admits_a_minutes_worth_at_once_then_one_per_refill() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    scopes = (key(Limits(rpm=60)),)
    assert all(admit(rl, scopes).error is None for _ in range(60))
    refused = admit(rl, scopes)
    assert refused.rejection is not None and refused.rejection.kind == "requests"
    assert refused.rejection.retry_after_s == pytest.approx(1.0)
    clock.advance(1.0)
    assert admit(rl, scopes).error is None


def test_burst_is_a_fraction_of_the_minutes_limit() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(rpm=60, burst=0.1)),)
    assert [admit(rl, scopes).error is None for _ in range(7)] == [True] * 6 + [False]


def test_a_tiny_burst_still_admits_one_request() -> None:
    rl = limiter(FakeClock())
    assert admit(rl, (key(Limits(rpm=1, burst=0.01)),)).error is None


def test_input_tokens_are_debited_at_admission_and_output_tokens_at_the_end() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(clock)
    rl = RateLimiter(load_limits_file(None, Limits()), store)
    scopes = (key(Limits(tpm=6000)),)
    admitted = admit(rl, scopes, tokens=1000)
    assert admitted.headers["x-ratelimit-remaining-tokens"] == "5000"
    run(rl.settle(scopes, 4500))
    assert store.states(scopes)[0].tokens == 500
    refused = admit(rl, scopes, tokens=1000)
    assert refused.rejection is not None and refused.rejection.kind == "tokens"
    assert refused.rejection.used == 5500 and refused.rejection.requested == 1000
    assert refused.rejection.retry_after_s == pytest.approx(5.0)  # 500 tokens at 100/s


def test_output_tokens_can_leave_the_token_bucket_in_debt() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(clock)
    rl = RateLimiter(load_limits_file(None, Limits()), store)
    scopes = (key(Limits(tpm=600)),)
    admit(rl, scopes, tokens=500)
    run(rl.settle(scopes, 400))
    refused = admit(rl, scopes, tokens=10)
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
    assert refused.rejection is not None
    assert refused.rejection.retry_after_s == pytest.approx(31.0)  # from -300 to 10 at 10/s


def test_a_request_larger_than_the_token_bucket_is_refused_without_a_wait() -> None:
    rl = limiter(FakeClock())
    refused = admit(rl, (key(Limits(tpm=1000)),), tokens=1001)
    assert refused.rejection is not None and refused.rejection.retry_after_s is None
    assert "retry-after" not in refused.headers
    assert refused.error is not None
    assert refused.error.message.startswith("Request too large for mock-agent in API key team-a")


def test_a_rejected_request_costs_nothing() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(clock)
    rl = RateLimiter(load_limits_file(None, Limits()), store)
    scopes = (key(Limits(rpm=60, tpm=100)),)
    admit(rl, scopes, tokens=95)
    admit(rl, scopes, tokens=50)
    state = store.states(scopes)[0]
    assert (state.requests, state.tokens, state.inflight) == (59, 5, 1)


def test_in_flight_responses_are_limited_and_released_when_they_end() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(max_inflight=2)),)
    first, second, third = (admit(rl, scopes) for _ in range(3))
    assert first.error is None and second.error is None
    assert third.rejection is not None and third.rejection.kind == "inflight"
    assert third.rejection.retry_after_s is None
    run(rl.settle(scopes, 0))
    assert admit(rl, scopes).error is None


def test_key_and_organisation_limits_both_apply_and_the_tighter_refuses() -> None:
    clock = FakeClock()
    rl = limiter(clock)
    organisation = org(Limits(rpm=3))
    team_a = (key(Limits(rpm=60), "team-a"), organisation)
    team_b = (key(Limits(rpm=60), "team-b"), organisation)
    assert admit(rl, team_a).error is None
    assert admit(rl, team_b).error is None
    accepted = admit(rl, team_a)
    assert accepted.headers["x-ratelimit-limit-requests"] == "3"  # the tighter scope's figures
    assert accepted.headers["x-ratelimit-remaining-requests"] == "0"
    refused = admit(rl, team_b)
    assert refused.rejection is not None and refused.rejection.scope is organisation
    assert refused.error is not None and "in organization org-agents" in refused.error.message


def test_of_several_refusals_the_longest_wait_is_reported() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(rpm=60, tpm=60)),)
    admit(rl, scopes, tokens=60)
    refused = admit(rl, scopes, tokens=30)  # requests: wait 0 s; tokens: 30 s
    assert refused.rejection is not None and refused.rejection.kind == "tokens"
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["retry-after-ms"] == "30000"


def test_connections_are_counted_until_they_close() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(max_connections=1)),)
    assert run(rl.connect(scopes)).error is None
    refused = run(rl.connect(scopes))
    assert refused.rejection is not None and refused.rejection.kind == "connections"
    assert refused.error is not None and refused.error.status == 429
    run(rl.disconnect(scopes))
    assert run(rl.connect(scopes)).error is None


def test_a_caller_without_limits_is_neither_charged_nor_given_headers() -> None:
    verdict = admit(limiter(FakeClock()), ())
    assert verdict.error is None and verdict.headers == {}


# -- headers and errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0001, "1ms"),
        (0.02, "20ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (17.28, "17.28s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_headers_give_limit_remaining_and_time_until_full() -> None:
    scopes = (key(Limits(rpm=60, tpm=6000)),)
    headers = rate_limit_headers(scopes, [ScopeState(requests=57.5, tokens=3000.0)])
    assert headers == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "57",
        "x-ratelimit-reset-requests": "2.5s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "3000",
        "x-ratelimit-reset-tokens": "30s",
    }


def test_only_configured_kinds_get_headers() -> None:
    headers = rate_limit_headers((key(Limits(tpm=100)),), [ScopeState(1.0, 100.0)])
    assert set(headers) == {
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    }


def test_a_requests_refusal_has_the_openai_body() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(rpm=2)),)
    admit(rl, scopes)
    admit(rl, scopes)
    refused = admit(rl, scopes)
    assert refused.error is not None
    body = error_body(refused.error)["error"]
    assert body["type"] == "requests" and body["code"] == "rate_limit_exceeded"
    assert body["param"] is None
    assert body["message"] == (
        "Rate limit reached for mock-agent in API key team-a on requests per min (RPM): "
        "Limit 2, Used 2, Requested 1. Please try again in 30s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )


def test_the_websocket_error_event_carries_the_headers() -> None:
    rl = limiter(FakeClock())
    scopes = (key(Limits(tpm=100)),)
    admit(rl, scopes, tokens=100)
    refused = admit(rl, scopes, tokens=50)
    assert refused.error is not None
    event = ws_error_event(refused.error, stream_id="lane-1")
    assert event["type"] == "error" and event["status"] == 429
    assert event["stream_id"] == "lane-1"
    assert event["error"]["type"] == "tokens"
    assert event["error"]["code"] == "rate_limit_exceeded"
    assert event["error"]["headers"]["retry-after-ms"] == "30000"
    assert event["error"]["headers"]["x-ratelimit-remaining-tokens"] == "0"


def test_the_sdk_parses_the_websocket_error_event_with_its_headers() -> None:
    from openai.types.responses.responses_server_event import ResponseWsError

    rl = limiter(FakeClock())
    scopes = (key(Limits(rpm=1)),)
    admit(rl, scopes)
    refused = admit(rl, scopes)
    assert refused.error is not None
    parsed = ResponseWsError.model_validate(ws_error_event(refused.error))
    assert parsed.status == 429 and parsed.error.code == "rate_limit_exceeded"
    assert parsed.error.headers is not None
    assert parsed.error.headers["retry-after-ms"] == "60000"


# -- who is limited, and the limits file -----------------------------------------------------


def test_without_authentication_every_caller_shares_the_anonymous_key() -> None:
    policy = load_limits_file(None, Limits(rpm=10))
    assert policy.scopes_for("sk-one") == policy.scopes_for("sk-two") == policy.scopes_for(None)
    (scope,) = policy.scopes_for("sk-one")
    assert scope.label == "anonymous"


def test_with_authentication_each_key_has_its_own_scope_named_without_the_secret() -> None:
    policy = load_limits_file(None, Limits(rpm=10), authenticated=True)
    (one,) = policy.scopes_for("sk-secret-one")
    (two,) = policy.scopes_for("sk-secret-two")
    assert one.id != two.id
    for scope in (one, two):
        assert "secret" not in scope.id and "secret" not in scope.label


def test_no_limits_anywhere_means_an_inactive_policy() -> None:
    assert not load_limits_file(None, Limits()).active


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "limits.yaml"
    path.write_text(text)
    return path


def test_the_limits_file_sets_keys_and_organisations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
keys:
  - key: sk-team-a
    label: team-a
    org: org-agents
    rpm: 30
  - key_env: TEAM_B_KEY
    org: org-agents
organizations:
  org-agents: {tpm: 50000, max_connections: 4}
""",
    )
    policy = load_limits_file(path, Limits(rpm=60, burst=0.5), environ={"TEAM_B_KEY": "sk-b"})
    team_a, organisation = policy.scopes_for("sk-team-a")
    assert team_a.label == "team-a" and team_a.limits == Limits(rpm=30, burst=0.5)
    assert organisation.limits == Limits(tpm=50000, max_connections=4, burst=0.5)
    team_b, same = policy.scopes_for("sk-b")
    assert team_b.limits.rpm == 60 and team_b.label.startswith("key-") and same is organisation
    assert policy.scopes_for("sk-unlisted")[0].label == "anonymous"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys:\n  - {key: k, rpm: -1}\n", "keys[0].rpm: Input should be greater than or equal"),
        ("keys:\n  - {key: k, rpn: 5}\n", "keys[0].rpn: Extra inputs are not permitted"),
        ("keys:\n  - {rpm: 5}\n", "keys[0]: Value error, give exactly one of 'key'"),
        ("keys:\n  - {key: k, org: nope}\n", "keys[0].org: unknown organization 'nope'"),
        ("keys:\n  - {key_env: RIG_NOT_SET}\n", "keys[0].key_env: environment variable"),
        ("keys:\n  - {key: k}\n  - {key: k}\n", "keys[1]: the same key is listed twice"),
        ("organizations:\n  o: {burst: 0}\n", "organizations.o.burst: Input should be greater"),
        ("keys: [\n", "not valid YAML"),
        ("- 1\n", "top level: Input should be a valid dictionary"),
    ],
)
def test_a_bad_limits_file_names_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(LimitsFileError) as caught:
        load_limits_file(path, Limits(), environ={})
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_limits_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(LimitsFileError, match="cannot read"):
        load_limits_file(tmp_path / "absent.yaml", Limits())


def test_a_limits_file_error_never_shows_a_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "keys:\n  - {key: sk-very-secret, rpm: x}\n")
    with pytest.raises(LimitsFileError) as caught:
        load_limits_file(path, Limits())
    assert "sk-very-secret" not in str(caught.value)
