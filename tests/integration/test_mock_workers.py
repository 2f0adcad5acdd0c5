"""Several worker processes behind one port: shared counters and a shared store."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import start_mock


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[str]:
    process, url = start_mock("--workers", "2", "--store", redis_url)
    yield url
    process.stop()


def test_stats_sum_every_worker_and_continuations_cross_workers(two_workers: str) -> None:
    root = two_workers.removesuffix("/v1")
    requests = 12
    previous = None
    for _ in range(requests):
        # A new connection each time, so requests spread over both workers.
        with httpx.Client(base_url=two_workers, timeout=30) as http:
            body = {"model": "m", "input": "next", "store": True}
            if previous:
                body["previous_response_id"] = previous
            response = http.post("/responses", json=body)
            assert response.status_code == 200, response.text
            previous = response.json()["id"]
    for _ in range(4):  # whichever worker answers, the totals are the fleet's
        stats = httpx.get(root + "/stats", timeout=10).json()
        assert stats["http_requests"] == requests
        assert stats["responses_completed"] == requests
        assert stats["turns"] == requests
        assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0
