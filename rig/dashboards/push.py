"""``rig dashboards push``: create or update the datasource, folder and dashboards in a
running Grafana through its HTTP API (grafana-client), idempotently.

Everything is read before anything is written, and written only when it differs: a second
push with the same inputs makes no write call and reports every object ``unchanged``.
Grafana never returns secrets, so a datasource whose only change is its token is not seen
as changed; ``force`` rewrites the datasource regardless.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)
from niquests.exceptions import RequestException

from rig.dashboards.model import DATASOURCE_UID
from rig.errors import RigError

__all__ = [
    "Outcome",
    "PushError",
    "PushPlan",
    "PushResult",
    "display_url",
    "folder_uid_for",
    "push",
]

Outcome = Literal["created", "updated", "unchanged"]
_DASHBOARD_SERVER_KEYS = ("id", "version")
"""What Grafana adds to a stored dashboard; left out when comparing with ours."""
_PUSH_MESSAGE = "rig dashboards push"


class PushError(RigError):
    """Grafana could not be reached, refused the token, or refused a change."""


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What to put in Grafana: the dashboards by uid, a folder, optionally the datasource."""

    dashboards: Mapping[str, dict[str, Any]]
    folder_title: str
    folder_uid: str
    datasource: dict[str, Any] | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class PushResult:
    """What happened to each object (``datasource rig-influxdb`` -> ``unchanged``)."""

    outcomes: dict[str, Outcome]

    @property
    def writes(self) -> int:
        """Objects created or updated."""
        return sum(outcome != "unchanged" for outcome in self.outcomes.values())


def folder_uid_for(title: str) -> str:
    """A stable folder uid from its title (``Agentic load rig`` -> ``agentic-load-rig``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:40] or "rig"


def _not_found(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def _datasource_differs(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "secureJsonData":
            configured = existing.get("secureJsonFields") or {}
            if any(not configured.get(name) for name in value):
                return True
        elif key == "jsonData":
            if dict(existing.get("jsonData") or {}) != dict(value):
                return True
        elif existing.get(key) != value:
            return True
    return False


def _stored_dashboard(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if k not in _DASHBOARD_SERVER_KEYS}


class _Pusher:
    """One push: a grafana-client API, the plan, the outcomes so far."""

    def __init__(self, api: GrafanaApi, plan: PushPlan, report: Callable[[str], None]):
        self.api = api
        self.plan = plan
        self.report = report
        self.outcomes: dict[str, Outcome] = {}

    def _record(self, what: str, outcome: Outcome) -> None:
        self.outcomes[what] = outcome
        self.report(f"{what}: {outcome}")

    def datasource(self, wanted: dict[str, Any]) -> None:
        what = f"datasource {DATASOURCE_UID}"
        try:
            existing = self.api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            self.api.datasource.create_datasource(wanted)
            self._record(what, "created")
            return
        if not self.plan.force and not _datasource_differs(existing, wanted):
            self._record(what, "unchanged")
            return
        if existing.get("readOnly"):
            raise PushError(
                f"{what} is provisioned from a file in this Grafana (read-only), so the API "
                "cannot change it; edit its provisioning file, or push without "
                "--datasource-url to leave it alone"
            )
        self.api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted)
        self._record(what, "updated")

    def check_datasource_exists(self) -> None:
        try:
            self.api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            self.report(
                f"warning: Grafana has no datasource with uid {DATASOURCE_UID}; the panels "
                "will show errors until one exists (push with --datasource-url, or provision "
                "dashboards/provisioning/datasources/rig.yaml)"
            )

    def folder(self) -> None:
        what = f"folder {self.plan.folder_uid}"
        try:
            self.api.folder.get_folder(self.plan.folder_uid)
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            self.api.folder.create_folder(self.plan.folder_title, uid=self.plan.folder_uid)
            self._record(what, "created")
            return
        self._record(what, "unchanged")

    def dashboard(self, uid: str, wanted: dict[str, Any]) -> None:
        what = f"dashboard {uid}"
        body = {
            "dashboard": wanted,
            "folderUid": self.plan.folder_uid,
            "message": _PUSH_MESSAGE,
            "overwrite": True,
        }
        try:
            stored = self.api.dashboard.get_dashboard(uid)
        except GrafanaException as exc:
            if not _not_found(exc):
                raise
            self.api.dashboard.update_dashboard(body)
            self._record(what, "created")
            return
        meta = stored.get("meta") or {}
        same_folder = meta.get("folderUid", "") == self.plan.folder_uid
        if same_folder and _stored_dashboard(stored.get("dashboard") or {}) == wanted:
            self._record(what, "unchanged")
            return
        if meta.get("provisioned"):
            raise PushError(
                f"{what} is provisioned from a file in this Grafana, so the API cannot "
                "change it; update the provisioned files (rig dashboards generate) instead"
            )
        self.api.dashboard.update_dashboard(body)
        self._record(what, "updated")


def _describe(exc: Exception, url: str, token_env: str) -> str:
    """A message naming what went wrong and what to do; never the token itself."""
    if isinstance(exc, GrafanaUnauthorizedError):
        return (
            f"Grafana at {url} rejected the token in ${token_env} (401 Unauthorized): "
            "check that it is a current service account token of this Grafana"
        )
    if isinstance(exc, GrafanaClientError) and exc.status_code == 403:
        return (
            f"Grafana at {url} refused: the token in ${token_env} lacks a permission "
            f"({exc.message}); it needs the Editor role (Admin to manage datasources)"
        )
    if isinstance(exc, GrafanaTimeoutError):
        return f"Grafana at {url} did not answer in time: {exc.message}"
    if isinstance(exc, GrafanaServerError):
        return f"Grafana at {url} failed: {exc.message}"
    if isinstance(exc, GrafanaClientError):
        return f"Grafana at {url} refused a request: {exc.message}"
    return f"cannot reach Grafana at {url}: {exc}"


def display_url(url: str) -> str:
    """The URL without any user:password in it, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def push(
    url: str,
    token: str,
    plan: PushPlan,
    *,
    token_env: str = "the token variable",
    report: Callable[[str], None] = print,
    timeout_s: float = 10.0,
) -> PushResult:
    """Create or update the plan's objects in the Grafana at ``url``.

    Raises :class:`PushError` with a message naming the problem (unreachable, token
    rejected, permission missing, a provisioned object) and never the token.
    """
    # grafana-client appends "api" to the URL's path as it is: a sub-path needs its slash.
    base = url if url.endswith("/") else url + "/"
    api = GrafanaApi.from_url(base, credential=token, timeout=timeout_s)
    pusher = _Pusher(api, plan, report)
    shown = display_url(url)
    try:
        health = api.client.GET("/health")
        version = health.get("version", "?") if isinstance(health, dict) else "?"
        report(f"Grafana {version} at {shown}")
        if plan.datasource is not None:
            pusher.datasource(plan.datasource)
        else:
            pusher.check_datasource_exists()
        pusher.folder()
        for uid, wanted in sorted(plan.dashboards.items()):
            pusher.dashboard(uid, wanted)
    except (GrafanaException, RequestException, OSError) as exc:
        raise PushError(_describe(exc, shown, token_env)) from exc
    return PushResult(pusher.outcomes)
