"""What a Redis checkpoint costs by turn: bytes sent, write and read time, Redis memory.

``rig.gateway.checkpoints.RedisCheckpoints`` driven directly (no gateway, no sockets but
Redis's) against a real redis-server on a free loopback port: ``--sessions``
conversations of ``--turns`` responses each, every turn adding ``--turn-bytes`` of items
(the gateway bench's coding agent adds about 5.4 KB a turn), written one after another so
a write's time is its round trips and Redis's own work, not a queue. After each turn every
session's latest response is read back once. Figures by turn index: bytes each write
reported (``checkpoint_bytes``), write and read time p50/p90, and Redis's ``used_memory``
growth per session at the end.

Usage (from the repository root; run it on two checkouts to compare)::

    python bench/redis_checkpoints.py --sessions 50 --turns 64

Figures and method: docs/performance.md, "Gateway".
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _common import Column, percentile, positive_int, table  # noqa: E402

from rig.gateway.checkpoints import Conversation, RedisCheckpoints  # noqa: E402
from rig.run.ports import free_port  # noqa: E402

HOST = "127.0.0.1"
SHOWN = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def turn_items(session: int, index: int, size: int) -> bytes:
    """A user message and an answer, ``size`` bytes of JSON together."""
    text = f"s{session}t{index} " + "x" * max(0, size // 2 - 60)
    items = [
        {"type": "message", "role": "user", "content": text},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        },
    ]
    return orjson.dumps(items)


async def measure(
    url: str, sessions: int, turns: int, turn_bytes: int
) -> dict[int, dict[str, float]]:
    """Per turn index: bytes per write, write and read milliseconds (p50, p90)."""
    store = RedisCheckpoints(url, ttl_s=3600.0, timeout_s=5.0)
    latest: list[Conversation | None] = [None] * sessions
    figures: dict[int, dict[str, float]] = {}
    try:
        for index in range(1, turns + 1):
            written: list[int] = []
            write_ms: list[float] = []
            read_ms: list[float] = []
            for session in range(sessions):
                parent = latest[session]
                conversation = Conversation(
                    owner="owner-bench",
                    stored=False,
                    response=b"",
                    items=turn_items(session, index, turn_bytes),
                    context_tokens=index,
                    parent=parent,
                    parent_id=f"s{session}t{index - 1}" if parent is not None else None,
                )
                started = time.perf_counter()
                written.append(await store.write(f"s{session}t{index}", conversation))
                write_ms.append((time.perf_counter() - started) * 1000)
                latest[session] = conversation
            for session in range(sessions):
                started = time.perf_counter()
                found = await store.read(f"s{session}t{index}")
                read_ms.append((time.perf_counter() - started) * 1000)
                expected = latest[session]
                if found is None or expected is None or found.transcript != expected.transcript:
                    raise SystemExit(f"s{session}t{index} read back wrong")
            write_ms.sort()
            read_ms.sort()
            figures[index] = {
                "bytes_per_write": statistics.fmean(written),
                "conversation_bytes": statistics.fmean(c.size for c in latest if c is not None),
                "write_ms_p50": percentile(write_ms, 50),
                "write_ms_p90": percentile(write_ms, 90),
                "read_ms_p50": percentile(read_ms, 50),
                "read_ms_p90": percentile(read_ms, 90),
            }
    finally:
        await store.close()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=positive_int, default=50)
    parser.add_argument("--turns", type=positive_int, default=64)
    parser.add_argument("--turn-bytes", type=positive_int, default=5_400)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis checkpoints bench: redis-server is not on the PATH", file=sys.stderr)
        return 1
    import redis

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rig-bench-redis-") as directory:
        argv_redis = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly"]
        server = subprocess.Popen(
            [*argv_redis, "no", "--dir", directory], stdout=subprocess.DEVNULL
        )
        try:
            client = redis.Redis(host=HOST, port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            before = int(client.info("memory")["used_memory"])
            url = f"redis://{HOST}:{port}/0"
            figures = asyncio.run(measure(url, args.sessions, args.turns, args.turn_bytes))
            after = int(client.info("memory")["used_memory"])
            client.close()
        finally:
            server.terminate()
            server.wait(10)
    rows = [(i, figures[i]) for i in SHOWN if i in figures]
    columns: list[Column[tuple[int, dict[str, float]]]] = [
        ("turn", lambda r: str(r[0])),
        ("conversation B", lambda r: f"{r[1]['conversation_bytes']:,.0f}"),
        ("B/write", lambda r: f"{r[1]['bytes_per_write']:,.0f}"),
        ("write ms p50", lambda r: f"{r[1]['write_ms_p50']:.3f}"),
        ("write ms p90", lambda r: f"{r[1]['write_ms_p90']:.3f}"),
        ("read ms p50", lambda r: f"{r[1]['read_ms_p50']:.3f}"),
        ("read ms p90", lambda r: f"{r[1]['read_ms_p90']:.3f}"),
    ]
    print(
        f"Redis checkpoints: {args.sessions} sessions x {args.turns} turns, "
        f"{args.turn_bytes:,} B added a turn"
    )
    print(table(columns, rows))
    total = sum(f["bytes_per_write"] for f in figures.values()) * args.sessions
    print(
        f"bytes sent to Redis: {total / 1e6:,.1f} MB in all; Redis used_memory growth "
        f"{(after - before) / args.sessions / 1e3:,.0f} KB a session "
        f"(its conversation {figures[args.turns]['conversation_bytes'] / 1e3:,.0f} KB)"
    )
    if args.json is not None:
        document = {"args": vars(args) | {"json": None}, "turns": figures}
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
