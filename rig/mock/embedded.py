"""A mock provider running in a background thread of the current process.

For commands that need a target and were given none (the embedded default). It is the
real server (uvicorn, real sockets on loopback), only hosted in-process.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from types import TracebackType

import uvicorn

from rig.mock.server import MockConfig, create_app

__all__ = ["EmbeddedMock", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedMock:
    """Context manager: start the mock on a free loopback port, stop it on exit."""

    def __init__(self, config: MockConfig | None = None, start_timeout_s: float = 20.0):
        config = config or MockConfig()
        if config.port == 0 or config.port == MockConfig.port:
            config = dataclasses.replace(config, port=free_port(config.host))
        self.config = config
        self.start_timeout_s = start_timeout_s
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                host=config.host,
                port=config.port,
                loop="asyncio",
                http="httptools",
                ws="websockets-sansio",
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_keep_alive=config.keep_alive_s,
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="rig-mock", daemon=True)

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``, as an OpenAI client's ``base_url``."""
        return f"http://{self.config.host}:{self.config.port}/v1"

    def __enter__(self) -> EmbeddedMock:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded mock did not start on port {self.config.port}")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
