"""The system under test: where requests go, with which model and key.

A target may have several base URLs (replicas behind no load balancer of ours):
``--target-url`` takes a comma-separated list, every URL of the same shape (scheme and
API path), sharing the key and the model. Each is an :class:`Endpoint`; a run spreads
its new connections over them in turn with one :class:`EndpointRotation`, as a
Kubernetes Service spreads connections over its pods (:mod:`rig.loadgen.dial` connects).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rig.errors import RigError

__all__ = ["Endpoint", "EndpointRotation", "Target", "TargetError", "parse_base_urls"]


class TargetError(RigError, ValueError):
    """A target URL or key setting is unusable."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One base URL of the target: where one connection goes."""

    base_url: str

    @property
    def tls(self) -> bool:
        """Whether connections use TLS."""
        return urlsplit(self.base_url).scheme == "https"

    @property
    def host(self) -> str:
        """Host name or address."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        """TCP port."""
        return urlsplit(self.base_url).port or (443 if self.tls else 80)

    @property
    def base_path(self) -> str:
        """Path prefix of the API (``/v1``)."""
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def ws_url(self) -> str:
        """The Responses API WebSocket URL."""
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{urlsplit(self.base_url).netloc}{self.base_path}/responses"


def parse_base_urls(value: str) -> tuple[str, ...]:
    """``--target-url``: one base URL or a comma-separated list of them, each
    ``http(s)://host[:port]/path`` and all with the first one's scheme and path (they are
    replicas of one API); a :class:`TargetError` names the URL that is not."""
    urls = tuple(part.strip().rstrip("/") for part in value.split(","))
    several = len(urls) > 1
    where = f" in --target-url {value!r}" if several else ""
    first = urlsplit(urls[0]) if urls[0] else None
    for url in urls:
        if not url:
            raise TargetError(f"target URL list {value!r} has an empty entry")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - validates the port (a ValueError when it is not one)
        except ValueError as exc:
            raise TargetError(f"target URL {url!r}{where}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(
                f"target URL {url!r}{where}: expected http(s)://host[:port]/v1 (the API's base URL)"
            )
        assert first is not None
        if parts.scheme != first.scheme or parts.path.rstrip("/") != first.path.rstrip("/"):
            raise TargetError(
                f"target URL {url!r}{where}: every URL must have the scheme and path of the "
                f"first, {urls[0]!r} (replicas of one API differ only in host and port)"
            )
    return urls


@dataclass(frozen=True)
class Target:
    """An endpoint speaking the Responses API (and Chat Completions), e.g. ``.../v1``,
    at one base URL or several (replicas; ``base_url`` is the first)."""

    base_url: str
    model: str = "mock-agent"
    name: str = "mock"
    api_key: str | None = field(default=None, repr=False)
    insecure: bool = False
    base_urls: tuple[str, ...] = ()
    """Every base URL, in rotation order (empty: ``base_url`` alone)."""

    def __post_init__(self) -> None:
        if not self.base_urls:
            object.__setattr__(self, "base_urls", (self.base_url,))

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        model: str = "mock-agent",
        name: str | None = None,
        api_key_env: str | None = None,
        insecure: bool = False,
    ) -> Target:
        """A target from ``url`` (one base URL or a comma-separated list of them, see
        :func:`parse_base_urls`); the key, if any, is read from the environment variable
        ``api_key_env`` and never stored anywhere else (not in records, not in logs)."""
        urls = parse_base_urls(url)
        key = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise TargetError(
                    f"--api-key-env {api_key_env}: the environment variable is not set or empty"
                )
        return cls(
            base_url=urls[0],
            model=model,
            name=name or (urlsplit(urls[0]).hostname or ""),
            api_key=key,
            insecure=insecure,
            base_urls=urls,
        )

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every base URL as an :class:`Endpoint`, in rotation order."""
        return tuple(Endpoint(url) for url in self.base_urls)

    @property
    def tls(self) -> bool:
        """Whether connections use TLS (the same for every URL)."""
        return Endpoint(self.base_url).tls

    @property
    def host(self) -> str:
        """Host name or address of the first URL."""
        return Endpoint(self.base_url).host

    @property
    def port(self) -> int:
        """TCP port of the first URL."""
        return Endpoint(self.base_url).port

    @property
    def base_path(self) -> str:
        """Path prefix of the API (``/v1``; the same for every URL)."""
        return Endpoint(self.base_url).base_path

    @property
    def ws_url(self) -> str:
        """The Responses API WebSocket URL of the first URL."""
        return Endpoint(self.base_url).ws_url

    def auth_headers(self) -> dict[str, str]:
        """``Authorization`` when a key is configured."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (or a non-verifying one with ``insecure``), or None."""
        if not self.tls:
            return None
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class EndpointRotation:
    """The run's round robin over a target's endpoints: each new connection starts at
    the next one, and a failed connect moves on through the others (once around).

    One per run (on the run's :class:`~rig.loadgen.registry.TransportContext`, under
    :meth:`key`), shared by every session, so connections spread evenly however
    sessions come and go; with one endpoint it always answers that one.
    """

    __slots__ = ("_endpoints", "_next")

    def __init__(self, endpoints: tuple[Endpoint, ...]):
        if not endpoints:
            raise TargetError("a target needs at least one base URL")
        self._endpoints = endpoints
        self._next = 0

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints, in rotation order."""
        return self._endpoints

    def order(self) -> tuple[Endpoint, ...]:
        """The endpoints in the order one new connection tries them: from the next in
        turn, once around. Advances the turn by one."""
        start = self._next
        self._next = (start + 1) % len(self._endpoints)
        return self._endpoints[start:] + self._endpoints[:start]

    @staticmethod
    def key(target: Target) -> str:
        """The rotation's key among a run's shared objects."""
        return "endpoints:" + ",".join(target.base_urls)
