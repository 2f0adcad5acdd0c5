"""The in-process store's byte bound, seen from outside: old responses are evicted and
counted in /stats, recent ones stay."""

from __future__ import annotations

import httpx

from tests.servers import start_mock


def test_store_evictions_beyond_the_byte_bound_are_counted_in_stats() -> None:
    process, url = start_mock("--store-max-bytes", "65536")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            ids = []
            for index in range(40):
                body = {"model": "m", "input": f"{index} " + "y" * 4000, "store": True}
                answer = client.post("/responses", json=body)
                assert answer.status_code == 200
                ids.append(answer.json()["id"])
            assert client.get(f"/responses/{ids[-1]}").status_code == 200
            assert client.get(f"/responses/{ids[0]}").status_code == 404
            stats = httpx.get(url.removesuffix("/v1") + "/stats", timeout=10).json()
    finally:
        process.stop()
    assert stats["store_evictions"] > 20
    assert {"prompt_cache_evictions", "plan_cache_evictions"} <= set(stats)
