"""Retry policies for rate-limited turns and the back-off between failed tasks: delays,
limits, and clear errors."""

from __future__ import annotations

import random

import pytest

from rig.loadgen.backoff import (
    DEFAULT_TASK_BACKOFF,
    RetryPolicyError,
    TaskBackoff,
    TaskBackoffError,
    parse_retry_policy,
    parse_task_backoff,
)


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


def test_the_task_backoff_doubles_per_failed_task_with_equal_jitter_up_to_the_cap() -> None:
    backoff = parse_task_backoff("base=1,cap=30")
    assert backoff == DEFAULT_TASK_BACKOFF == TaskBackoff(base_s=1.0, cap_s=30.0)
    rng = random.Random(3)
    assert backoff.delay(0, rng) == 0.0  # no failure (or a success since): no wait
    for failures, ceiling in ((1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (200, 30)):
        delays = [backoff.delay(failures, rng) for _ in range(300)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling * 0.4  # jittered over the upper half


def test_the_task_backoff_can_be_turned_off_and_bad_values_are_named() -> None:
    assert parse_task_backoff("off").delay(5, random.Random(0)) == 0.0
    assert parse_task_backoff("base=0.5s").cap_s == 30.0
    for bad, words in (
        ("base=x", "is not a number"),
        ("wait=3", "not understood"),
        ("base=-1", "must be >= 0"),
        ("base=10,cap=5", "cap must be at least base"),
    ):
        with pytest.raises(TaskBackoffError, match=words):
            parse_task_backoff(bad)
