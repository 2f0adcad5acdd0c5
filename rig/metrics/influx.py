"""The InfluxDB sink: every record as a point, written while the run goes on.

One writer greenlet per process takes encoded lines from a bounded queue and posts them in
batches (by size and by interval), gzip-compressed, retrying with jittered exponential
back-off on 5xx, 429 and connection errors. A record that finds the queue full is counted
as dropped, never silently: :attr:`InfluxSink.points_dropped` goes into the ``rig``
measurement and the summary. At the end of the test one bounded final attempt
(:meth:`InfluxSink.finish`) sends what is queued; what it could not send by its deadline
(InfluxDB down or hung) is counted dropped before the run's figures are taken, so
``points_written + points_dropped`` is every point the process made.

Two backends, chosen by ``--sink``:

* ``influx``: InfluxDB 2.x/3.x (and anything serving ``/api/v2/write``) through
  influxdb-client's v2 write service, token from the environment;
* ``influx-v1``: InfluxDB 1.x through ``/write`` with ``db``/``rp`` and optional basic
  auth from the environment.

Both start with a connectivity check (an empty write, which InfluxDB answers 204 after
checking the token and the bucket or database), so bad configuration fails at start,
naming what is wrong, and not in the middle of a run. influxdb-client's own batching
``WriteApi`` is not used: under gevent its reactive thread pools have been reported to hang
at exit (docs/architecture.md).
"""

from __future__ import annotations

import collections
import gzip
import logging
import os
import random
import time
import urllib.parse
from typing import Any, Protocol

import gevent
import gevent.event
import orjson
import urllib3

from rig.errors import RigError
from rig.metrics.influx_config import InfluxConfig, InfluxConfigError
from rig.metrics.lineproto import LineEncoder
from rig.metrics.records import Record

__all__ = [
    "InfluxConfig",
    "InfluxConfigError",
    "InfluxSink",
    "V1Backend",
    "V2Backend",
    "WriteError",
    "open_backend",
]

