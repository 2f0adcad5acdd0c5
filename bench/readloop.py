"""Per-read CPU of the load generator's two ways to wait for a socket: a greenlet per
socket waiting for each read (what `WireSocket.recv` does), against the process's one
`ReadLoop` (rig/loadgen/readloop.py) reading every ready socket in passes.

A writer process sends small writes (80 bytes, a streamed event's size) round robin over N
socket pairs at a fixed total rate; the reading process reads them one way or the other
for a measured window and divides its CPU time (`time.process_time`) by the reads it
made. Rounds alternate the two ways, each with a fresh process and writer, so the
machine's noise hits both; the table prints each way's µs a read and the ratio per round.

Usage (from the repository root)::

    python bench/readloop.py                      # 50 and 500 sockets, 3 rounds
    python bench/readloop.py --sockets 1000 --rate 100000 --rounds 5

Figures: docs/performance.md, "The read loop".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHUNK = b"x" * 80


def _write(fds: list[int], rate: float, seconds: float) -> None:
    """The writer: ``rate`` writes a second round robin over ``fds`` for ``seconds``."""
    socks = [socket.socket(fileno=fd) for fd in fds]
    began = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - began < seconds:
        due = int((now - began) * rate)
        while sent < due:
            socks[sent % len(socks)].send(CHUNK)
            sent += 1
        time.sleep(0.0005)
    for sock in socks:
        sock.close()


def reader(way: str, sockets: int, rate: float, warmup: float, seconds: float) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    pairs = [socket.socketpair() for _ in range(sockets)]
    writer = multiprocessing.get_context("fork").Process(
        target=_write, args=([b.fileno() for _, b in pairs], rate, warmup + seconds + 2)
    )
    writer.start()
    for _, b in pairs:
        b.close()
    import gevent
    import gevent.socket

    from rig.loadgen.readloop import ReadLoop

    reads = [0]
    if way == "greenlet per socket":

        def wait_and_read(raw: socket.socket) -> None:
            sock = gevent.socket.socket(fileno=raw.detach())
            readable = gevent.get_hub().loop.io(sock.fileno(), 1)
            while True:
                gevent.socket.wait(readable)
                if not sock.recv(65536):
                    return
                reads[0] += 1

        for a, _ in pairs:
            gevent.spawn(wait_and_read, a)
    else:
        loop = ReadLoop.current()
        for a, _ in pairs:
            a.setblocking(False)

            def readable(sock: socket.socket = a) -> None:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    return
                if not data:
                    loop.remove(sock.fileno())
                    return
                reads[0] += 1

            loop.add(a.fileno(), readable)
    gevent.sleep(warmup)
    cpu, count = time.process_time(), reads[0]
    gevent.sleep(seconds)
    cpu, count = time.process_time() - cpu, reads[0] - count
    writer.kill()
    return {"reads_per_s": count / seconds, "us_per_read": cpu / count * 1e6, "busy": cpu / seconds}


WAYS = ("greenlet per socket", "read loop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", default="50,500", help="socket pairs, a list (50,500)")
    parser.add_argument("--rate", type=float, default=26_000, help="writes a second in all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        way, sockets = args.child.split(":")
        figures = reader(way, int(sockets), args.rate, args.warmup, args.seconds)
        print(json.dumps(figures))
        return 0
    root = Path(__file__).resolve().parent.parent
    print(f"readloop: {args.rate:,.0f} writes/s of {len(CHUNK)} bytes, round robin")
    print(f"{'sockets':>8} {'round':>5} {'way':>20} {'reads/s':>9} {'us/read':>8} {'ratio':>6}")
    for sockets in [int(s) for s in args.sockets.split(",")]:
        ratios = []
        for round_ in range(1, args.rounds + 1):
            figures = {}
            for way in WAYS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", f"{way}:{sockets}", "--rate",
                     str(args.rate), "--warmup", str(args.warmup), "--seconds", str(args.seconds)],
                    capture_output=True, text=True, check=True, cwd=root,
                )  # fmt: skip
                figures[way] = json.loads(out.stdout.strip().splitlines()[-1])
            ratio = figures["read loop"]["us_per_read"] / figures[WAYS[0]]["us_per_read"]
            ratios.append(ratio)
            for way in WAYS:
                f = figures[way]
                shown = f"{ratio:.2f}" if way == "read loop" else ""
                print(
                    f"{sockets:>8} {round_:>5} {way:>20} {f['reads_per_s']:>9,.0f} "
                    f"{f['us_per_read']:>8.2f} {shown:>6}"
                )
        median = statistics.median(ratios)
        print(
            f"{sockets:>8} read loop / greenlet per socket: median {median:.2f}"
            f" (range {min(ratios):.2f}-{max(ratios):.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
