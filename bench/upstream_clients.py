"""The gateway's upstream client: CPU per streamed call, its own (``rig.gateway.http1``)
against aiohttp (its former one) and httpx (the one before), and its HTTP/2 client
(``rig.gateway.http2``, httpx with ``h2``), side by side in one run.

The gateway relays each client turn as one streamed ``POST /v1/responses`` to a stateless
upstream and reads the SSE answer as it arrives. This bench times exactly that read with
the candidate clients, side by side against the same ``rig mock`` (``instant`` preset,
so the mock answers at once and the client's own cost dominates): ``--calls`` calls each,
``--concurrency`` at a time over a keep-alive pool of that size, alternating the clients
over ``--rounds`` rounds so all see the same machine. The figure is the client process's
CPU time per call (``time.process_time``), at ``--delta-tokens`` 1 (an event per token,
the worst case) and 8. All read the body as it arrives: httpx with ``aiter_raw`` (what
the gateway used first), aiohttp with ``content.iter_any`` (what it used next),
``rig.gateway.http1`` with ``Answer.read`` (what it uses now).

HTTP/2 needs a server that speaks it (uvicorn does not): the mock's app under Hypercorn
(``tests/h2_upstream.py``, cleartext, HTTP/2 by prior knowledge and HTTP/1.1 on the same
port). ``rig.gateway.http2`` is timed against it beside ``rig.gateway.http1`` against the
same Hypercorn, so the two rows differ only in the protocol (the rows against the mock's
uvicorn are not comparable with them: the servers cut the stream differently).

Usage (from the repository root)::

    python bench/upstream_clients.py                # about 1 minute
    python bench/upstream_clients.py --calls 2000 --rounds 5

Figures: docs/performance.md ("The upstream client").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _common import int_list, positive_int, table  # noqa: E402
from mock_throughput import MOCK_READY, start_server  # noqa: E402

from rig.gateway.http1 import ConnectionPool, Origin, request_head  # noqa: E402
from rig.gateway.http2 import H2Client  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from tests.h2_upstream import READY as H2_READY  # noqa: E402

Client = Callable[[str, bytes, int, int], Coroutine[Any, Any, int]]


def _body(items: int) -> bytes:
    """A full-context request of ``items`` user messages (the gateway sends the whole
    conversation; the size of the request matters less than the stream read here)."""
    message = {"role": "user", "content": "Fix the failing test in src/app.ts, then run it."}
    return orjson.dumps(
        {"model": "mock-agent", "input": [message] * items, "stream": True, "store": False}
    )


async def with_httpx(url: str, body: bytes, calls: int, concurrency: int) -> int:
    """``calls`` streamed calls with httpx (h11); the bytes read."""
    received = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one() -> None:
            nonlocal received
            async with client.stream("POST", url, content=body, headers=headers) as answer:
                async for chunk in answer.aiter_raw():
                    received += len(chunk)

        for _ in range(calls // concurrency):
            await asyncio.gather(*(one() for _ in range(concurrency)))
    return received


async def with_aiohttp(url: str, body: bytes, calls: int, concurrency: int) -> int:
    """``calls`` streamed calls with aiohttp (llhttp); the bytes read."""
    received = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def one() -> None:
            nonlocal received
            async with session.post(url, data=body, headers=headers) as answer:
                async for chunk in answer.content.iter_any():
                    received += len(chunk)

        for _ in range(calls // concurrency):
            await asyncio.gather(*(one() for _ in range(concurrency)))
    return received


async def with_http2(url: str, body: bytes, calls: int, concurrency: int) -> int:
    """``calls`` streamed calls with the gateway's HTTP/2 client (``rig.gateway.http2``,
    prior knowledge over cleartext: all on one connection); the bytes read."""
    received = 0
    client = H2Client(url, connect_timeout_s=10, read_timeout_s=60, max_connections=concurrency)
    headers = {"content-type": "application/json", "accept-encoding": "identity"}

    async def one() -> None:
        nonlocal received
        answer = await client.request("POST", url, headers, body)
        try:
            while chunk := await answer.read():
                received += len(chunk)
        finally:
            await answer.aclose()

    for _ in range(calls // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    await client.aclose()
    return received


async def with_http1(url: str, body: bytes, calls: int, concurrency: int) -> int:
    """``calls`` streamed calls with the gateway's own client (``rig.gateway.http1``:
    a head built once, llhttp via httptools); the bytes read."""
    received = 0
    base, _, path = url.rpartition("/v1/")
    origin = Origin(base + "/v1")
    pool = ConnectionPool(origin, connect_timeout_s=10, read_timeout_s=60)
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    head = request_head("POST", origin.target("/" + path), origin, headers)

    async def one() -> None:
        nonlocal received
        answer = await pool.request(head, body)
        try:
            while chunk := await answer.read():
                received += len(chunk)
        finally:
            answer.close()

    for _ in range(calls // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    pool.close()
    return received


MOCK, HYPERCORN = "mock", "hypercorn"
CLIENTS: dict[str, tuple[Client, str]] = {
    "httpx": (with_httpx, MOCK),
    "aiohttp": (with_aiohttp, MOCK),
    "rig.gateway.http1": (with_http1, MOCK),
    "rig.gateway.http1 (hypercorn)": (with_http1, HYPERCORN),
    "rig.gateway.http2 (hypercorn)": (with_http2, HYPERCORN),
}
"""Each client and the server it calls."""


def measure(client: Client, url: str, body: bytes, calls: int, concurrency: int) -> float:
    """CPU microseconds per call of one round (checks every call read the same bytes)."""
    began = time.process_time()
    received = uvloop.run(client(url, body, calls, concurrency))
    used = time.process_time() - began
    if received == 0:
        raise RuntimeError("no bytes read")
    return used * 1e6 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=positive_int, default=640)
    parser.add_argument("--concurrency", type=positive_int, default=16)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--deltas", type=int_list, default=(1, 8))
    parser.add_argument("--items", type=positive_int, default=20)
    args = parser.parse_args()
    body = _body(args.items)
    rows = []
    for delta in args.deltas:
        port, h2_port = free_port(), free_port()
        argv = [sys.executable, "-m", "rig", "mock", "--port", str(port), "--preset", "instant"]
        mock = start_server("mock", [*argv, "--delta-tokens", str(delta)], port, MOCK_READY)
        h2_argv = [sys.executable, "-m", "tests.h2_upstream", "--port", str(h2_port), "--quiet"]
        try:
            hypercorn = start_server(
                "hypercorn", [*h2_argv, "--delta-tokens", str(delta)], h2_port, H2_READY
            )
        except BaseException:
            mock.stop()
            raise
        try:
            urls = {
                MOCK: f"http://127.0.0.1:{port}/v1/responses",
                HYPERCORN: f"http://127.0.0.1:{h2_port}/v1/responses",
            }
            figures: dict[str, list[float]] = {name: [] for name in CLIENTS}
            for client, server in CLIENTS.values():  # a warm-up round each, not counted
                measure(client, urls[server], body, args.concurrency * 4, args.concurrency)
            for _ in range(args.rounds):
                for name, (client, server) in CLIENTS.items():
                    figures[name].append(
                        measure(client, urls[server], body, args.calls, args.concurrency)
                    )
        finally:
            hypercorn.stop()
            mock.stop()
        httpx_us = statistics.median(figures["httpx"])
        aiohttp_us = statistics.median(figures["aiohttp"])
        own_us = {  # the own HTTP/1.1 client against the same server
            server: statistics.median(figures[name])
            for name, (client, server) in CLIENTS.items()
            if client is with_http1
        }
        for name, values in figures.items():
            median = statistics.median(values)
            rows.append(
                (
                    delta,
                    name,
                    min(values),
                    median,
                    max(values),
                    median / httpx_us,
                    median / aiohttp_us,
                    median / own_us[CLIENTS[name][1]],
                )
            )
        print(f"  delta {delta}: done", file=sys.stderr, flush=True)
    print(
        f"\nStreamed upstream calls, client CPU per call (us), {args.calls} calls x "
        f"{args.rounds} rounds, {args.concurrency} at a time, instant mock\n"
    )
    print(
        table(
            [
                ("delta", lambda r: str(r[0])),
                ("client", lambda r: r[1]),
                ("min", lambda r: f"{r[2]:,.0f}"),
                ("median", lambda r: f"{r[3]:,.0f}"),
                ("max", lambda r: f"{r[4]:,.0f}"),
                ("vs httpx", lambda r: f"{r[5]:.2f}x"),
                ("vs aiohttp", lambda r: f"{r[6]:.2f}x"),
                ("vs http1, same server", lambda r: f"{r[7]:.2f}x"),
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