log = logging.getLogger("rig.metrics.influx")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class WriteError(RigError):
    """A batch of points was not written to InfluxDB.

    ``status`` is the server's answer (``None``: no answer, the server could not be
    reached); ``retryable``: worth trying again later (by default when there was no
    answer, or a 5xx or 429 one).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.retryable = status is None or status in RETRYABLE_STATUSES
        if retryable is not None:
            self.retryable = retryable
        self.retry_after_s = retry_after_s


class Backend(Protocol):
    """Posts one gzip-compressed batch of line protocol."""

    def send(self, gzipped: bytes) -> None: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


def _env(name: str, what: str) -> str:
    if not name:
        raise InfluxConfigError(f"{what}: give the name of an environment variable")
    value = os.environ.get(name)
    if value is None or value == "":
        raise InfluxConfigError(f"{what}: environment variable {name} is not set")
    return value


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class V2Backend:
    """InfluxDB 2.x/3.x ``/api/v2/write`` through influxdb-client's write service."""

    def __init__(self, config: InfluxConfig):
        from influxdb_client import InfluxDBClient
        from influxdb_client.service.write_service import WriteService

        if not config.url:
            raise InfluxConfigError("--sink influx needs --influx-url")
        if not config.org or not config.bucket:
            raise InfluxConfigError("--sink influx needs --influx-org and --influx-bucket")
        token = _env(config.token_env, "--influx-token-env")
        self.config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=token,
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            retries=False,
        )
        self._service = WriteService(self._client.api_client)

    def send(self, gzipped: bytes) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._service.post_write(
                org=self.config.org,
                bucket=self.config.bucket,
                body=gzipped,
                precision="ns",
                content_encoding="gzip",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as exc:
            message = f"InfluxDB answered {exc.status}: {(exc.body or exc.reason or '')!s:.300}"
            raise WriteError(
                message, status=exc.status, retry_after_s=_retry_after(exc.headers)
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise WriteError(f"cannot reach InfluxDB at {self.config.url}: {exc}") from exc

    def check(self) -> None:
        try:
            self.send(gzip.compress(b"", 1))
        except WriteError as exc:
            status = exc.status
            where = f"bucket {self.config.bucket!r} of org {self.config.org!r}"
            if status == 401:
                raise InfluxConfigError(
                    f"InfluxDB at {self.config.url} rejected the token in "
                    f"{self.config.token_env} (401 unauthorized)"
                ) from None
            if status in (403, 404):
                raise InfluxConfigError(
                    f"InfluxDB at {self.config.url}: cannot write to {where} ({status}): {exc}"
                ) from None
            raise InfluxConfigError(f"InfluxDB sink check failed: {exc}") from None

    def close(self) -> None:
        self._client.close()


class V1Backend:
    """InfluxDB 1.x ``/write?db=...`` (also served by 2.x and 3.x for compatibility)."""

    def __init__(self, config: InfluxConfig):
        if not config.url:
            raise InfluxConfigError("--sink influx-v1 needs --influx-url")
        if not config.database:
            raise InfluxConfigError("--sink influx-v1 needs --influx-database")
        self.config = config
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        if config.user_env or config.password_env:
            user = _env(config.user_env, "--influx-user-env")
            password = _env(config.password_env, "--influx-password-env")
            headers.update(urllib3.make_headers(basic_auth=f"{user}:{password}"))
        self._headers = headers
        query = {"db": config.database, "precision": "ns"}
        if config.retention_policy:
            query["rp"] = config.retention_policy
        self._url = config.url.rstrip("/") + "/write?" + urllib.parse.urlencode(query)
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=config.timeout_s), retries=False
        )

    def send(self, gzipped: bytes) -> None:
        try:
            response = self._pool.request("POST", self._url, body=gzipped, headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise WriteError(f"cannot reach InfluxDB at {self.config.url}: {exc}") from exc
        if response.status >= 300:
            text = response.data.decode("utf-8", "replace")[:300]
            raise WriteError(
                f"InfluxDB answered {response.status}: {text}",
                status=response.status,
                retry_after_s=_retry_after(response.headers),
            )

    def check(self) -> None:
        try:
            self.send(gzip.compress(b"", 1))
        except WriteError as exc:
            status = exc.status
            if status == 404:
                raise InfluxConfigError(
                    f"InfluxDB at {self.config.url}: database {self.config.database!r} "
                    f"not found ({exc})"
                ) from None
            if status in (401, 403):
                raise InfluxConfigError(
                    f"InfluxDB at {self.config.url} refused the credentials ({status})"
                ) from None
            raise InfluxConfigError(f"InfluxDB sink check failed: {exc}") from None

    def close(self) -> None:
        self._pool.clear()


def open_backend(config: InfluxConfig) -> Backend:
    """The backend for ``config``, checked: raises :class:`InfluxConfigError` naming the problem."""
    backend: Backend = V2Backend(config) if config.kind == "influx" else V1Backend(config)
    backend.check()
    return backend


class InfluxSink:
    """Accepts records from any greenlet; one writer greenlet posts them in batches.

    ``buffer_points`` bounds what waits in memory (the batch being sent is held besides);
    a record arriving when it is full is counted in :attr:`points_dropped`.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        batch_size: int = 5_000,
        flush_interval_s: float = 1.0,
        buffer_points: int = 200_000,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 15.0,
    ):
        if batch_size < 1 or buffer_points < 1 or flush_interval_s <= 0:
            raise InfluxConfigError("influx batch size, buffer and flush interval must be positive")
        self.backend = backend
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.buffer_points = buffer_points
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.points_written = 0
        self.points_dropped = 0
        self.write_errors = 0
        self.last_error = ""
        self._encoder = LineEncoder()
        self._queue: collections.deque[str] = collections.deque()
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._closing = False
        self._give_up_at: float | None = None
        self._writer: gevent.Greenlet | None = None
        self._sending = 0
        """Points of the batch being sent (neither written nor dropped yet)."""

    @classmethod
    def from_config(cls, config: InfluxConfig) -> InfluxSink:
        """A checked backend and a sink with the configured batching."""
        return cls(
            open_backend(config),
            batch_size=config.batch_size,
            flush_interval_s=config.flush_interval_s,
            buffer_points=config.buffer_points,
        )

    def __call__(self, record: Record) -> None:
        """Queue one record (never blocks; counts it dropped when the buffer is full)."""
        if len(self._queue) >= self.buffer_points or self._closing:
            self.points_dropped += 1
            return
        self._queue.append(self._encoder.encode(record))
        self._idle.clear()
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def write_run(self, run_id: str, meta: dict[str, Any]) -> None:
        """Queue the run's ``run`` point (meta.json as JSON text), once the run is over."""
        text = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode()
        self._queue.append(self._encoder.encode_run(run_id, text, time.time()))
        self._idle.clear()
        self._wake.set()

    def counts(self) -> tuple[int, int]:
        """Points written and dropped so far (for the ``rig`` measurement)."""
        return self.points_written, self.points_dropped

    @property
    def queued(self) -> int:
        """Points waiting to be sent."""
        return len(self._queue)

    def start(self) -> None:
        """Start the writer greenlet."""
        if self._writer is None:
            self._writer = gevent.spawn(self._run)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Send everything queued now; ``True`` when the queue emptied within ``timeout_s``."""
        self._wake.set()
        return self._idle.wait(max(0.0, timeout_s))

    def finish(self, timeout_s: float) -> bool:
        """The final attempt: send what is queued, taking at most ``timeout_s`` in all.

        A failing batch is retried only until then, and at that moment whatever is still
        queued or being sent is counted dropped (an unreachable or hung InfluxDB cannot
        hold the run longer): afterwards :meth:`counts` are final for what was recorded so
        far, and the sink is still open for more points (the run's ``run`` point).
        ``True`` when nothing had to be given up at the deadline.
        """
        self._give_up_at = time.monotonic() + max(0.0, timeout_s)
        try:
            drained = self.flush(timeout_s)
            if not drained:
                self._abandon()
            return drained
        finally:
            self._give_up_at = None

    def close(self, timeout_s: float = 30.0) -> None:
        """Final flush, then stop. What could not be sent by ``timeout_s`` counts as dropped."""
        self.finish(timeout_s)
        self._closing = True
        if self._writer is not None:
            self._writer.kill()
            self._writer = None
        self.backend.close()

    def _abandon(self) -> None:
        """Stop the writer where it is (a send in flight is not waited for) and count the
        batch it held and everything queued as dropped; a new writer takes later points."""
        if self._writer is not None:
            self._writer.kill()
            self._writer = None
        lost = self._sending + len(self._queue)
        if lost:
            log.error("InfluxDB: %d points not sent by the final deadline, dropped", lost)
        self.points_dropped += lost
        self._sending = 0
        self._queue.clear()
        self._idle.set()
        if not self._closing:
            self.start()

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while self._queue and not self._closing:
                count = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._sending = len(batch)
                self._send(batch)
                self._sending = 0
            if not self._queue:
                self._idle.set()

    def _send(self, batch: list[str]) -> None:
        body = ("\n".join(batch) + "\n").encode()
        # zlib releases the GIL: compressing in the hub's thread pool keeps a large batch
        # from stalling every session's greenlet (scheduling lag).
        gzipped = gevent.get_hub().threadpool.apply(gzip.compress, (body, 1))
        attempt = 0
        while True:
            try:
                self.backend.send(gzipped)
            except WriteError as exc:
                self.write_errors += 1
                self.last_error = str(exc)
                give_up = self._give_up_at is not None and time.monotonic() >= self._give_up_at
                if not exc.retryable or give_up:
                    log.error("InfluxDB write of %d points failed, dropped: %s", len(batch), exc)
                    self.points_dropped += len(batch)
                    return
                delay = min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)
                delay = exc.retry_after_s or delay * random.uniform(0.5, 1.0)
                if attempt == 0:
                    log.warning("InfluxDB write failed, retrying: %s", exc)
                attempt += 1
                if self._give_up_at is not None:
                    delay = max(0.0, min(delay, self._give_up_at - time.monotonic()))
                gevent.sleep(delay)
                continue
            self.points_written += len(batch)
            return
