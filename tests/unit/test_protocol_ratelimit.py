"""Rate limits formatted and parsed from one definition: codes and fields, never prose."""

from __future__ import annotations

import orjson
import pytest

from rig.limits.limiter import Limits, Rejection, Scope, rate_limit_error
from rig.protocol.errors import error_body, ws_error_event
from rig.protocol.ratelimit import (
    LIMIT_KINDS,
    RATE_LIMIT_CODE,
    TOO_LARGE_FIELD,
    LimitKind,
    parse_rate_limit,
    retry_after_headers,
)

SCOPE = Scope("key:x", "team-a", "key", Limits(rpm=60, tpm=1000, max_inflight=2))


@pytest.mark.parametrize("kind", LIMIT_KINDS)
@pytest.mark.parametrize("wait", [None, 1.5])
def test_every_kind_round_trips_over_http_and_websocket(
    kind: LimitKind, wait: float | None
) -> None:
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "7"}
    if wait is not None:
        headers |= retry_after_headers(wait)
    error = rate_limit_error(Rejection(SCOPE, kind, 60, 60, 1, wait), "m", headers)
    body = orjson.loads(orjson.dumps(error_body(error)))["error"]
    event = orjson.loads(orjson.dumps(ws_error_event(error)))
    assert body["code"] == event["error"]["code"] == RATE_LIMIT_CODE
    for parsed in (
        parse_rate_limit(body, headers),
        parse_rate_limit(event["error"], event["error"]["headers"]),
    ):
        assert parsed.limit == kind
        assert parsed.retry_after_s == (1.5 if wait is not None else None)
        assert parsed.remaining == (7 if kind == "tokens" else 0)
        # Too large: a token refusal no wait can fix; it carries no retry-after.
        assert parsed.retryable == (kind != "tokens" or wait is not None)


def test_a_request_too_large_is_flagged_by_a_field_not_by_its_message() -> None:
    error = rate_limit_error(Rejection(SCOPE, "tokens", 1000, 0, 5000, None), "m", {})
    body = error_body(error)["error"]
    assert body[TOO_LARGE_FIELD] is True and body["type"] == "tokens"
    body["message"] = "anything at all"
    assert parse_rate_limit(body, {}).retryable is False
    assert (
        TOO_LARGE_FIELD
        not in error_body(
            rate_limit_error(Rejection(SCOPE, "tokens", 1000, 990, 50, 2.0), "m", {})
        )["error"]
    )


def test_an_openai_body_without_our_fields_parses() -> None:
    # As api.openai.com sends it: type requests|tokens, the wait in headers only.
    body = {
        "message": "Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    headers = {"Retry-After": "2", "X-RateLimit-Remaining-Tokens": "12"}
    parsed = parse_rate_limit(body, headers)
    assert (parsed.limit, parsed.retry_after_s, parsed.remaining, parsed.retryable) == (
        "tokens",
        2.0,
        12,
        True,
    )
    # No type at all (a proxy's 429): a requests limit, or the caller's default.
    assert parse_rate_limit({"message": "Too many concurrent requests"}, None).limit == "requests"
    assert parse_rate_limit({}, {}, "connections").limit == "connections"
    assert parse_rate_limit({}, {"retry-after-ms": "250", "retry-after": "1"}).retry_after_s == 0.25
