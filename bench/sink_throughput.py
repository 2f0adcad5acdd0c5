"""What the InfluxDB sink costs a worker: CPU per turn record, and scheduling lag at 2,000
points/s, beside influxdb-client's own way of writing the same records in the same run.

Cells (each in a fresh child process that patches with gevent first, as a worker does):

* ``rig-v2``: N turn records into :class:`rig.metrics.influx.InfluxSink` with the v2 backend
  (influxdb-client's write service) against a real VictoriaMetrics (``/api/v2/write``), then
  a flush: encode, queue, batch, gzip and post, all counted in the process's CPU clock;
* ``reference``: the same records as influxdb-client ``Point`` objects written with its
  synchronous ``WriteApi`` in batches of the same size, ``enable_gzip=True``, to the same
  server: the library's documented way, and the reference for the per-point cost;
* ``rig-v1``: the rig's sink with the v1 backend against a real InfluxDB 1.x (``/write``);
* ``lag-sink`` / ``lag-none``: a worker-like process feeding 2,000 turn records/s (40 every
  20 ms) into the sink, or into nothing, while a greenlet measures its scheduling lag every
  10 ms, for ``--lag-seconds``: what writing does to the lag the load generator reports.

Every cell accounts for every record (written or dropped, by the server's answers); the
bench fails otherwise. Needs Debian's ``influxd`` and ``victoria-metrics``; each is started
on a free loopback port with a temporary directory. The lag cells' CPU, minus
``lag-none``'s, is the sink's marginal cost per record at that rate (small batches).

    python bench/sink_throughput.py [--records 50000] [--lag-seconds 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 5_000


def _records(count: int, start_ts: float) -> list:
    from rig.metrics.records import RecordTags, TurnRecord

    transports = ("http", "ws")
    scenarios = ("bugfix", "feature", "refactor")
    records = []
    for i in range(count):
        tags = RecordTags(
            run="bench-sink", scenario=scenarios[i % 3], transport=transports[i % 2],
            target="mock", worker="w0",
        )  # fmt: skip
        record = TurnRecord(
            tags=tags, session=f"s-{i % 1000}", turn=i % 30, ts=start_ts + i * 0.0005,
            bytes_sent=3000 + i % 5000, bytes_recv=70_000 + i % 9000,
            body_bytes_sent=2900 + i % 5000, body_bytes_recv=69_000 + i % 9000,
            ttfb_ms=10.0 + (i % 100) / 7, ttft_ms=90.0 + (i % 100) / 3, turn_ms=400.5 + i % 300,
            input_tokens=12_000 + i, cached_tokens=8000, output_tokens=289, tool_calls=1,
            status="ok",
        )  # fmt: skip
        records.append(record)
    return records


def _reference_points(records: list) -> list:
    from influxdb_client import Point, WritePrecision

    from rig.metrics.lineproto import MEASUREMENTS, TAG_KEYS
    from rig.metrics.records import record_to_dict

    measurement = MEASUREMENTS["turn"]
    points = []
    for record in records:
        data = record_to_dict(record)
        tags = {name: data[name] for name in TAG_KEYS} | {"turn": str(record.turn)}
        fields = {name: data[name] for name, _ in measurement.fields}
        point = Point.from_dict(
            {"measurement": "turn", "tags": tags, "fields": fields, "time": int(record.ts * 1e9)},
            WritePrecision.NS,
        )
        points.append(point)
    return points


# -- children ------------------------------------------------------------------------------


def _child_cost(cell: str, url: str, count: int) -> dict:
    from rig.metrics.influx import InfluxSink, V1Backend, V2Backend
    from rig.metrics.influx_config import InfluxConfig

    records = _records(count, time.time() - 3600)
    if cell == "reference":
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        started = time.process_time()
        points = _reference_points(records)  # building Points is part of the library's way
        client = InfluxDBClient(url=url, token="bench", org="rig", enable_gzip=True)
        write = client.write_api(write_options=SYNCHRONOUS)
        for i in range(0, count, BATCH):
            write.write(bucket="rig", org="rig", record=points[i : i + BATCH])
        cpu = time.process_time() - started
        client.close()
        return {"cpu_s": cpu, "records": count, "written": count, "dropped": 0}
    os.environ["RIG_BENCH_TOKEN"] = "bench"
    if cell == "rig-v2":
        config = InfluxConfig(
            kind="influx", url=url, org="rig", bucket="rig", token_env="RIG_BENCH_TOKEN"
        )
        backend = V2Backend(config)
    else:
        config = InfluxConfig(kind="influx-v1", url=url, database="rig")
        backend = V1Backend(config)
    sink = InfluxSink(backend, batch_size=BATCH, flush_interval_s=1.0, buffer_points=count + 1)
    sink.start()
    started = time.process_time()
    for record in records:
        sink(record)
    sink.flush(timeout_s=300)
    cpu = time.process_time() - started
    written, dropped = sink.counts()
    sink.close()
    return {"cpu_s": cpu, "records": count, "written": written, "dropped": dropped}


def _child_lag(cell: str, url: str, seconds: float, rate: int) -> dict:
    import gevent

    from rig.metrics.influx import InfluxSink, V1Backend
    from rig.metrics.influx_config import InfluxConfig

    per_tick, tick = rate // 50, 0.02
    records = _records(int(rate * seconds) + per_tick, time.time() - 3600)
    sink = None
    if cell == "lag-sink":
        backend = V1Backend(InfluxConfig(kind="influx-v1", url=url, database="rig"))
        sink = InfluxSink(backend, batch_size=BATCH, flush_interval_s=1.0)
        sink.start()
    lags: list[float] = []
    stop = time.monotonic() + seconds

    def sample() -> None:
        while time.monotonic() < stop:
            asked = time.perf_counter()
            gevent.sleep(0.01)
            lags.append(max(0.0, (time.perf_counter() - asked - 0.01) * 1000))

    def produce() -> int:
        sent, next_tick = 0, time.monotonic()
        while time.monotonic() < stop:
            for record in records[sent : sent + per_tick]:
                if sink is not None:
                    sink(record)
            sent += per_tick
            next_tick += tick
            gevent.sleep(max(0.0, next_tick - time.monotonic()))
        return sent

    cpu0, wall0 = time.process_time(), time.monotonic()
    sampler, producer = gevent.spawn(sample), gevent.spawn(produce)
    gevent.joinall([sampler, producer])
    busy = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    written = dropped = 0
    if sink is not None:
        sink.flush(timeout_s=60)
        written, dropped = sink.counts()
        sink.close()
    ordered = sorted(lags)
    return {
        "records": producer.value,
        "written": written,
        "dropped": dropped,
        "busy": busy,
        "samples": len(ordered),
        "lag_p50_ms": ordered[len(ordered) // 2],
        "lag_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "lag_max_ms": ordered[-1],
    }


# -- parent --------------------------------------------------------------------------------


def _wait_line(process: subprocess.Popen, marker: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if marker in line:
            return
    raise RuntimeError(f"{process.args[0]} exited before printing {marker!r}")


def _influxd(directory: str, port: int) -> subprocess.Popen:
    from rig.run.ports import free_port

    Path(directory).mkdir(parents=True, exist_ok=True)
    config = Path(directory) / "influxdb.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
        f'[meta]\n  dir = "{directory}/meta"\n[data]\n  dir = "{directory}/data"\n'
        f'  wal-dir = "{directory}/wal"\n  query-log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
    )
    process = subprocess.Popen(
        [shutil.which("influxd") or "/usr/bin/influxd", "run", "-config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    _wait_line(process, "Listening on HTTP")
    return process


def _victoria(directory: str, port: int) -> subprocess.Popen:
    binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    process = subprocess.Popen(
        [binary, f"-storageDataPath={directory}", f"-httpListenAddr=127.0.0.1:{port}",
         "-retentionPeriod=100y"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    _wait_line(process, "starting http server")
    return process


def _run_child(args: list[str], servers: list[subprocess.Popen]) -> tuple[dict, float]:
    """The child's JSON figures and the cores other processes used meanwhile: the
    machine's busy time less the child's whole CPU and the servers' (they are the cell)."""
    import resource

    import psutil

    from bench._common import machine_cpu_seconds

    def servers_cpu() -> float:
        return sum(sum(psutil.Process(s.pid).cpu_times()[:2]) for s in servers)

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    marks = (machine_cpu_seconds(), servers_cpu(), children_cpu(), time.monotonic())
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - marks[3]
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    used = machine_cpu_seconds() - marks[0]
    ours = (servers_cpu() - marks[1]) + (children_cpu() - marks[2])
    other = max(0.0, (used - ours) / wall)
    return json.loads(done.stdout.strip().splitlines()[-1]), other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per cost cell")
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=2000, help="points/s in the lag cells")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each cost cell")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        from gevent import monkey

        monkey.patch_all()
        if args.child.startswith("lag"):
            figures = _child_lag(args.child, args.url, args.lag_seconds, args.rate)
        else:
            figures = _child_cost(args.child, args.url, args.records)
        print(json.dumps(figures))
        return 0

    from bench._common import noisy_warning, table
    from rig.run.ports import free_port

    results: list[dict] = []
    other: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rig-bench-sink-") as directory:
        influx_port, vm_port = free_port(), free_port()
        influxd = _influxd(os.path.join(directory, "influxdb"), influx_port)
        victoria = _victoria(os.path.join(directory, "vm"), vm_port)
        influx_url, vm_url = f"http://127.0.0.1:{influx_port}", f"http://127.0.0.1:{vm_port}"
        try:
            import urllib3

            urllib3.PoolManager().request(
                "POST", f"{influx_url}/query", fields={"q": "CREATE DATABASE rig"},
                encode_multipart=False,
            )  # fmt: skip
            cells = [("reference", vm_url), ("rig-v2", vm_url), ("rig-v1", influx_url)]
            for round_ in range(args.repeat):
                for cell, url in cells:
                    figures, busy_other = _run_child(
                        ["--child", cell, "--url", url, "--records", str(args.records)],
                        [influxd, victoria],
                    )
                    other.append(busy_other)
                    results.append({"cell": cell, "round": round_, **figures})
            for cell in ("lag-none", "lag-sink"):
                figures, busy_other = _run_child(
                    ["--child", cell, "--url", influx_url, "--lag-seconds",
                     str(args.lag_seconds), "--rate", str(args.rate)],
                    [influxd, victoria],
                )  # fmt: skip
                other.append(busy_other)
                results.append({"cell": cell, **figures})
        finally:
            influxd.terminate()
            victoria.terminate()
            influxd.wait()
            victoria.wait()

    cost = [r for r in results if "cpu_s" in r]
    print(f"Sink cost: {args.records:,} turn records per cell, batches of {BATCH:,}\n")
    print(
        table(
            [
                ("cell", lambda r: r["cell"]),
                ("round", lambda r: str(r["round"])),
                ("µs CPU/record", lambda r: f"{r['cpu_s'] / r['records'] * 1e6:.1f}"),
                ("written", lambda r: f"{r['written']:,}"),
                ("dropped", lambda r: f"{r['dropped']:,}"),
            ],
            cost,
        )
    )
    lag = [r for r in results if "lag_p99_ms" in r]
    print(f"\nScheduling lag at {args.rate:,} records/s for {args.lag_seconds:g} s\n")
    print(
        table(
            [
                ("cell", lambda r: r["cell"]),
                ("records", lambda r: f"{r['records']:,}"),
                ("written", lambda r: f"{r['written']:,}"),
                ("busy", lambda r: f"{r['busy']:.3f}"),
                ("lag p50 ms", lambda r: f"{r['lag_p50_ms']:.2f}"),
                ("lag p99 ms", lambda r: f"{r['lag_p99_ms']:.2f}"),
                ("lag max ms", lambda r: f"{r['lag_max_ms']:.2f}"),
            ],
            lag,
        )
    )
    warning = noisy_warning(other)
    if warning:
        print("\n" + warning)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    incomplete = [
        r for r in results if r["written"] and r["written"] + r["dropped"] != r["records"]
    ]
    if incomplete:
        print(f"ERROR: records unaccounted for in {incomplete}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
