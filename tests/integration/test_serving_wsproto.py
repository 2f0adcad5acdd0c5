"""The servers' WebSocket protocol (rig.serving.wsproto) on a real uvicorn and a real client:
messages sent in one event-loop step leave in one socket write, in order, and what uvicorn
writes itself (the close) comes after them; frames it builds itself are what a client
reads, at every header size; several messages go in one ``rig.websocket.send_many``; an
idle connection keeps no copy of the message it last received."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rig.serving.deadlines import Deadlines
from rig.serving.wsproto import SEND_MANY, ServerWSProtocol

WRITES: list[bytes] = []
"""Every socket write of the server's WebSocket connections (this module's server)."""
PROTOCOLS: list[ServerWSProtocol] = []
"""Every connection's protocol (this module's server)."""


class CountingProtocol(ServerWSProtocol):
    """The protocol under test, with its transport's writes recorded."""

    def connection_made(self, transport: Any) -> None:
        PROTOCOLS.append(self)
        super().connection_made(_CountedTransport(transport))


class _CountedTransport:
    """A transport that records each write and forwards everything to the real one."""

    def __init__(self, transport: Any):
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, then for each message ``N``: sends ``N`` messages in one step (no await
    that yields between them), or with a real pause between each when ``N`` starts with
    ``p``; ``close`` closes with 1000."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message["text"]
        if text.startswith("sizes "):  # one message of each size (bytes), in one step
            texts = [_sized(index, int(size)) for index, size in enumerate(text.split()[1:])]
            for payload in texts:
                await send({"type": "websocket.send", "text": payload.decode()})
            continue
        if text.startswith("many "):  # the same, in one send_many (or "no extension")
            texts = [_sized(index, int(size)) for index, size in enumerate(text.split()[1:])]
            if SEND_MANY not in scope["extensions"]:
                await send({"type": "websocket.send", "text": "no extension"})
                continue
            await send({"type": SEND_MANY, "texts": texts})
            continue
        if text.startswith("hold "):  # answered; the app keeps nothing of it
            del message, text
            await send({"type": "websocket.send", "text": "held"})
            continue
        if text == "close":
            for index in range(3):
                await send({"type": "websocket.send", "text": f"last-{index}"})
            await send({"type": "websocket.close", "code": 1000, "reason": "done"})
            return
        paced = text.startswith("p")
        for index in range(int(text.lstrip("p"))):
            await send({"type": "websocket.send", "text": f"m-{index}"})
            if paced:
                await asyncio.sleep(0.001)


def _sized(index: int, size: int) -> bytes:
    """A message of ``size`` UTF-8 bytes (at least 5) naming ``index``, with a two-byte
    character in it."""
    head = f"{index:02d}-é".encode()
    return head + b"x" * (size - len(head))


SIZES = [5, 125, 126, 127, 1023, 1024, 65535, 65536, 70000]
"""Payload lengths around the frame header's three forms (7 bits, 16 bits, 64 bits) and the
end of its table of headers (1,024)."""


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, ws=CountingProtocol, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


async def _exchange(url: str, request: str, count: int) -> tuple[list[str], int]:
    async with connect(url) as ws:
        before = len(WRITES)
        await ws.send(request)
        received = [str(await ws.recv()) for _ in range(count)]
        return received, len(WRITES) - before


def test_messages_of_one_step_leave_in_one_write_in_order(server_url: str) -> None:
    received, writes = asyncio.run(_exchange(server_url, "200", 200))
    assert received == [f"m-{index}" for index in range(200)]
    assert writes == 1


def test_messages_of_separate_steps_are_written_as_they_come(server_url: str) -> None:
    received, writes = asyncio.run(_exchange(server_url, "p5", 5))
    assert received == [f"m-{index}" for index in range(5)]
    assert writes == 5


def test_a_close_goes_after_the_messages_queued_before_it(server_url: str) -> None:
    async def run() -> tuple[list[str], int | None]:
        async with connect(server_url) as ws:
            await ws.send("close")
            received = []
            try:
                while True:
                    received.append(str(await ws.recv()))
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            return received, code

    received, code = asyncio.run(run())
    assert received == ["last-0", "last-1", "last-2"]
    assert code == 1000


