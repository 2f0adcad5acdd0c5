"""``rig dashboards push`` against a stand-in for Grafana's HTTP API.

A STAND-IN, NOT GRAFANA: no Grafana binary can be installed on this machine (no Docker;
Grafana is in neither Debian's archive, PyPI nor npm), so these tests run the push against
a small Starlette app on a loopback port that implements only the endpoints grafana-client
calls, with the request and response shapes of Grafana's documented HTTP API
(``/api/health``; datasources get/create/update by uid; folders get/create; dashboards get
by uid and ``POST /api/dashboards/db``; ``Authorization: Bearer`` checked on every ``/api``
route but health, 401 ``Invalid API key`` otherwise). It records every call, so the tests
can say which writes a push made. What it cannot show is that a real Grafana stores a
dashboard exactly as sent (the idempotency comparison relies on it): run a push twice
against a real Grafana to confirm the second reports every object unchanged.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rig.dashboards import cli
from rig.dashboards.render import build_all
from tests.servers import free_port

TOKEN = "glsa_standin_token_0123456789"
INFLUX_TOKEN = "influx-secret-token-abcdef"


@dataclass
class GrafanaState:
    """What the stand-in holds, and every call it answered."""

    token: str = TOKEN
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1

    def writes(self) -> list[tuple[str, str]]:
        """The calls that could change something (anything but GET)."""
        return [call for call in self.calls if call[0] != "GET"]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _not_found(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=404)


def grafana_app(state: GrafanaState) -> Starlette:
    """The endpoints grafana-client uses for a push, shaped as Grafana answers them."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"commit": "standin", "database": "ok", "version": "11.6.0"})

    async def get_datasource(request: Request) -> JSONResponse:
        stored = state.datasources.get(request.path_params["uid"])
        if stored is None:
            return _not_found("Data source not found")
        return JSONResponse(stored)

    def _stored_datasource(body: dict[str, Any], ds_id: int, version: int) -> dict[str, Any]:
        secure = body.get("secureJsonData") or {}
        return {
            "access": body.get("access", "proxy"),
            "basicAuth": body.get("basicAuth", False),
            "basicAuthUser": "",
            "database": body.get("database", ""),
            "id": ds_id,
            "isDefault": body.get("isDefault", False),
            "jsonData": body.get("jsonData", {}),
            "name": body["name"],
            "orgId": 1,
            "readOnly": False,
            "secureJsonFields": {name: True for name in secure},
            "type": body["type"],
            "typeLogoUrl": "public/app/plugins/datasource/influxdb/img/influxdb_logo.svg",
            "uid": body.get("uid") or f"auto{ds_id}",
            "url": body.get("url", ""),
            "user": "",
            "version": version,
            "withCredentials": False,
        }

    async def create_datasource(request: Request) -> JSONResponse:
        body = await request.json()
        if any(ds["name"] == body.get("name") for ds in state.datasources.values()):
            return JSONResponse(
                {"message": "data source with the same name already exists"}, status_code=409
            )
        stored = _stored_datasource(body, state.new_id(), 1)
        stored["_secrets"] = dict(body.get("secureJsonData") or {})
        state.datasources[stored["uid"]] = stored
        public = {k: v for k, v in stored.items() if k != "_secrets"}
        return JSONResponse(
            {
                "datasource": public,
                "id": stored["id"],
                "message": "Datasource added",
                "name": stored["name"],
            }
        )

    async def update_datasource(request: Request) -> JSONResponse:
        uid = request.path_params["uid"]
        existing = state.datasources.get(uid)
        if existing is None:
            return _not_found("Data source not found")
        body = await request.json()
        stored = _stored_datasource({**body, "uid": uid}, existing["id"], existing["version"] + 1)
        stored["_secrets"] = {**existing["_secrets"], **(body.get("secureJsonData") or {})}
        stored["secureJsonFields"] = {name: True for name in stored["_secrets"]}
        state.datasources[uid] = stored
        return JSONResponse(
            {
                "datasource": {k: v for k, v in stored.items() if k != "_secrets"},
                "id": stored["id"],
                "message": "Datasource updated",
                "name": stored["name"],
            }
        )

    async def get_folder(request: Request) -> JSONResponse:
        folder = state.folders.get(request.path_params["uid"])
        return JSONResponse(folder) if folder else _not_found("folder not found")

    async def create_folder(request: Request) -> JSONResponse:
        body = await request.json()
        uid = body.get("uid") or f"f{state.next_id}"
        if uid in state.folders:
            return JSONResponse(
                {"message": "a folder with the same uid already exists"}, status_code=409
            )
        folder = {
            "id": state.new_id(),
            "uid": uid,
            "title": body["title"],
            "url": f"/dashboards/f/{uid}/",
            "version": 1,
        }
        state.folders[uid] = folder
        return JSONResponse(folder)

    async def get_dashboard(request: Request) -> JSONResponse:
        stored = state.dashboards.get(request.path_params["uid"])
        if stored is None:
            return _not_found("Dashboard not found")
        return JSONResponse(stored)

    async def save_dashboard(request: Request) -> JSONResponse:
        body = await request.json()
        dashboard = copy.deepcopy(body["dashboard"])
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in state.folders:
            return JSONResponse({"message": "folder not found"}, status_code=400)
        uid = dashboard.get("uid")
        existing = state.dashboards.get(uid)
        if existing is not None and not body.get("overwrite"):
            return JSONResponse(
                {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                },
                status_code=412,
            )
        if existing is not None and existing["meta"]["provisioned"]:
            return JSONResponse({"message": "Cannot save provisioned dashboard"}, status_code=400)
        version = existing["dashboard"]["version"] + 1 if existing else 1
        dashboard["id"] = existing["dashboard"]["id"] if existing else state.new_id()
        dashboard["version"] = version
        slug = dashboard["title"].lower().replace(" ", "-").replace(":", "")
        state.dashboards[uid] = {
            "dashboard": dashboard,
            "meta": {
                "folderUid": folder_uid,
                "provisioned": False,
                "slug": slug,
                "url": f"/d/{uid}/{slug}",
                "version": version,
            },
        }
        return JSONResponse(
            {
                "id": dashboard["id"],
                "slug": slug,
                "status": "success",
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "version": version,
            }
        )

    routes = [
        Route("/api/health", health),
        Route("/api/datasources", create_datasource, methods=["POST"]),
        Route("/api/datasources/uid/{uid}", get_datasource, methods=["GET"]),
        Route("/api/datasources/uid/{uid}", update_datasource, methods=["PUT"]),
        Route("/api/folders", create_folder, methods=["POST"]),
        Route("/api/folders/{uid}", get_folder, methods=["GET"]),
        Route("/api/dashboards/uid/{uid}", get_dashboard, methods=["GET"]),
        Route("/api/dashboards/db", save_dashboard, methods=["POST"]),
    ]
    app = Starlette(routes=routes)

    async def recording_and_auth(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            state.calls.append((scope["method"], scope["path"]))
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode()
            if scope["path"] != "/api/health" and authorization != f"Bearer {state.token}":
                message = "Invalid API key" if authorization else "Unauthorized"
                await JSONResponse({"message": message}, status_code=401)(scope, receive, send)
                return
        await app(scope, receive, send)

    return recording_and_auth  # type: ignore[return-value]


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    """The stand-in on a loopback port. The socket listens before the thread starts, so a
    client connecting first waits in the backlog: nothing polls for readiness."""
    state = GrafanaState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(grafana_app(state), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _push(url: str, *extra: str) -> int:
    argv = shlex.split(
        "dashboards push --token-env RIG_TEST_GRAFANA_TOKEN"
        " --datasource-url http://influxdb:8086 --influx-bucket rig --influx-org rig-org"
        " --influx-token-env RIG_TEST_INFLUX_TOKEN"
    )
    return cli.run(_parser().parse_args([*argv, "--grafana-url", url, *extra]))


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIG_TEST_GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("RIG_TEST_INFLUX_TOKEN", INFLUX_TOKEN)


def _assert_no_secret(text: str) -> None:
    assert TOKEN not in text
    assert INFLUX_TOKEN not in text


def test_first_push_creates_datasource_folder_and_dashboards(grafana, capsys):
    url, state = grafana
    assert _push(url) == 0
    out = capsys.readouterr()
    _assert_no_secret(out.out + out.err)
    uids = sorted(build_all())
    assert sorted(state.writes()) == sorted(
        [("POST", "/api/datasources"), ("POST", "/api/folders")]
        + [("POST", "/api/dashboards/db")] * len(uids)
    )
    assert sorted(state.dashboards) == uids
    assert {d["meta"]["folderUid"] for d in state.dashboards.values()} == {"agentic-load-rig"}
    datasource = state.datasources["rig-influxdb"]
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["dbName"] == "rig"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert datasource["_secrets"] == {"httpHeaderValue1": f"Token {INFLUX_TOKEN}"}
    assert f"{len(uids) + 2} created, 0 updated, 0 unchanged" in out.out


def test_second_push_makes_no_write_call(grafana, capsys):
    url, state = grafana
    assert _push(url) == 0
    state.calls.clear()
    capsys.readouterr()
    assert _push(url) == 0
    out = capsys.readouterr().out
    assert state.writes() == []
    assert state.calls  # it did look
    assert f"0 created, 0 updated, {len(build_all()) + 2} unchanged" in out


def test_a_changed_dashboard_is_updated_once(grafana, capsys):
    url, state = grafana
    assert _push(url) == 0
    state.dashboards["rig-latency"]["dashboard"]["title"] = "edited in the UI"
    state.calls.clear()
    assert _push(url) == 0
    assert state.writes() == [("POST", "/api/dashboards/db")]
    assert state.dashboards["rig-latency"]["dashboard"]["title"] == "Rig: latency"
    assert state.dashboards["rig-latency"]["dashboard"]["version"] == 2
    assert "dashboard rig-latency: updated" in capsys.readouterr().out


def test_a_dashboard_in_another_folder_is_moved_back(grafana):
    url, state = grafana
    assert _push(url) == 0
    state.dashboards["rig-health"]["meta"]["folderUid"] = ""
    state.calls.clear()
    assert _push(url) == 0
    assert state.writes() == [("POST", "/api/dashboards/db")]
    assert state.dashboards["rig-health"]["meta"]["folderUid"] == "agentic-load-rig"


def test_a_changed_datasource_is_updated_by_uid(grafana):
    url, state = grafana
    assert _push(url) == 0
    state.calls.clear()
    args = ["--datasource-url", "http://influxdb.other:8086"]
    assert _push(url, *args) == 0
    assert state.writes() == [("PUT", "/api/datasources/uid/rig-influxdb")]
    assert state.datasources["rig-influxdb"]["url"] == "http://influxdb.other:8086"


def test_force_rewrites_the_datasource_only(grafana):
    url, state = grafana
    assert _push(url) == 0
    state.calls.clear()
    assert _push(url, "--force") == 0
    assert state.writes() == [("PUT", "/api/datasources/uid/rig-influxdb")]


def test_a_rejected_token_is_a_clear_error_and_writes_nothing(grafana, capsys, monkeypatch):
    url, state = grafana
    monkeypatch.setenv("RIG_TEST_GRAFANA_TOKEN", "glsa_wrong")
    assert _push(url) == 1
    err = capsys.readouterr().err
    assert "rejected the token in $RIG_TEST_GRAFANA_TOKEN" in err
    assert "401" in err
    assert "glsa_wrong" not in err
    assert state.writes() == []


def test_an_unreachable_grafana_is_a_clear_error(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert _push(url, "--timeout", "5") == 1
    err = capsys.readouterr().err
    assert f"cannot reach Grafana at {url}" in err
    _assert_no_secret(err)


def test_a_provisioned_dashboard_is_not_overwritten(grafana, capsys):
    url, state = grafana
    assert _push(url) == 0
    stored = state.dashboards["rig-ingress"]
    stored["meta"]["provisioned"] = True
    stored["dashboard"]["title"] = "older provisioned copy"
    state.calls.clear()
    assert _push(url) == 1
    assert "dashboard rig-ingress is provisioned from a file" in capsys.readouterr().err
    assert ("POST", "/api/dashboards/db") not in state.writes()


def test_a_missing_token_variable_is_named(capsys, monkeypatch):
    monkeypatch.delenv("RIG_TEST_GRAFANA_TOKEN")
    assert _push("http://127.0.0.1:1") == 2
    assert "RIG_TEST_GRAFANA_TOKEN is not set" in capsys.readouterr().err


def test_a_bucket_without_a_token_is_refused(capsys):
    argv = shlex.split(
        "dashboards push --grafana-url http://127.0.0.1:1 --token-env RIG_TEST_GRAFANA_TOKEN"
        " --datasource-url http://influxdb:8086 --influx-bucket rig"
    )
    args = _parser().parse_args(argv)
    assert cli.run(args) == 2
    assert "--influx-token-env" in capsys.readouterr().err
