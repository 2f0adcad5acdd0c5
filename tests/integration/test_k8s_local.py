"""The overlays' own commands, run as local processes: so the manifests cannot drift from
what the image runs. The smoke overlay runs as rendered; the capacity overlay runs with
its run ConfigMap shrunk to seconds and two workers (its shape, quota and Redis-shared
limit state as rendered); the gateway overlay runs its two gateway replicas, sharing
Redis, in front of the mock, with its run shrunk to seconds and its verdict as rendered.

kustomize renders the overlay; the mock, the Locust master (with its init container) and
the workers run exactly the command lines and environment the kubelet would give them,
rewritten only for hostnames, ports and mounted volumes (tests/kube.py says how). Real
servers stand in for the images that are not ours: redis-server for Redis and
VictoriaMetrics, which serves InfluxDB's /api/v2/write, for InfluxDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from tests.kube import (
    K8S,
    Container,
    find,
    local_argv,
    render,
    resolve_container,
    service_ports,
)
from tests.servers import ManagedProcess, VictoriaMetricsServer, free_port


def _mount_dirs(container: Container, docs: list[dict[str, Any]], root: Path) -> dict[str, str]:
    """A local directory per volume the container mounts; ConfigMap volumes get their files."""
    dirs = {}
    for path, volume in container.mounts.items():
        local = root / volume["name"]
        local.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            data = find(docs, "ConfigMap", volume["configMap"]["name"])["data"]
            for name, text in data.items():
                (local / name).write_text(text, encoding="utf-8")
        else:
            assert "emptyDir" in volume, f"{container.name}: unsupported volume {volume}"
        dirs[path] = str(local)
    return dirs


def _summary_line(output: str) -> dict[str, Any]:
    """The summary.json the master printed to its log (one JSON line)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            summary = json.loads(line)
            if "transports" in summary:
                return summary
    raise AssertionError(f"no summary.json line in the master's output:\n{output[-3000:]}")


