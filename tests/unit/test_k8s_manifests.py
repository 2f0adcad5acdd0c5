"""The Kubernetes manifests, the image and the Compose stack, checked without a cluster:
rendered by kustomize, validated strictly against the Kubernetes schemas, and held to the
rules the deployment promises (limits, probes, hardening, Secrets by reference, network
isolation, one command line shared by Kubernetes and Compose)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rig.dashboards.provisioning import DASHBOARD_PATH, SCRAPE_INTERVAL
from rig.loadgen.backoff import parse_retry_policy
from rig.report.checks import parse_check
from rig.workload.shapes import Steps, parse_shape
from tests.kube import (
    COMPOSE_FILE,
    K8S,
    OVERLAYS,
    REPO,
    compose_commands,
    dockerfile_final_stage,
    find,
    image_entrypoint,
    pod_spec,
    render,
    resolve_container,
    service_ports,
)

KUBERNETES_VERSIONS = ("1.31.0", "1.34.0")
"""Oldest and newest releases the manifests are validated against (strict: no unknown field)."""
RIG_IMAGE = "agentic-load-rig"
RIG_UID = 10001
SECRET_NAMES = re.compile(r"TOKEN|KEY|PASSWORD|SECRET", re.IGNORECASE)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / "overlays" / overlay))


def workloads(docs: tuple[dict[str, Any], ...]) -> Iterator[dict[str, Any]]:
    yield from (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job"))


def all_containers(docs: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in workloads(docs):
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield (
                f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}",
                container,
            )


def run_env(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return find(docs, "ConfigMap", "rig-run")["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates_strictly_against_the_kubernetes_schema(
    overlay: str, version: str
) -> None:
    docs = rendered(overlay)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {error}")


def test_the_base_renders_and_its_secrets_are_only_referenced() -> None:
    docs = render(K8S / "base")
    assert not [d for d in docs if d["kind"] == "Secret"]
    referenced = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for _, c in all_containers(tuple(docs))
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert referenced == {"rig-target", "rig-influxdb-auth", "rig-grafana-auth"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_lives_in_the_overlays_namespace_and_is_labelled_as_the_rigs(
    overlay: str,
) -> None:
    docs = rendered(overlay)
    (namespace,) = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "agentic-load-rig"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_a_hardened_security_context(
    overlay: str,
) -> None:
    for where, container in all_containers(rendered(overlay)):
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{where}: {bound}"
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] > 0, where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in security["capabilities"], where
        assert container.get("imagePullPolicy") == "IfNotPresent", where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened_and_mount_no_service_account_token(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False, workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_that_serves_has_readiness_and_liveness_probes(overlay: str) -> None:
    serving = [(w, c) for w, c in all_containers(rendered(overlay)) if c.get("ports")]
    assert {w.split("/")[1] for w, _ in serving} >= {"locust-master", "influxdb", "grafana"}
    for where, container in serving:
        assert "readinessProbe" in container, where
        assert "livenessProbe" in container, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rigs_containers_run_the_image_as_its_non_root_user(overlay: str) -> None:
    user = [rest for word, rest in dockerfile_final_stage() if word == "USER"][-1]
    assert user == f"{RIG_UID}:{RIG_UID}"
    for where, container in all_containers(rendered(overlay)):
        if container["image"].split(":")[0] == RIG_IMAGE:
            assert container["securityContext"]["runAsUser"] == RIG_UID, where
            assert container["image"] == f"{RIG_IMAGE}:0.1.0", where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_reach_containers_only_from_secrets(overlay: str) -> None:
    docs = rendered(overlay)
    for where, container in all_containers(docs):
        for entry in container.get("env", []):
            if SECRET_NAMES.search(entry["name"]):
                assert "secretKeyRef" in entry.get("valueFrom", {}), f"{where}: {entry['name']}"
        for arg in container.get("args", []) + container.get("command", []):
            assert not re.search(r"(smoke|capacity|gateway)-.*(key|token|password)", arg), (
                f"{where}: {arg}"
            )
    for config in (d for d in docs if d["kind"] == "ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRET_NAMES.search(key), f"ConfigMap {config['metadata']['name']}: {key}"


def test_external_target_generates_no_secret_and_leaves_out_the_mock_and_redis() -> None:
    docs = rendered("external-target")
    assert not [d for d in docs if d["kind"] == "Secret"]
    names = {d["metadata"]["name"] for d in docs}
    assert not {"mock", "redis"} & names
    target = run_env(docs)["RIG_TARGET_URL"]
    assert target.startswith("https://") and "mock" not in target


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_master_waits_for_exactly_the_workers_the_deployment_runs(overlay: str) -> None:
    docs = rendered(overlay)
    replicas = find(docs, "Deployment", "locust-worker")["spec"]["replicas"]
    assert int(run_env(docs)["RIG_WORKERS"]) == replicas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_master_job_is_a_headless_run_whose_exit_code_is_the_verdict(overlay: str) -> None:
    docs = rendered(overlay)
    job = find(docs, "Job", "locust-master")
    assert job["spec"]["backoffLimit"] == 0
    assert pod_spec(job)["restartPolicy"] == "Never"
    argv = resolve_container(list(docs), job, "master", secrets=_user_secrets()).argv
    assert argv[:3] == ["rig", "locust", "--master"]
    for flag in ("--headless", "--check", "--summary-stdout", "--expect-workers", "--run-time"):
        assert flag in argv, flag
    # A load shape, when set, is the master's: it alone decides the sessions.
    assert argv[argv.index("--shape") + 1] == run_env(docs)["RIG_SHAPE"]
    assert argv[argv.index("--out") + 1] == "/runs"
    assert "/runs" in {m["mountPath"] for m in pod_spec(job)["containers"][0]["volumeMounts"]}
    # The workers reach the master through its Service, on the port it binds.
    service = find(docs, "Service", "locust-master")
    port = argv[argv.index("--master-bind-port") + 1]
    assert str(service["spec"]["ports"][0]["port"]) == port


def _options(argv: list[str], start: str) -> list[str]:
    return argv[argv.index(start) :]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_get_the_same_rig_options_as_the_master(overlay: str) -> None:
    docs = list(rendered(overlay))
    master = resolve_container(docs, find(docs, "Job", "locust-master"), "master", _user_secrets())
    worker = resolve_container(
        docs, find(docs, "Deployment", "locust-worker"), "worker", _user_secrets()
    )
    shared = _options(worker.argv, "--target-url")
    assert master.argv[master.argv.index("--target-url") :][: len(shared)] == shared
    assert worker.argv[worker.argv.index("--master-host") + 1] == "locust-master"
    assert worker.env["RIG_API_KEY"] == master.env["RIG_API_KEY"]


@pytest.mark.parametrize("overlay", ["smoke", "capacity"])
def test_mock_overlays_run_against_the_mock_with_the_key_the_mock_accepts(overlay: str) -> None:
    docs = list(rendered(overlay))
    master = resolve_container(docs, find(docs, "Job", "locust-master"), "master")
    mock = resolve_container(docs, find(docs, "Deployment", "mock"), "mock")
    assert master.argv[master.argv.index("--target-url") + 1] == "http://mock:8000/v1"
    assert master.env["RIG_API_KEY"] == mock.env["RIG_MOCK_API_KEYS"]
    assert mock.argv[mock.argv.index("--store") + 1] == "redis://redis:6379/0"


def test_the_gateway_overlay_loads_the_gateway_replicas_in_front_of_the_mock_with_redis() -> None:
    docs = list(rendered("gateway"))
    env = run_env(tuple(docs))
    deployment = find(docs, "Deployment", "gateway")
    assert deployment["spec"]["replicas"] >= 2
    gateway = resolve_container(docs, deployment, "gateway")
    mock = resolve_container(docs, find(docs, "Deployment", "mock"), "mock")
    master = resolve_container(docs, find(docs, "Job", "locust-master"), "master")
    ports = service_ports(docs)
    # The load targets the gateway Service; the gateway calls the mock Service.
    assert env["RIG_TARGET_URL"] == f"http://gateway:{ports['gateway']}/v1"
    assert _value(master.argv, "--target-url") == env["RIG_TARGET_URL"]
    assert _value(gateway.argv, "--upstream") == f"http://mock:{ports['mock']}/v1"
    assert _value(mock.argv, "--port") == str(ports["mock"])
    # Every replica checkpoints to the one Redis; the mock upstream keeps nothing.
    assert _value(gateway.argv, "--store") == f"redis://redis:{ports['redis']}/0"
    assert _value(mock.argv, "--store") == "memory"
    # The gateway's own parser takes the rendered command.
    from rig.cli import build_parser

    options = build_parser().parse_args(gateway.argv[1:])
    assert options.port == ports["gateway"] and options.dialect == "responses"
    # Clients use the key the gateway accepts; the gateway its own key for the upstream,
    # the only one the mock accepts.
    assert gateway.env["RIG_GATEWAY_API_KEYS"] == master.env["RIG_API_KEY"]
    upstream_key = gateway.env[_value(gateway.argv, "--upstream-key-env")]
    assert upstream_key == mock.env["RIG_MOCK_API_KEYS"] != master.env["RIG_API_KEY"]


def test_the_gateway_serves_health_probes_and_metrics_for_prometheus_on_its_port() -> None:
    docs = list(rendered("gateway"))
    deployment = find(docs, "Deployment", "gateway")
    (container,) = pod_spec(deployment)["containers"]
    (port,) = container["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port["containerPort"]),
        "prometheus.io/path": "/metrics",
    }
    service = find(docs, "Service", "gateway")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert _selects(
        {"matchLabels": service["spec"]["selector"]}, _pod_labels(tuple(docs))["gateway"]
    )


def test_the_gateway_overlays_prometheus_scrapes_every_replica_for_grafanas_datasource() -> None:
    docs = list(rendered("gateway"))
    gateway = find(docs, "Deployment", "gateway")
    annotations = gateway["spec"]["template"]["metadata"]["annotations"]
    prometheus = find(docs, "Deployment", "prometheus")
    (container,) = pod_spec(prometheus)["containers"]
    # The configuration Prometheus reads is the ConfigMap mounted where --config.file says.
    (config_flag,) = [a for a in container["args"] if a.startswith("--config.file=")]
    config_path = Path(config_flag.split("=", 1)[1])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(prometheus)["volumes"]}
    configmap = volumes[mounts[str(config_path.parent)]]["configMap"]["name"]
    config = yaml.safe_load(
        find(docs, "ConfigMap", "rig-prometheus-config")["data"][config_path.name]
    )
    assert re.fullmatch(r"rig-prometheus-config(-[a-z0-9]{10})?", configmap)
    # Every ready replica by DNS, through a headless Service that selects the gateway's
    # pods, on the port and path its annotations name.
    (job,) = config["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    (name,) = sd["names"]
    headless = find(docs, "Service", name)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert sd["type"] == "A" and str(sd["port"]) == annotations["prometheus.io/port"]
    assert job["metrics_path"] == annotations["prometheus.io/path"]
    # The scrape interval Grafana's $__rate_interval assumes, and Grafana reads this server.
    assert config["global"]["scrape_interval"] == SCRAPE_INTERVAL
    grafana = resolve_container(docs, find(docs, "Deployment", "grafana"), "grafana")
    port = find(docs, "Service", "prometheus")["spec"]["ports"][0]["port"]
    assert grafana.env["PROMETHEUS_URL"] == f"http://prometheus:{port}"
    assert f"--web.listen-address=:{container['ports'][0]['containerPort']}" in container["args"]


def test_the_gateway_masters_verdict_checks_the_savings_and_lost_turns_of_every_stateful_transport() -> (
    None
):
    docs = list(rendered("gateway"))
    env = run_env(tuple(docs))
    master = resolve_container(docs, find(docs, "Job", "locust-master"), "master")
    checks = [
        parse_check(master.argv[i + 1]) for i, arg in enumerate(master.argv) if arg == "--check"
    ]
    transports = env["RIG_TRANSPORTS"].split(",")
    assert "http" in transports  # the baseline the reductions are against
    stateful = {"http_chained", "ws", "ws_stored"}
    assert stateful <= set(transports)
    errors = {c.path[1] for c in checks if c.path[0] == "transports" and c.path[2] == "errors"}
    assert errors == stateful
    assert all(c.op == "==" and c.threshold == 0 for c in checks if c.path[-1] == "errors")
    reductions = {c.path[0] for c in checks if c.path[-1] == "bytes_sent_reduction"}
    assert reductions == {"ws_vs_http", "ws_stored_vs_http"}
    # Every check variable of the run ConfigMap reaches the master, none is left unexpanded.
    assert {k for k in env if k.startswith("RIG_CHECK")} == {
        k for k in master.env if k.startswith("RIG_CHECK")
    }
    assert len(checks) == len([k for k in env if k.startswith("RIG_CHECK")])


def test_smoke_and_external_target_run_a_fixed_load_without_a_shape() -> None:
    for overlay in ("smoke", "external-target"):
        env = run_env(rendered(overlay))
        assert env["RIG_SHAPE"] == "" and env["RIG_RETRY_POLICY"] == "backoff", overlay


def _timespan(text: str) -> float:
    """Locust's --run-time format (``90``, ``16m``, ``1h30m``), without importing Locust
    (whose import monkey-patches the test process)."""
    units = {"h": 3600, "m": 60, "s": 1}
    if text.isdigit():
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert parts and text, f"not a Locust time span: {text!r}"
    return float(sum(int(n or 0) * u for n, u in zip(parts.groups(), units.values(), strict=True)))


def _value(argv: list[str], flag: str) -> str:
    (index,) = [i for i, arg in enumerate(argv) if arg == flag]
    return argv[index + 1]


def test_capacity_master_runs_a_steps_shape_that_fits_its_workers_and_deadline() -> None:
    docs = list(rendered("capacity"))
    env = run_env(tuple(docs))
    job = find(docs, "Job", "locust-master")
    master = resolve_container(docs, job, "master")
    shape = parse_shape(_value(master.argv, "--shape"))
    assert isinstance(shape, Steps)
    assert _value(master.argv, "--retry-policy") == env["RIG_RETRY_POLICY"] == "backoff"
    parse_retry_policy(env["RIG_RETRY_POLICY"])
    # summary.json's `users` (from --users) says the shape's peak; --run-time its length.
    assert int(env["RIG_USERS"]) == shape.max_users
    assert _timespan(env["RIG_DURATION"]) == shape.duration_s
    # Many workers, each within the ~200 sessions a core carries (docs/performance.md).
    workers = find(docs, "Deployment", "locust-worker")["spec"]["replicas"]
    assert workers >= 8 and shape.max_users / workers <= 200
    # The run (with the wait for workers and the stop timeout) ends before the deadline.
    waits = float(_value(master.argv, "--expect-workers-max-wait"))
    waits += float(_value(master.argv, "--stop-timeout"))
    assert shape.duration_s + waits < job["spec"]["activeDeadlineSeconds"]
    # One transport per run (one API key, one bucket), and the check reads its knee.
    (transport,) = env["RIG_TRANSPORTS"].split(",")
    check = parse_check(_value(master.argv, "--check"))
    assert check.path[:2] == ("capacity", transport), check
    assert check.path[2] == "max_sessions" and 0 < check.threshold < shape.max_users


def test_capacity_mock_replicas_share_the_run_configmaps_quota_through_redis() -> None:
    docs = list(rendered("capacity"))
    env = run_env(tuple(docs))
    deployment = find(docs, "Deployment", "mock")
    assert deployment["spec"]["replicas"] >= 2
    mock = resolve_container(docs, deployment, "mock")
    argv = mock.argv
    assert _value(argv, "--rpm") == env["RIG_MOCK_RPM"] and int(env["RIG_MOCK_RPM"]) > 0
    assert _value(argv, "--tpm") == env["RIG_MOCK_TPM"]
    assert _value(argv, "--burst") == env["RIG_MOCK_BURST"]
    # Every replica debits the same buckets: the limit state is in the Redis they share.
    assert _value(argv, "--limits-store") == "redis://redis:6379/1"
    assert _value(argv, "--store") == "redis://redis:6379/0"
    # The mock's own parser takes the rendered command.
    from rig.cli import build_parser

    options = build_parser().parse_args(argv[1:])
    assert options.rpm == int(env["RIG_MOCK_RPM"]) and options.limits_store.startswith("redis://")
    # Enough replicas for the quota (one saturates near 300 turns/s, docs/performance.md)
    # and a core each; the quota binds before the mock does.
    assert deployment["spec"]["replicas"] * 300 >= int(env["RIG_MOCK_RPM"]) / 60
    resources = pod_spec(deployment)["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "1"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _pod_labels(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    return {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)
    }


def _admitted(docs: tuple[dict[str, Any], ...], target: str) -> set[str]:
    """The workloads whose pods may open a connection to ``target``'s pods."""
    pods = _pod_labels(docs)
    policies = [
        p
        for p in docs
        if p["kind"] == "NetworkPolicy" and _selects(p["spec"]["podSelector"], pods[target])
    ]
    assert policies, f"no NetworkPolicy selects {target}"
    admitted = set()
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                if set(peer) == {"namespaceSelector"}:
                    continue  # another namespace's pods (_other_namespaces)
                assert set(peer) == {"podSelector"}, "only same-namespace pod selectors"
                admitted |= {
                    name for name, labels in pods.items() if _selects(peer["podSelector"], labels)
                }
    return admitted


