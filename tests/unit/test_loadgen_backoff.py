"""Retry policies for rate-limited turns: delays, limits, and clear errors."""

from __future__ import annotations

import random

import pytest

from rig.loadgen.backoff import RetryPolicyError, parse_retry_policy


def test_backoff_honours_retry_after_with_a_little_jitter_and_the_cap() -> None:
    policy = parse_retry_policy("backoff:base=0.5,cap=10,attempts=3")
    rng = random.Random(1)
    delays = [policy.delay(1, 2.0, rng) for _ in range(200)]
    assert all(2.0 <= d <= 2.4 for d in delays) and len(set(delays)) > 100
    assert policy.delay(1, 60.0, rng) == 10  # never beyond the cap
    assert policy.delay(4, 2.0, rng) is None  # attempts exhausted


def test_backoff_without_retry_after_is_full_jitter_doubling_per_attempt() -> None:
    policy = parse_retry_policy("backoff:base=1,cap=5,attempts=8")
    rng = random.Random(2)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 5), (7, 5)):
        delays = [policy.delay(attempt, None, rng) for _ in range(300)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.9  # the whole range is used


def test_fail_fast_never_retries_and_fixed_waits_its_time_or_retry_after() -> None:
    rng = random.Random(0)
    assert parse_retry_policy("fail-fast").delay(1, 1.0, rng) is None
    fixed = parse_retry_policy("fixed:attempts=2,wait=0.25")
    assert [fixed.delay(n, None, rng) for n in (1, 2, 3)] == [0.25, 0.25, None]
    assert fixed.delay(1, 3.0, rng) == 3.0


def test_defaults() -> None:
    policy = parse_retry_policy("backoff")
    assert (policy.attempts, policy.base_s, policy.cap_s) == (8, 0.5, 30.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("polite", "unknown policy"),
        ("backoff:base=soon", "is not a number"),
        ("backoff:wait=1", "not understood"),
        ("fixed:attempts=1.5", "must be a non-negative integer"),
        ("backoff:cap=-1", "must be a non-negative number"),
    ],
)
def test_bad_policies_are_named(value: str, message: str) -> None:
    with pytest.raises(RetryPolicyError, match=message):
        parse_retry_policy(value)
