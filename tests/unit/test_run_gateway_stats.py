"""Reading a gateway's replicas behind one name (what a headless Service resolves to)."""

from __future__ import annotations

import socket

from rig.run.gateway_stats import StatsWatch, replica_urls


def test_a_name_is_read_at_every_address_it_resolves_to() -> None:
    addresses = sorted(
        {str(info[4][0]) for info in socket.getaddrinfo("localhost", 8100, type=socket.SOCK_STREAM)}
    )
    urls = replica_urls("http://localhost:8100/v1")
    assert len(urls) == len(addresses) >= 1
    assert "http://127.0.0.1:8100/v1" in urls
    assert all(url.endswith(":8100/v1") for url in urls)


def test_an_address_stays_itself_and_a_name_that_does_not_resolve_is_kept() -> None:
    assert replica_urls("http://127.0.0.1:9/v1") == ["http://127.0.0.1:9/v1"]
    assert replica_urls("http://no-such-host.invalid:8100/v1") == [
        "http://no-such-host.invalid:8100/v1"
    ]


def test_an_unreachable_replica_is_an_error_not_a_zero() -> None:
    watch = StatsWatch(["http://127.0.0.1:9/v1"])
    watch.begin()
    assert watch.start == {}
    assert len(watch.errors) == 1 and "127.0.0.1:9/stats" in watch.errors[0]