async def _sized_exchange(
    url: str, request: str, compression: str | None
) -> tuple[list[bytes], int]:
    async with connect(url, compression=compression, max_size=None) as ws:
        before = len(WRITES)
        await ws.send(request)
        received = [await ws.recv(decode=False) for _ in SIZES]
        return received, len(WRITES) - before


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_text_frames_of_every_header_size_arrive_whole(
    server_url: str, compression: str | None
) -> None:
    """Without an extension the protocol frames text itself; with permessage-deflate
    websockets does: the client reads the same messages either way."""
    request = "sizes " + " ".join(map(str, SIZES))
    received, _ = asyncio.run(_sized_exchange(server_url, request, compression))
    assert received == [_sized(index, size) for index, size in enumerate(SIZES)]


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_send_many_sends_each_text_as_one_message_in_order(
    server_url: str, compression: str | None
) -> None:
    request = "many " + " ".join(map(str, SIZES))
    received, writes = asyncio.run(_sized_exchange(server_url, request, compression))
    assert received == [_sized(index, size) for index, size in enumerate(SIZES)]
    assert writes == 1


_SHARED = frozenset({"loop", "app", "config", "connections", "tasks", "app_state", "logger"})
"""The protocol's attributes shared by the whole server (not the connection's own state)."""
_NOT_STATE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    asyncio.AbstractEventLoop,
    asyncio.Task,
    Deadlines,
)
"""Code, the loop, tasks and the server's shared timers: reachable from anything, not a
connection's state."""


def _largest_held(protocol: ServerWSProtocol) -> int:
    """The longest ``bytes``, ``bytearray`` or ``str`` reachable from the connection's own
    state (websockets' connection and its parser's suspended generators, uvicorn's queue
    and buffers)."""
    seen: set[int] = set()
    stack: list[Any] = [v for k, v in vars(protocol).items() if k not in _SHARED]
    largest = 0
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, _NOT_STATE):
            continue
        seen.add(id(value))
        if isinstance(value, bytes | bytearray | str):
            largest = max(largest, len(value))
        elif isinstance(value, types.GeneratorType):  # its locals, not its globals
            stack.extend(value.gi_frame.f_locals.values() if value.gi_frame else ())
            stack.append(value.gi_yieldfrom)  # the generator it delegates to
        else:
            stack.extend(gc.get_referents(value))
    return largest


def test_an_idle_connection_keeps_no_copy_of_its_last_message(server_url: str) -> None:
    """websockets' parser holds its last frame until the next arrives, uvicorn its queue's
    message: the protocol lets the payload go once handed to the app."""
    size = 200_000

    async def run() -> int:
        async with connect(server_url, max_size=None) as ws:
            await ws.send("hold " + "y" * size)
            assert await ws.recv() == "held"
            protocol = next(p for p in reversed(PROTOCOLS) if not p.disconnected)
            return _largest_held(protocol)

    assert asyncio.run(run()) < 1_000


def test_idle_connections_keepalive_pings_share_one_loop_timer() -> None:
    """30 idle WebSockets with uvicorn's keepalive on: their pings wait on the server's one
    set of deadlines, so the loop (asyncio's, whose timers can be counted) holds one timer
    for them, not one each; and the pings do go out and come back (every connection's
    client answers two rounds of them, and stays open)."""
    protocols: list[ServerWSProtocol] = []
    pongs: dict[int, int] = {}
    answered = threading.Event()

    class Recorded(ServerWSProtocol):
        def connection_made(self, transport: Any) -> None:
            protocols.append(self)
            super().connection_made(transport)

        def handle_pong(self, event: Any) -> None:
            super().handle_pong(event)
            pongs[id(self)] = pongs.get(id(self), 0) + 1
            if len(pongs) == 30 and min(pongs.values()) >= 2:
                answered.set()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    config = uvicorn.Config(
        app, ws=Recorded, loop="asyncio", ws_ping_interval=0.2, ws_ping_timeout=5.0,
        log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def timers() -> tuple[int, int, int]:
        """On the server's loop: its live timers, those of the deadlines, their pending."""
        timed: Any = protocols[0].loop
        loop, deadlines = timed._loop, timed._deadlines

        async def count() -> tuple[int, int, int]:
            live = [h for h in loop._scheduled if not h.cancelled()]
            own = sum(1 for h in live if h._callback == deadlines._fire)
            return len(live), own, deadlines.pending

        return asyncio.run_coroutine_threadsafe(count(), loop).result(timeout=10)

    async def run() -> tuple[tuple[int, int, int], bool]:
        connections = [await connect(url, ping_interval=None) for _ in range(30)]
        for ws in connections:  # each one open and answered
            await ws.send("1")
            assert await ws.recv() == "m-0"
        counted = timers()
        # The clients answer pings as they read: keep them reading until the server saw
        # two pongs from each.
        readers = [asyncio.ensure_future(ws.recv()) for ws in connections]
        seen = await asyncio.to_thread(answered.wait, 20)
        for reader in readers:
            reader.cancel()
        for ws in connections:
            await ws.close()
        return counted, seen

    try:
        (live, own, pending), seen = asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert pending >= 30  # a ping (or its pong's deadline) for each connection
    assert own == 1
    assert live < 10  # not one a connection
    assert seen, pongs