def test_the_smoke_overlay_runs_as_rendered_master_two_workers_and_mock_on_loopback(
    tmp_path: Path, redis_url: str, victoria_metrics: VictoriaMetricsServer
) -> None:
    docs = render(K8S / "overlays" / "smoke")
    services = service_ports(docs)
    local_ports = {name: free_port() for name in services}
    local_ports["redis"] = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    local_ports["influxdb"] = victoria_metrics.port

    def prepare(kind: str, workload: str, name: str, instance: str) -> tuple[list[str], dict]:
        container = resolve_container(docs, find(docs, kind, workload), name)
        local = container.on_loopback(services, local_ports)
        mounts = _mount_dirs(local, docs, tmp_path / instance)
        return local_argv(local.argv, mounts), {**os.environ, **local.env}

    job = find(docs, "Job", "locust-master")
    assert [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]] == [
        "wait-for-services"
    ]
    replicas = find(docs, "Deployment", "locust-worker")["spec"]["replicas"]
    assert replicas == 2

    processes: list[ManagedProcess] = []
    try:
        argv, env = prepare("Deployment", "mock", "mock", "mock")
        mock = ManagedProcess(argv, "rig mock listening on", env=env)
        processes.append(mock)
        mock.wait_ready()

        # Init containers run to completion first, as the kubelet runs them.
        for kind, workload, instance in (
            ("Job", "locust-master", "master"),
            ("Deployment", "locust-worker", "worker-0"),
        ):
            argv, env = prepare(kind, workload, "wait-for-services", instance)
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr

        argv, env = prepare("Job", "locust-master", "master", "master")
        master = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for index in range(replicas):
            argv, env = prepare("Deployment", "locust-worker", "worker", f"worker-{index}")
            processes.append(ManagedProcess(argv, "Starting Locust", env=env))
        try:
            output, _ = master.communicate(timeout=150)
        finally:
            if master.poll() is None:
                master.kill()
                master.wait()
    finally:
        worker_output = "".join(line for p in processes[1:] for line in p.output)
        for process in reversed(processes):
            process.stop()

    assert master.returncode == 0, output[-4000:] + worker_output[-2000:]
    # The job log carries summary.json, the run directory has it too, and the check ran.
    summary = _summary_line(output)
    assert set(summary["transports"]) == {"http", "ws"}
    assert all(summary["transports"][t]["tasks"] > 0 for t in ("http", "ws"))
    (run_dir,) = (tmp_path / "master" / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert (run_dir / "report.html").is_file()
    assert "ws_vs_http.bytes_sent_reduction" in output
    # The workers wrote their turns to "InfluxDB", tagged with the master's run id.
    match = f'{{__name__="turn_bytes_sent",run="{run_dir.name}"}}'
    turns = sum(summary["transports"][t]["turns"] for t in ("http", "ws"))

    def exported_turns() -> int:
        return sum(len(item["values"]) for item in victoria_metrics.export(match))

    # New series become searchable a moment after a flush: poll the server's own answer.
    deadline = time.monotonic() + 30
    while exported_turns() != turns:
        assert time.monotonic() < deadline, (
            f"{exported_turns()} of {turns} turns reached InfluxDB; workers:\n"
            + worker_output[-3000:]
        )
        time.sleep(0.1)
    workers = {item["metric"]["worker"] for item in victoria_metrics.export(match)}
    assert len(workers) == replicas, workers


def test_the_capacity_overlay_runs_its_steps_shape_against_mocks_sharing_a_quota_in_redis(
    tmp_path: Path, redis_url: str, victoria_metrics: VictoriaMetricsServer
) -> None:
    """The capacity overlay's master, workers and two mock replicas, with only the run's
    size rewritten: steps of 2 sessions every 3 s up to 4 on 2 workers (instead of 100
    every minute up to 1,600 on 8), tools instant; each worker loads its own mock
    replica, and both replicas debit one quota in Redis."""
    docs = render(K8S / "overlays" / "capacity")
    services = service_ports(docs)
    local_ports = {name: free_port() for name in services}
    local_ports["redis"] = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    local_ports["influxdb"] = victoria_metrics.port
    second_mock = free_port()
    shrunk = {
        "RIG_WORKERS": "2",
        "RIG_SHAPE": "steps:users=2,every=3s,max=4",
        "RIG_USERS": "4",
        "RIG_DURATION": "6s",
        "RIG_TIME_SCALE": "0",
        "RIG_CHECK": "capacity.ws.max_sessions>=4",
    }
    rendered_env = find(docs, "ConfigMap", "rig-run")["data"]
    assert set(shrunk) <= set(rendered_env)
    assert rendered_env["RIG_TRANSPORTS"] == "ws" and int(rendered_env["RIG_MOCK_RPM"]) > 0

    def prepare(
        kind: str, workload: str, name: str, instance: str, extra: Mapping[str, str] = {}
    ) -> tuple[list[str], dict]:
        container = resolve_container(docs, find(docs, kind, workload), name)
        env = {**container.env, **{k: v for k, v in shrunk.items() if k in container.env}}
        local = Container(name, container.template, env, container.mounts).on_loopback(
            services, local_ports
        )
        local.env.update(extra)
        mounts = _mount_dirs(local, docs, tmp_path / instance)
        return local_argv(local.argv, mounts), {**os.environ, **local.env}

    mock_argv, _ = prepare("Deployment", "mock", "mock", "mock-0")
    for flag in ("--rpm", "--tpm", "--burst", "--limits-store"):
        assert flag in mock_argv, flag
    limits_store = mock_argv[mock_argv.index("--limits-store") + 1]
    assert limits_store.startswith("redis://127.0.0.1:") and limits_store.endswith("/1")
    mock_urls = [
        f"http://127.0.0.1:{local_ports['mock']}",
        f"http://127.0.0.1:{second_mock}",
    ]

    processes: list[ManagedProcess] = []
    try:
        for index, extra in enumerate(({}, {"RIG_MOCK_PORT": str(second_mock)})):
            argv, env = prepare("Deployment", "mock", "mock", f"mock-{index}", extra)
            processes.append(ManagedProcess(argv, "rig mock listening on", env=env))
        for process in processes:
            process.wait_ready()

        argv, env = prepare("Job", "locust-master", "wait-for-services", "master")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

        argv, env = prepare("Job", "locust-master", "master", "master")
        assert argv[argv.index("--shape") + 1] == shrunk["RIG_SHAPE"]
        master = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for index, url in enumerate(mock_urls):
            # The Service would balance the workers over the replicas; here each has one.
            extra = {"RIG_TARGET_URL": f"{url}/v1"}
            argv, env = prepare("Deployment", "locust-worker", "worker", f"worker-{index}", extra)
            processes.append(ManagedProcess(argv, "Starting Locust", env=env))
        try:
            output, _ = master.communicate(timeout=90)
        finally:
            if master.poll() is None:
                master.kill()
                master.wait()
        served = [_turns_served(url) for url in mock_urls]
    finally:
        worker_output = "".join(line for p in processes[2:] for line in p.output)
        for process in reversed(processes):
            process.stop()

    assert master.returncode == 0, output[-4000:] + worker_output[-2000:]
    summary = _summary_line(output)
    assert "check ok capacity.ws.max_sessions>=4" in output
    (run_dir,) = (tmp_path / "master" / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    # The knee: both steps held, under the default criteria.
    ws = summary["capacity"]["ws"]
    assert [level["sessions"] for level in ws["levels"]] == [2, 4]
    assert ws["max_sessions"] == 4 and ws["bound_by"] is None
    assert ws["criteria"] == {"max_rate_limited": 0.01, "ttft_slo_ms": 2000.0}
    # Both replicas served turns and kept the quota's state in Redis database 1, where
    # every replica reads and debits the same buckets (one hash per API key).
    assert all(count > 0 for count in served), served
    client = redis.Redis.from_url(limits_store)
    try:
        keys = client.keys("rig:limits:*")
    finally:
        client.close()
    assert len(keys) == 1, keys


def _turns_served(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as response:
        return int(json.loads(response.read())["turns"])


def _stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as response:
        return dict(json.loads(response.read()))


def test_the_gateway_overlay_runs_the_load_through_two_gateway_replicas_sharing_redis(
    tmp_path: Path, redis_url: str, victoria_metrics: VictoriaMetricsServer
) -> None:
    """The gateway overlay's mock, two gateway replicas checkpointing to one Redis, the
    master (with its checks as rendered) and two workers, each loading one replica as
    the Service would spread them; only the run's length and pace are shrunk."""
    docs = render(K8S / "overlays" / "gateway")
    services = service_ports(docs)
    local_ports = {name: free_port() for name in services}
    local_ports["redis"] = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    local_ports["influxdb"] = victoria_metrics.port
    second_gateway = free_port()
    # Shrunk to seconds, a run with 8 users completed 3-5 tasks per transport, and the upload
    # reduction then depended on which tasks each transport happened to finish (0.78-0.83
    # seen against the rendered 0.8): 16 users playing one scenario finish enough tasks
    # for the rendered checks to judge the gateway, not the sample.
    shrunk = {
        "RIG_USERS": "16",
        "RIG_SPAWN_RATE": "16",
        "RIG_DURATION": "8s",
        "RIG_TIME_SCALE": "0",
        "RIG_SCENARIO": "add_search_feature",
    }
    rendered_env = find(docs, "ConfigMap", "rig-run")["data"]
    assert set(shrunk) <= set(rendered_env)
    assert find(docs, "Deployment", "gateway")["spec"]["replicas"] == 2

    def prepare(
        kind: str, workload: str, name: str, instance: str, extra: Mapping[str, str] = {}
    ) -> tuple[list[str], dict]:
        container = resolve_container(docs, find(docs, kind, workload), name)
        env = {**container.env, **{k: v for k, v in shrunk.items() if k in container.env}}
        local = Container(name, container.template, env, container.mounts).on_loopback(
            services, local_ports
        )
        local.env.update(extra)
        mounts = _mount_dirs(local, docs, tmp_path / instance)
        return local_argv(local.argv, mounts), {**os.environ, **local.env}

    gateway_argv, _ = prepare("Deployment", "gateway", "gateway", "gateway-0")
    store = gateway_argv[gateway_argv.index("--store") + 1]
    assert store == f"redis://127.0.0.1:{local_ports['redis']}/0"
    upstream = gateway_argv[gateway_argv.index("--upstream") + 1]
    assert upstream == f"http://127.0.0.1:{local_ports['mock']}/v1"
    gateway_urls = [
        f"http://127.0.0.1:{local_ports['gateway']}",
        f"http://127.0.0.1:{second_gateway}",
    ]

    processes: list[ManagedProcess] = []
    try:
        argv, env = prepare("Deployment", "mock", "mock", "mock")
        processes.append(ManagedProcess(argv, "rig mock listening on", env=env))
        for index, extra in enumerate(({}, {"RIG_GATEWAY_PORT": str(second_gateway)})):
            argv, env = prepare("Deployment", "gateway", "gateway", f"gateway-{index}", extra)
            processes.append(ManagedProcess(argv, "rig gateway listening on", env=env))
        for process in processes:
            process.wait_ready()
        # What the kubelet's probes ask before the Service sends a replica traffic.
        for url in gateway_urls:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                assert response.status == 200

        argv, env = prepare("Job", "locust-master", "wait-for-services", "master")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

        # The headless Service that resolves to every replica: here, both URLs.
        replicas = {"RIG_GATEWAY_STATS_URL": ",".join(f"{url}/v1" for url in gateway_urls)}
        argv, env = prepare("Job", "locust-master", "master", "master", replicas)
        assert "--gateway-stats" in argv
        master = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for index, url in enumerate(gateway_urls):
            extra = {"RIG_TARGET_URL": f"{url}/v1"}
            argv, env = prepare("Deployment", "locust-worker", "worker", f"worker-{index}", extra)
            processes.append(ManagedProcess(argv, "Starting Locust", env=env))
        try:
            output, _ = master.communicate(timeout=120)
        finally:
            if master.poll() is None:
                master.kill()
                master.wait()
        gateways = [_stats(url) for url in gateway_urls]
        upstream_turns = _turns_served(f"http://127.0.0.1:{local_ports['mock']}")
    finally:
        worker_output = "".join(line for p in processes[3:] for line in p.output)
        gateway_output = "".join(line for p in processes[1:3] for line in p.output)
        for process in reversed(processes):
            process.stop()

    checks = "\n".join(line for line in output.splitlines() if "rig.run: check" in line)
    assert master.returncode == 0, (
        checks + "\n" + output[-3000:] + worker_output[-2000:] + gateway_output[-2000:]
    )
    summary = _summary_line(output)
    transports = rendered_env["RIG_TRANSPORTS"].split(",")
    assert set(summary["transports"]) == set(transports)
    assert all(summary["transports"][t]["tasks"] > 0 for t in transports)
    # Every check of the verdict ran and passed.
    for key in sorted(k for k in rendered_env if k.startswith("RIG_CHECK")):
        assert f"check ok {rendered_env[key]}" in output, key
    # The gateway section holds both replicas' figures, as their own /stats count them.
    section = summary["gateway"]
    assert section["upstream_requests"] == sum(g["upstream_requests"] for g in gateways)
    assert section["client_bytes_in"] == sum(g["client_bytes_in"] for g in gateways)
    # Both replicas served turns, continued conversations from their state and called the
    # mock with the full context: every upstream call reached it.
    assert all(g["upstream_requests"] > 0 and g["hits_connection"] > 0 for g in gateways)
    assert sum(g["upstream_requests"] for g in gateways) == upstream_turns
    # store=true responses (http_chained, ws_stored) are in the Redis both replicas share.
    client = redis.Redis.from_url(store)
    try:
        assert client.dbsize() > 0
    finally:
        client.close()
