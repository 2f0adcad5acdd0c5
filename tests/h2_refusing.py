"""An HTTP/2 server (cleartext, prior knowledge; the ``h2`` library's protocol) that turns
away the first requests it gets the way a busy or restarting provider does, and hands
every other one to an HTTP/1.1 server (the mock) with httpx, streaming its answer back:

* ``--refuse N``: the first N requests' streams are reset with ``REFUSED_STREAM`` (RFC 9113
  8.7: not processed) as soon as their headers arrive;
* ``--go-away N``: the first N connections get a GOAWAY naming no stream as processed (last
  stream id 0) on their first request's headers.

It prints ``refused <path>``, ``went away <path>`` and ``served <method> <path> <status>``,
one line each, flushed.

    python -m tests.h2_refusing --port P --upstream http://127.0.0.1:Q [--refuse N] [--go-away N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import httpx

READY = "listening"
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})


class Quota:
    """How many more requests are refused, and connections sent away."""

    def __init__(self, refuse: int, go_away: int):
        self.refuse = refuse
        self.go_away = go_away


def say(line: str) -> None:
    print(line, flush=True)


class Front(asyncio.Protocol):
    """One client connection."""

    def __init__(self, quota: Quota, client: httpx.AsyncClient, upstream: str):
        self.quota = quota
        self.client = client
        self.upstream = upstream
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[dict[bytes, bytes], bytearray]] = {}
        self.window = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.tasks:
            task.cancel()
        self.window.set()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        if self.conn.state_machine.state is h2.connection.ConnectionState.CLOSED:
            return  # gone away: what follows is read and dropped
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.request(event)
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.requests:
                    self.requests[event.stream_id][1].extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.requests:
                task = asyncio.ensure_future(self.forward(event.stream_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, h2.events.WindowUpdated):
                self.window.set()
            elif isinstance(event, h2.events.StreamReset):
                self.requests.pop(event.stream_id, None)
        self.flush()

    def request(self, event: h2.events.RequestReceived) -> None:
        headers = dict(event.headers or ())
        path = headers.get(b":path", b"").decode()
        if self.quota.go_away > 0:
            self.quota.go_away -= 1
            # The GOAWAY, and the connection left for the client to close once it read it
            # (as servers do: closing with its request's body unread would reset the
            # connection, and the client could see the reset before the GOAWAY).
            self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
            self.flush()
            say(f"went away {path}")
            return
        if self.quota.refuse > 0:
            self.quota.refuse -= 1
            self.conn.reset_stream(event.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
            say(f"refused {path}")
            return
        self.requests[event.stream_id] = (headers, bytearray())

    async def forward(self, stream_id: int) -> None:
        headers, body = self.requests.pop(stream_id)
        method, path = headers[b":method"].decode(), headers[b":path"].decode()
        passed = {k.decode(): v.decode() for k, v in headers.items() if not k.startswith(b":")}
        request = self.client.build_request(
            method, self.upstream + path, headers=passed, content=bytes(body)
        )
        response = await self.client.send(request, stream=True)
        try:
            answer = [(b":status", str(response.status_code).encode())]
            answer += [
                (k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP
            ]
            self.conn.send_headers(stream_id, answer)
            self.flush()
            async for chunk in response.aiter_raw():
                await self.send(stream_id, chunk)
            self.conn.end_stream(stream_id)
            self.flush()
        finally:
            await response.aclose()
        say(f"served {method} {path} {response.status_code}")

    async def send(self, stream_id: int, data: bytes) -> None:
        """``data`` on the stream, as its flow control allows."""
        while data:
            room = min(self.conn.local_flow_control_window(stream_id), len(data))
            if room <= 0:
                self.window.clear()
                await self.window.wait()
                if self.transport is None or self.transport.is_closing():
                    return
                continue
            size = min(room, self.conn.max_outbound_frame_size)
            self.conn.send_data(stream_id, data[:size])
            data = data[size:]
            self.flush()


async def serve(port: int, upstream: str, quota: Quota) -> None:
    async with httpx.AsyncClient(timeout=None, trust_env=False) as client:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Front(quota, client, upstream), "127.0.0.1", port)
        say(f"{READY} on {port}")
        with contextlib.closing(server):
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the HTTP/1.1 server's origin")
    parser.add_argument("--refuse", type=int, default=0)
    parser.add_argument("--go-away", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.upstream.rstrip("/"), Quota(args.refuse, args.go_away)))


if __name__ == "__main__":
    main()