@pytest.mark.parametrize(
    ("target", "clients"),
    [
        ("mock", {"locust-master", "locust-worker"}),
        ("redis", {"mock"}),
        ("influxdb", {"locust-master", "locust-worker", "grafana", "influxdb-setup"}),
        ("locust-master", {"locust-worker"}),
    ],
)
@pytest.mark.parametrize("overlay", ["smoke", "capacity"])
def test_network_policies_admit_only_the_rigs_own_clients(
    overlay: str, target: str, clients: set[str]
) -> None:
    docs = rendered(overlay)
    assert _admitted(docs, target) == clients
    assert _other_namespaces(docs, target) == []
    # A pod outside the rig (no rig labels) is admitted by no rule.
    assert not _selects({"matchLabels": {"app.kubernetes.io/component": target}}, {})


def _other_namespaces(
    docs: tuple[dict[str, Any], ...], target: str
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(namespace selector, ports) of each rule admitting pods of other namespaces."""
    labels = _pod_labels(docs)[target]
    return [
        (peer["namespaceSelector"], rule["ports"])
        for policy in docs
        if policy["kind"] == "NetworkPolicy" and _selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]


@pytest.mark.parametrize(
    ("target", "clients"),
    [
        ("gateway", {"locust-master", "locust-worker", "prometheus"}),
        ("prometheus", {"grafana"}),
        ("mock", {"gateway"}),
        ("redis", {"gateway"}),
        ("influxdb", {"locust-master", "locust-worker", "grafana", "influxdb-setup"}),
        ("locust-master", {"locust-worker"}),
    ],
)
def test_gateway_network_policies_admit_the_load_to_the_gateway_and_only_it_further(
    target: str, clients: set[str]
) -> None:
    docs = rendered("gateway")
    assert _admitted(docs, target) == clients
    # Prometheus scrapes every replica's /metrics from its own namespace, on the one port.
    expected = []
    if target == "gateway":
        port = pod_spec(find(docs, "Deployment", "gateway"))["containers"][0]["ports"][0]
        namespace = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
        expected = [(namespace, [{"port": port["containerPort"], "protocol": "TCP"}])]
    assert _other_namespaces(docs, target) == expected


def test_the_grafana_configmaps_are_what_rig_dashboards_renders() -> None:
    spec = importlib.util.spec_from_file_location("sync_dashboards", K8S / "sync_dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUTPUT.read_text(encoding="utf-8") == module.render(), (
        "k8s/base/grafana/provisioning.yaml is stale: run python k8s/sync_dashboards.py"
    )


def test_grafana_mounts_the_dashboards_where_the_provider_reads_them_with_its_variables() -> None:
    docs = list(rendered("smoke"))
    grafana = find(docs, "Deployment", "grafana")
    mounts = {m["mountPath"]: m["name"] for m in pod_spec(grafana)["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(grafana)["volumes"]}
    assert volumes[mounts[DASHBOARD_PATH]]["configMap"]["name"] == "grafana-dashboards"
    dashboards = find(docs, "ConfigMap", "grafana-dashboards")["data"]
    assert dashboards and all(name.endswith(".json") for name in dashboards)
    for text in dashboards.values():
        json.loads(text)
    datasources = find(docs, "ConfigMap", "grafana-datasources")["data"]
    assert set(datasources) == {"rig.yaml", "rig-prometheus.yaml"}
    env = resolve_container(docs, grafana, "grafana").env
    for name, text in datasources.items():
        for variable in set(re.findall(r"\$\{?([A-Z_]+)", text)):
            assert env.get(variable), f"Grafana lacks {variable} for its datasource {name}"
    assert env["INFLUX_URL"] == "http://influxdb:8086"
    assert env["PROMETHEUS_URL"].startswith("http://")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_generated_configmaps_fit_kubectl_apply_annotation_limit(overlay: str) -> None:
    for doc in rendered(overlay):
        if doc["kind"] == "ConfigMap":
            size = len(json.dumps(doc))
            assert size < 262_144, f"{doc['metadata']['name']} is {size} bytes"


def test_the_influxdb_setup_script_is_valid_shell_and_maps_the_database_for_influxql() -> None:
    script = K8S / "base" / "scripts" / "influxdb_setup.sh"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text(encoding="utf-8")
    assert "influx v1 dbrp create" in text and '--token "$INFLUX_TOKEN"' in text
    docs = list(rendered("smoke"))
    setup = resolve_container(docs, find(docs, "Job", "influxdb-setup"), "setup")
    assert setup.env["INFLUX_DB"] == "rig" and setup.env["INFLUX_TOKEN"]


def test_the_dockerfile_builds_one_non_root_image_with_the_rig_as_entry_point() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2, "multi-stage"
    final = dockerfile_final_stage()
    words = [word for word, _ in final]
    assert image_entrypoint() == ["rig"]
    user = [rest for word, rest in final if word == "USER"][-1]
    assert not user.startswith(("0", "root"))
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    runs = " ".join(rest for word, rest in final if word == "RUN")
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", runs), runs
    labels = " ".join(rest for word, rest in final if word == "LABEL")
    for label in ("title", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels
    copies = [rest for word, rest in final if word == "COPY"]
    assert any(c.startswith("--from=build /opt/rig") for c in copies)
    assert any(c.startswith("locustfiles ") for c in copies)
    assert re.search(r"python:3\.11-slim", text)


def test_the_dockerignore_lets_in_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for word, rest in [*dockerfile_final_stage(), *_build_stage()]:
        if word == "COPY" and not rest.startswith("--from"):
            copied |= set(shlex.split(rest)[:-1])
    assert copied <= allowed, copied - allowed


def _build_stage() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stage = text.split("\nFROM ")[1]
    return [
        (line.split(" ", 1)[0], line.split(" ", 1)[1])
        for line in stage.splitlines()
        if line.startswith("COPY ")
    ]


def _user_secrets() -> dict[str, dict[str, str]]:
    """Stand-ins for the Secrets the external-target user creates."""
    return {
        "rig-target": {"api-key": "user-key"},
        "rig-influxdb-auth": {"token": "user-token", "admin-password": "user-password"},
        "rig-grafana-auth": {"admin-password": "user-password"},
    }


def test_the_compose_file_parses_and_names_the_services_of_the_local_stack() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {
        "mock",
        "redis",
        "influxdb",
        "influxdb-setup",
        "grafana",
        "locust-master",
        "locust-worker",
    }
    assert str(services["locust-worker"]["deploy"]["replicas"]) == "${RIG_WORKERS:-2}"
    for name in ("mock", "locust-master", "locust-worker"):
        assert services[name]["build"] == "."
        assert services[name]["user"] == f"{RIG_UID}:{RIG_UID}"
        assert services[name]["read_only"] is True
    grafana_volumes = services["grafana"]["volumes"]
    assert f"./dashboards:{DASHBOARD_PATH}:ro" in grafana_volumes
    assert (REPO / "k8s/base/scripts/influxdb_setup.sh").is_file()


@pytest.mark.parametrize(
    ("service", "kind", "workload", "container"),
    [
        ("mock", "Deployment", "mock", "mock"),
        ("locust-master", "Job", "locust-master", "master"),
        ("locust-worker", "Deployment", "locust-worker", "worker"),
    ],
)
def test_compose_runs_the_very_commands_of_the_smoke_overlay(
    service: str, kind: str, workload: str, container: str
) -> None:
    docs = list(rendered("smoke"))
    k8s = resolve_container(docs, find(docs, kind, workload), container)
    assert compose_commands()[service] == k8s.argv


def _documented_overlay(heading: str) -> str:
    """The kustomization.yaml block under ``heading`` in docs/kubernetes.md."""
    text = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    section = text.split(f"### {heading}\n", 1)[1]
    match = re.search(
        r"```yaml\n(# k8s/overlays/[^\n]+/kustomization\.yaml\n.*?)```", section, re.S
    )
    assert match, f"no kustomization.yaml block under {heading!r}"
    return match.group(1)


def test_the_documented_capacity_overlay_for_a_real_endpoint_renders_a_steps_run_without_mock(
    tmp_path: Path,
) -> None:
    text = _documented_overlay("Capacity against a real endpoint")
    overlay = tmp_path / "overlays" / "my-capacity"
    overlay.mkdir(parents=True)
    # As if next to the shipped overlays: ../external-target, from wherever the test runs.
    parent = os.path.relpath(K8S / "overlays" / "external-target", overlay)
    (overlay / "kustomization.yaml").write_text(text.replace("../external-target", parent))
    docs = render(overlay)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert not {"mock", "redis"} & {d["metadata"]["name"] for d in docs}
    env = run_env(tuple(docs))
    assert env["RIG_TARGET_URL"] == run_env(rendered("external-target"))["RIG_TARGET_URL"]
    workers = find(docs, "Deployment", "locust-worker")["spec"]["replicas"]
    assert int(env["RIG_WORKERS"]) == workers
    master = resolve_container(docs, find(docs, "Job", "locust-master"), "master", _user_secrets())
    shape = parse_shape(_value(master.argv, "--shape"))
    assert isinstance(shape, Steps) and shape.max_users / workers <= 200
    assert int(env["RIG_USERS"]) == shape.max_users
    assert _timespan(env["RIG_DURATION"]) == shape.duration_s
    (transport,) = env["RIG_TRANSPORTS"].split(",")
    assert parse_check(_value(master.argv, "--check")).path[:2] == ("capacity", transport)
