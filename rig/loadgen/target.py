"""The system under test: where requests go, with which model and key."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rig.errors import RigError

__all__ = ["Target", "TargetError"]


class TargetError(RigError, ValueError):
    """A target URL or key setting is unusable."""


@dataclass(frozen=True)
class Target:
    """An endpoint speaking the Responses API (and Chat Completions), e.g. ``.../v1``."""

    base_url: str
    model: str = "mock-agent"
    name: str = "mock"
    api_key: str | None = field(default=None, repr=False)
    insecure: bool = False

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
        """A target from ``url``; the key, if any, is read from the environment variable
        ``api_key_env`` and never stored anywhere else (not in records, not in logs)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(
                f"target URL {url!r}: expected http(s)://host[:port]/v1 (the API's base URL)"
            )
        key = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise TargetError(
                    f"--api-key-env {api_key_env}: the environment variable is not set or empty"
                )
        return cls(
            base_url=url.rstrip("/"),
            model=model,
            name=name or parts.hostname,
            api_key=key,
            insecure=insecure,
        )

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
