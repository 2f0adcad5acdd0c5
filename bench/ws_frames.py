"""WebSocket frame readers: what the ``ws`` transport's receive path costs per frame with
websockets' sans-I/O parser (what :class:`rig.loadgen.ws.WSConnection` uses) beside
C-accelerated readers, and whether each accepts and rejects what websockets does.

Streams are recorded from the real mock: ``rig mock --preset instant`` (``--preset fast``:
paced like a model, so reads of one to three frames) on a free port, ``--delta-tokens`` 1
and 8, one :class:`rig.loadgen.session.AgentSession` per built-in scenario over the
``ws`` transport running ``--tasks`` tasks (tools instant) and closing, while every read
of its socket is kept, in the sizes the socket gave them (the handshake's bytes are cut
off). Each reader then parses the recorded reads, in the same order, from a fresh parser
per connection:

* ``websockets frames``: ``ClientProtocol.receive_data`` + ``events_received`` (the
  reference the issue quotes);
* ``websockets messages``: the same plus ``WSConnection._collect``, the assembly into
  whole messages :meth:`WSConnection.receive` does: the whole receive path;
* ``aiohttp``: ``aiohttp._websocket.reader.WebSocketReader`` (the compiled ``reader_c``
  when the wheel ships it; the table says which), ``feed_data`` then the queue drained,
  whole messages out;
* ``aiohttp (python)``: the same reader's pure-Python twin (``reader_py``), for scale;
* ``header walk (python)``: every frame header read in Python, payloads skipped: what
  checking from outside what aiohttp's reader does not report (the mask bit, the
  fragmentation state) would add; ``aiohttp + header walk`` is the two together;
* ``picows``: picows' Cython parser (``WSProtocol``) fed through its buffer protocol with
  a stand-in transport, frames to its listener, payloads as bytes; only when ``picows``
  is importable (it is not a dependency: ``pip install picows`` to include it).

Every reader must yield the very messages websockets yields, or the run stops. Rounds
alternate the readers; per-frame CPU is ``time.process_time`` over a round divided by
the frames parsed, and each candidate's ratio to websockets is taken within a round, so
the machine's noise hits both sides alike: the table prints the median and the range.

The conformance table then feeds each reader small hand-made streams (fragments, control
frames between fragments, every payload length encoding, masked server frames, reserved
bits and opcodes, invalid UTF-8, close codes, the size limit) and prints what each
accepted (the messages, the close code) or that it rejected the stream, beside
websockets. A candidate qualifies only if it at least halves the per-frame cost and
agrees on every case.

Usage (from the repository root)::

    python bench/ws_frames.py                       # about a minute
    python bench/ws_frames.py --preset fast --no-conformance   # about two minutes
    python bench/ws_frames.py --delta-tokens 1 --rounds 9 --tasks 2

Figures and the decision: docs/performance.md, "WebSocket frame reader".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing the package

from _common import (  # noqa: E402 - the benchmarks' shared helpers, beside this file
    Column,
    int_list,
    machine_cpu_seconds,
    noisy_warning,
    positive_int,
    table,
)
from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Frame  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from rig.loadgen.session import AgentSession, SessionConfig  # noqa: E402
from rig.loadgen.target import Target  # noqa: E402
from rig.loadgen.wire import RECV_SIZE, WireSocket  # noqa: E402
from rig.loadgen.ws import WSConnection, WSProtocolError  # noqa: E402
from rig.loadgen.wsframes import FrameSplitter  # noqa: E402
from rig.metrics.records import RecordTags  # noqa: E402
from rig.run.ports import free_port  # noqa: E402
from rig.workload.corpus import Corpus  # noqa: E402
from rig.workload.scenarios import builtin_scenarios  # noqa: E402

HOST = "127.0.0.1"
MOCK_READY = "rig mock listening on"
"""What ``rig mock`` prints on stderr once its socket listens."""
MAX_SIZE = 64 * 1024 * 1024
"""The ``max_size`` :class:`WSConnection` gives websockets (its default)."""
CASE_MAX_SIZE = 1024
"""The size limit the conformance cases give every reader."""
DATA_TYPES = frozenset({1, 2})
"""aiohttp's message types that carry a message (text, binary)."""
HALF = 0.5
"""A candidate must cost at most this fraction of websockets' per-frame CPU."""


class BenchError(RuntimeError):
    """The benchmark could not run or a reader disagreed; the message says which."""


# ---------------------------------------------------------------------------------------
# Recording streams from the real mock
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def mock_server(preset: str, delta_tokens: int, seed: int) -> Iterator[str]:
    """``rig mock --preset PRESET`` on a free port; yields its ``http://…/v1`` URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "rig", "mock", "--port", str(port), "--preset", preset,
        "--delta-tokens", str(delta_tokens), "--seed", str(seed), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    ready = threading.Event()
    output: deque[str] = deque(maxlen=50)

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line)
            if MOCK_READY in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(60) or process.poll() is not None:
            raise BenchError("rig mock did not start:\n" + "".join(output)[-3000:])
        yield f"http://{HOST}:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def recording_reads() -> Iterator[dict[int, list[bytes]]]:
    """Keep every read of every :class:`WireSocket` (by socket), as the socket gave it."""
    reads: dict[int, list[bytes]] = {}
    original, original_ready = WireSocket.recv, WireSocket.recv_ready

    def recv(self: WireSocket, size: int = RECV_SIZE) -> bytes:
        data = original(self, size)
        reads.setdefault(id(self), []).append(data)
        return data

    def recv_ready(self: WireSocket, size: int = RECV_SIZE) -> bytes | None:
        data = original_ready(self, size)  # the read loop's reads
        if data is not None:
            reads.setdefault(id(self), []).append(data)
        return data

    WireSocket.recv = recv  # type: ignore[method-assign]
    WireSocket.recv_ready = recv_ready  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        WireSocket.recv = original  # type: ignore[method-assign]
        WireSocket.recv_ready = original_ready  # type: ignore[method-assign]


def frame_reads(reads: list[bytes]) -> list[bytes]:
    """One connection's reads past the handshake's answer (the first read trimmed)."""
    head = b""
    for index, data in enumerate(reads):
        head += data
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            first = head[end + 4 :]
            rest = [data for data in reads[index + 1 :] if data]
            return ([first] if first else []) + rest
    raise BenchError("a recorded connection has no complete handshake answer")


def record_streams(preset: str, delta_tokens: int, tasks: int, seed: int) -> list[list[bytes]]:
    """Reads of each ``ws`` connection of one session per built-in scenario, each running
    ``tasks`` tasks (tools instant) and then closing."""
    with mock_server(preset, delta_tokens, seed) as base_url, recording_reads() as reads:
        target = Target.from_url(base_url)
        corpus = Corpus.load()
        scenarios = builtin_scenarios()
        for index, name in enumerate(sorted(scenarios)):
            config = SessionConfig(
                transport="ws",
                scenario=scenarios[name],
                target=target,
                tags=RecordTags(run="bench", scenario=name, transport="ws", target="mock"),
                seed=seed,
                time_scale=0.0,
            )
            session = AgentSession(config, lambda record: None, session_index=index, corpus=corpus)
            for _ in range(tasks):
                session.run_task()
            session.close()
    return [frame_reads(chunks) for chunks in reads.values()]


# ---------------------------------------------------------------------------------------
# The readers: each turns one connection's reads into whole messages
# ---------------------------------------------------------------------------------------

ReadStream = Callable[[list[bytes]], list[bytes]]
"""A reader: one connection's reads in, the payloads of its whole messages out."""


def _open_client(max_size: int | None) -> ClientProtocol:
    """websockets' client protocol past the handshake (as :class:`WSConnection` has it)."""
    return ClientProtocol(parse_uri("ws://bench.invalid/"), state=State.OPEN, max_size=max_size)


def websockets_frames(reads: list[bytes]) -> int:
    """websockets' parser alone: frames out, not assembled (the issue's reference)."""
    protocol = _open_client(MAX_SIZE)
    frames = 0
    for data in reads:
        protocol.receive_data(data)
        frames += len(protocol.events_received())
    return frames


def websockets_messages(reads: list[bytes]) -> list[bytes]:
    """The receive path of :class:`WSConnection`: parse, then assemble whole messages."""
    protocol = _open_client(MAX_SIZE)
    connection = WSConnection(cast(Any, None), protocol)
    for data in reads:
        protocol.receive_data(data)
        connection._collect(cast(list[Frame], protocol.events_received()))
    return connection._pending


def _split_connection(max_size: int | None) -> WSConnection:
    protocol = _open_client(max_size)
    connection = WSConnection(cast(Any, None), protocol)
    connection._frames = FrameSplitter(protocol)
    return connection


def rig_splitter(reads: list[bytes]) -> list[bytes]:
    """The receive path of :class:`WSConnection` as the transport runs it: the frame
    splitter (:mod:`rig.loadgen.wsframes`) takes the common frame, websockets the rest."""
    connection = _split_connection(MAX_SIZE)
    for data in reads:
        connection._take(data)
        connection._collected()
    return connection._pending


class _NeverPaused:
    """What aiohttp's queue asks of its transport protocol: reading is never paused."""

    _reading_paused = False

    def pause_reading(self) -> None:
        raise BenchError("aiohttp's queue paused reading: raise its limit")

    def resume_reading(self) -> None:
        pass


def aiohttp_reader(compiled: bool) -> tuple[ReadStream, str]:
    """aiohttp's WebSocketReader (``reader_c`` or ``reader_py``) and its module's name."""
    if compiled:
        from aiohttp._websocket import reader as module
    else:
        from aiohttp._websocket import reader_py as module  # type: ignore[no-redef]
    reader_class, queue_class = module.WebSocketReader, module.WebSocketDataQueue

    def read(reads: list[bytes]) -> list[bytes]:
        queue = queue_class(cast(Any, _NeverPaused()), 2**30, loop=cast(Any, None))
        reader = reader_class(queue, MAX_SIZE + 1, compress=False, decode_text=False)
        buffer = queue._buffer
        messages: list[bytes] = []
        for data in reads:
            reader.feed_data(data)
            messages += [message[1] for message, _ in buffer if message[0] in DATA_TYPES]
            buffer.clear()
        return messages

    return read, reader_class.__module__


OPCODES = frozenset({0, 1, 2, 8, 9, 10})
"""The opcodes RFC 6455 defines."""


def header_walk(reads: list[bytes]) -> int:
    """What closing aiohttp's gaps from outside would cost: every frame header read in
    Python (reserved bits, opcode, mask bit, length encodings, fragmentation state),
    payloads skipped, no message made, nothing past a close frame. Returns the frames
    seen."""
    frames = 0
    skip = 0
    carry = b""
    fragmented = False
    for data in reads:
        if carry:
            data, carry = carry + data, b""
        n = len(data)
        i = skip
        while i < n:
            if n - i < 2:
                carry = data[i:]
                i = n
                break
            first, second = data[i], data[i + 1]
            opcode = first & 0x0F
            if first & 0x70 or second & 0x80 or opcode not in OPCODES:
                raise BenchError("the header walk rejected a recorded frame")
            if opcode < 8:
                if (opcode == 0) != fragmented:
                    raise BenchError("the header walk rejected a recorded frame")
                fragmented = not first & 0x80
            length = second & 0x7F
            if length < 126:
                i += 2 + length
            elif length == 126:
                if n - i < 4:
                    carry = data[i:]
                    i = n
                    break
                i += 4 + (data[i + 2] << 8 | data[i + 3])
            else:
                if n - i < 10:
                    carry = data[i:]
                    i = n
                    break
                i += 10 + int.from_bytes(data[i + 2 : i + 10])
            frames += 1
            if opcode == 8:
                return frames  # websockets discards what follows a close frame
        skip = i - n
    return frames


def aiohttp_with_walk(read: ReadStream) -> ReadStream:
    """aiohttp's reader preceded by :func:`header_walk` over the same reads."""

    def both(reads: list[bytes]) -> list[bytes]:
        header_walk(reads)
        return read(reads)

    return both


class PicowsHarness:
    """picows' client parser driven without a network: a stand-in transport takes its
    upgrade request, a valid answer is fed back, then frames go in through its buffer
    protocol (``get_buffer`` + ``buffer_updated``) and come out at a listener."""

    def __init__(self, max_size: int | None):
        import picows
        from picows import picows as core

        self.picows = picows
        self.frames: list[tuple[int, bool, bytes]] = []
        self.written: list[bytes] = []
        self.closed = False
        harness = self

        class Listener(picows.WSListener):
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                harness.frames.append(
                    (frame.msg_type.value, frame.fin, frame.get_payload_as_bytes())
                )

        self._pair = _tcp_pair()
        self._loop = asyncio.new_event_loop()
        stand_in = _StandInTransport(self._pair[0], self.written)

        async def make() -> Any:
            return core.WSProtocol(
                "bench.invalid:80", "/", True, Listener, _quiet_logger(), True, None,
                False, 10, 10, picows.WSAutoPingStrategy.PING_WHEN_IDLE, False,
                max_size if max_size is not None else 2**62, None, 64 * 1024,
            )  # fmt: skip

        self.protocol = self._loop.run_until_complete(make())
        self.protocol.connection_made(stand_in)
        request = b"".join(self.written)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        self.written.clear()
        self.feed(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def feed(self, data: bytes) -> None:
        """Hand ``data`` to the parser as one read."""
        view = memoryview(data)
        while view:
            buffer = self.protocol.get_buffer(-1)
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            self.protocol.buffer_updated(n)
            view = view[n:]

    @property
    def rejected(self) -> bool:
        """Whether the parser failed the connection (it sends a close frame then)."""
        return bool(self.protocol.transport.is_close_frame_sent)

    def shut(self) -> None:
        """Drop the loop and the socket pair."""
        self._loop.close()
        for end in self._pair:
            end.close()


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected loopback TCP sockets (picows sets TCP options on its socket)."""
    with socket.create_server((HOST, 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    return client, accepted


class _StandInTransport:
    """The least of an asyncio transport picows' protocol touches: a real socket for its
    options, and writes kept in a list."""

    def __init__(self, sock: socket.socket, written: list[bytes]):
        self._sock = sock
        self._written = written

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self._sock, "peername": ("bench", 0), "sockname": ("bench", 0)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self._written.append(bytes(data))

    def writelines(self, lines: Sequence[bytes]) -> None:
        for data in lines:
            self.write(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _quiet_logger() -> Any:
    import logging

    logger = logging.Logger("bench.picows", logging.CRITICAL)
    logger.disabled = True
    return logger


def picows_reader() -> ReadStream | None:
    """picows' parser as a reader, whole messages assembled from its frames; ``None``
    when picows is not installed."""
    try:
        import picows  # noqa: F401
    except ImportError:
        return None

    def read(reads: list[bytes]) -> list[bytes]:
        harness = PicowsHarness(MAX_SIZE)
        frames = harness.frames
        messages: list[bytes] = []
        fragments: list[bytes] = []
        try:
            for data in reads:
                harness.feed(data)
                for opcode, fin, payload in frames:
                    if opcode in (1, 2) and fin:
                        messages.append(payload)
                    elif opcode in (1, 2):
                        fragments = [payload]
                    elif opcode == 0:
                        fragments.append(payload)
                        if fin:
                            messages.append(b"".join(fragments))
                frames.clear()
        finally:
            harness.shut()
        return messages

    return read


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


@dataclass
class ReaderTimes:
    """One reader's CPU per frame in each round, and its ratios to websockets' there."""

    name: str
    per_frame_us: list[float] = field(default_factory=list)
    to_frames: list[float] = field(default_factory=list)
    """Its CPU over websockets' parser alone (``websockets frames``) in the same round."""
    to_messages: list[float] = field(default_factory=list)
    """Its CPU over websockets' whole receive path (``websockets messages``)."""


@dataclass(frozen=True)
class StreamSet:
    """The recorded streams of one ``--delta-tokens`` setting."""

    delta_tokens: int
    streams: list[list[bytes]]
    frames: int
    messages: int
    reads: int
    wire_bytes: int


def _cpu(read: Callable[[list[bytes]], object], streams: list[list[bytes]], repeat: int) -> float:
    """CPU seconds of ``repeat`` passes of ``read`` over every stream."""
    start = time.process_time()
    for _ in range(repeat):
        for stream in streams:
            read(stream)
    return time.process_time() - start


def time_readers(
    streams: StreamSet, readers: dict[str, Callable[[list[bytes]], object]], rounds: int
) -> tuple[list[ReaderTimes], list[float]]:
    """Rounds of every reader over all streams; per-frame µs and ratios to websockets'
    two rows (the first two readers)."""
    frames = streams.frames
    # Enough passes that one round is ~0.2 s of websockets' parsing (3 µs a frame).
    repeat = max(1, int(0.2 / (frames * 3e-6)))
    results = {name: ReaderTimes(name) for name in readers}
    other_busy: list[float] = []
    for _ in range(rounds):
        machine_before, own_before = machine_cpu_seconds(), time.process_time()
        wall_before = time.monotonic()
        seconds: dict[str, float] = {}
        for name, read in readers.items():
            seconds[name] = _cpu(read, streams.streams, repeat)
        wall = time.monotonic() - wall_before
        machine = machine_cpu_seconds() - machine_before
        own = time.process_time() - own_before
        other_busy.append(max(0.0, machine - own) / wall if wall > 0 else 0.0)
        parse, receive = list(seconds.values())[:2]
        for name, spent in seconds.items():
            results[name].per_frame_us.append(spent / (repeat * frames) * 1e6)
            results[name].to_frames.append(spent / parse if parse > 0 else float("nan"))
            results[name].to_messages.append(spent / receive if receive > 0 else float("nan"))
    return list(results.values()), other_busy


# ---------------------------------------------------------------------------------------
# Conformance: hand-made streams, each reader's verdict beside websockets'
# ---------------------------------------------------------------------------------------


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """One server frame as bytes; ``length_bytes`` (0, 2 or 8) forces a length encoding
    (a non-minimal one included), ``mask`` masks it (which a server must not do)."""
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    flag = 0x80 if mask is not None else 0
    if length_bytes == 0:
        head += bytes([flag | n])
    elif length_bytes == 2:
        head += bytes([flag | 126]) + struct.pack("!H", n)
    else:
        head += bytes([flag | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """A close frame with ``code`` and ``reason``."""
    return frame(CLOSE, struct.pack("!H", code) + reason)


CASES: list[tuple[str, bytes]] = [
    ("text, 7-bit length", frame(TEXT, b"hello")),
    ("text, 16-bit length", frame(TEXT, b"a" * 300)),
    ("binary, 64-bit length (over the limit)", frame(BINARY, b"b" * 70_000)),
    ("text, 16-bit length for 5 bytes", frame(TEXT, b"hello", length_bytes=2)),
    ("text, 64-bit length for 5 bytes", frame(TEXT, b"hello", length_bytes=8)),
    ("64-bit length with the top bit set", b"\x81\x7f" + struct.pack("!Q", 2**63 + 5) + b"x"),
    ("fragments: text + continuation", frame(TEXT, b"he", fin=False) + frame(CONT, b"llo")),
    ("ping between fragments",
     frame(TEXT, b"he", fin=False) + frame(PING, b"p") + frame(CONT, b"llo")),
    ("pong between fragments",
     frame(TEXT, b"he", fin=False) + frame(PONG, b"") + frame(CONT, b"llo")),
    ("close between fragments", frame(TEXT, b"he", fin=False) + close_frame(1000)),
    ("continuation with nothing to continue", frame(CONT, b"x")),
    ("text while a message is fragmented", frame(TEXT, b"a", fin=False) + frame(TEXT, b"b")),
    ("masked text from the server", frame(TEXT, b"hello", mask=b"\x01\x02\x03\x04")),
    ("masked ping from the server", frame(PING, b"p", mask=b"\x01\x02\x03\x04")),
    ("text with RSV1", frame(TEXT, b"x", rsv=4)),
    ("text with RSV2", frame(TEXT, b"x", rsv=2)),
    ("text with RSV3", frame(TEXT, b"x", rsv=1)),
    ("ping with RSV1", frame(PING, b"p", rsv=4) + frame(TEXT, b"after")),
    ("reserved data opcode 3", frame(3, b"x")),
    ("reserved control opcode 0xB", frame(0xB, b"x")),
    ("fragmented ping", frame(PING, b"p", fin=False)),
    ("ping of 126 bytes", frame(PING, b"p" * 126)),
    ("text, invalid UTF-8", frame(TEXT, b"\xff\xfe")),
    ("text, invalid UTF-8 across fragments",
     frame(TEXT, b"\xe2\x82", fin=False) + frame(CONT, b"\x28")),
    ("close 1000 'bye'", close_frame(1000, b"bye")),
    ("close, empty", frame(CLOSE, b"")),
    ("close, 1-byte payload", frame(CLOSE, b"\x03")),
    ("close 999", close_frame(999)),
    ("close 1004", close_frame(1004)),
    ("close 1005", close_frame(1005)),
    ("close 1006", close_frame(1006)),
    ("close 1015", close_frame(1015)),
    ("close 2999", close_frame(2999)),
    ("close 3000", close_frame(3000)),
    ("close 4999", close_frame(4999)),
    ("close 5000", close_frame(5000)),
    ("close, reason invalid UTF-8", close_frame(1000, b"\xff")),
    ("close then garbage", close_frame(1000) + b"\x8f\x00"),
    ("close then text", close_frame(1000) + frame(TEXT, b"late")),
    (f"text of {CASE_MAX_SIZE} bytes (the limit)", frame(TEXT, b"m" * CASE_MAX_SIZE)),
    (f"text of {CASE_MAX_SIZE + 1} bytes", frame(TEXT, b"m" * (CASE_MAX_SIZE + 1))),
    (f"fragments adding up to {CASE_MAX_SIZE}",
     frame(TEXT, b"m" * 600, fin=False) + frame(CONT, b"m" * (CASE_MAX_SIZE - 600))),
    (f"fragments adding up to {CASE_MAX_SIZE + 1}",
     frame(TEXT, b"m" * 600, fin=False) + frame(CONT, b"m" * (CASE_MAX_SIZE - 599))),
    ("truncated frame", frame(TEXT, b"hello")[:4]),
]  # fmt: skip
"""Hand-made server streams: (what the case is, its bytes)."""


def verdict_websockets(data: bytes) -> str:
    """What websockets' client protocol makes of ``data``: messages and close, or why it
    rejected the stream."""
    protocol = _open_client(CASE_MAX_SIZE)
    connection = WSConnection(cast(Any, None), protocol)
    protocol.receive_data(data)
    connection._collect(cast(list[Frame], protocol.events_received()))
    if protocol.parser_exc is not None:
        return "rejected"
    close = protocol.close_rcvd
    return _describe(connection._pending, close.code if close else None)


def verdict_splitter(data: bytes) -> str:
    """What the rig's receive path (the frame splitter before websockets) makes of it."""
    connection = _split_connection(CASE_MAX_SIZE)
    try:
        connection._take(data)
        connection._collected()
    except WSProtocolError:
        return "rejected"
    close = connection.protocol.close_rcvd
    return _describe(connection._pending, close.code if close else None)


def verdict_aiohttp(data: bytes) -> str:
    """What aiohttp's compiled reader makes of ``data`` (it was given ``max_size + 1``: its
    limit excludes the bound, websockets' includes it). Nothing past a close frame
    counts, as websockets discards it."""
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

    queue = WebSocketDataQueue(cast(Any, _NeverPaused()), 2**30, loop=cast(Any, None))
    reader = WebSocketReader(queue, CASE_MAX_SIZE + 1, compress=False, decode_text=False)
    failed, _ = reader.feed_data(data)
    messages: list[bytes] = []
    for message, _size in queue._buffer:
        kind = int(message[0])
        if kind == 8:  # CLOSE: code, reason
            return _describe(messages, message[1] or 1005)
        if kind in (1, 2):
            messages.append(message[1])
    return "rejected" if failed else _describe(messages, None)


def verdict_picows(data: bytes) -> str:
    """What picows' parser makes of ``data``, the fragments assembled as websockets does."""
    harness = PicowsHarness(CASE_MAX_SIZE)
    try:
        harness.feed(data)
        if harness.rejected:
            return "rejected"
        messages: list[bytes] = []
        fragments: list[bytes] = []
        for opcode, fin, payload in harness.frames:
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return _describe(messages, code)
            if opcode in (1, 2):
                if fin:
                    messages.append(payload)
                else:
                    fragments = [payload]
            elif opcode == 0:
                fragments.append(payload)
                if fin:
                    messages.append(b"".join(fragments))
        return _describe(messages, None)
    finally:
        harness.shut()


def _describe(messages: list[bytes], close: int | None) -> str:
    shown = (
        ", ".join(repr(bytes(m)) if len(m) <= 12 else f"<{len(m)} bytes>" for m in messages)
        or "no message"
    )
    return shown + (f"; close {close}" if close is not None else "")


def _verdict(row: CaseRow, name: str) -> str:
    return row.verdicts[name]


def _agrees(row: CaseRow, name: str) -> str:
    return "yes" if row.verdicts[name] == row.verdicts["websockets"] else "NO"


@dataclass(frozen=True)
class CaseRow:
    """One conformance case: websockets' verdict and each candidate's."""

    case: str
    verdicts: dict[str, str]


def conformance(candidates: dict[str, Callable[[bytes], str]]) -> list[CaseRow]:
    """Every case through websockets and each candidate."""
    rows = []
    for name, data in CASES:
        verdicts = {"websockets": verdict_websockets(data)}
        for candidate, judge in candidates.items():
            verdicts[candidate] = judge(data)
        rows.append(CaseRow(name, verdicts))
    return rows


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def _range(values: Sequence[float], fmt: str) -> str:
    """Median (min-max)."""
    low, high = format(min(values), fmt), format(max(values), fmt)
    return f"{format(statistics.median(values), fmt)} ({low}-{high})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--delta-tokens",
        type=int_list,
        default=(1, 8),
        help="mock --delta-tokens values to record at (default 1,8)",
    )
    parser.add_argument(
        "--tasks",
        type=positive_int,
        default=1,
        help="agent tasks recorded per scenario and setting (default 1)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=7,
        help="timed rounds, readers alternating (default 7)",
    )
    parser.add_argument(
        "--preset",
        default="instant",
        help="the mock's latency preset: instant (default: reads of many frames) or fast "
        "(paced like a model: reads of one to three frames, as the scale cells see)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-conformance", action="store_true",
                        help="skip the conformance table")  # fmt: skip
    args = parser.parse_args(argv)

    aiohttp_c, aiohttp_c_module = aiohttp_reader(compiled=True)
    aiohttp_py, _ = aiohttp_reader(compiled=False)
    compiled = aiohttp_c_module.endswith("reader_c")
    readers: dict[str, Callable[[list[bytes]], object]] = {
        "websockets frames": websockets_frames,
        "websockets messages": websockets_messages,
        "rig splitter + websockets": rig_splitter,
        f"aiohttp ({'compiled' if compiled else 'NOT compiled'})": aiohttp_c,
        "aiohttp (python)": aiohttp_py,
        "header walk (python)": header_walk,
        "aiohttp + header walk": aiohttp_with_walk(aiohttp_c),
    }
    picows = picows_reader()
    if picows is not None:
        readers["picows"] = picows
    else:
        print("picows is not installed: its column is left out (pip install picows)\n")

    noisy: list[float] = []
    for delta_tokens in args.delta_tokens:
        streams = record_streams(args.preset, delta_tokens, args.tasks, args.seed)
        reference = [websockets_messages(s) for s in streams]
        for name, read in readers.items():
            if name.startswith("websockets") or name == "header walk (python)":
                continue
            if [read(s) for s in streams] != reference:
                raise BenchError(f"{name} did not yield websockets' messages")
        if sum(header_walk(s) for s in streams) != sum(websockets_frames(s) for s in streams):
            raise BenchError("the header walk did not count websockets' frames")
        stream_set = StreamSet(
            delta_tokens=delta_tokens,
            streams=streams,
            frames=sum(websockets_frames(s) for s in streams),
            messages=sum(len(m) for m in reference),
            reads=sum(len(s) for s in streams),
            wire_bytes=sum(len(d) for s in streams for d in s),
        )
        results, other_busy = time_readers(stream_set, readers, args.rounds)
        noisy += other_busy
        print(
            f"--preset {args.preset} --delta-tokens {delta_tokens}: {stream_set.frames} frames, "
            f"{stream_set.messages} messages in {stream_set.reads} reads "
            f"({stream_set.wire_bytes / stream_set.reads:,.0f} bytes a read, "
            f"{stream_set.frames / stream_set.reads:.1f} frames a read), "
            f"{args.rounds} rounds"
        )
        columns: list[Column[ReaderTimes]] = [
            ("reader", lambda r: r.name),
            ("us/frame median (range)", lambda r: _range(r.per_frame_us, ".2f")),
            ("/ websockets frames", lambda r: _range(r.to_frames, ".3f")),
            ("/ websockets messages", lambda r: _range(r.to_messages, ".3f")),
        ]
        print(table(columns, results))
        halving = [r.name for r in results[2:] if max(r.to_frames) <= HALF]
        print(
            f"at most {HALF:g} x websockets' parser in every round: {', '.join(halving) or 'none'}"
        )
        print()

    if not args.no_conformance:
        candidates: dict[str, Callable[[bytes], str]] = {
            "rig splitter": verdict_splitter,
            "aiohttp": verdict_aiohttp,
        }
        if picows is not None:
            candidates["picows"] = verdict_picows
        rows = conformance(candidates)
        names = ["websockets", *candidates]
        case_columns: list[Column[CaseRow]] = [("case", lambda r: r.case)]
        case_columns += [(name, partial(_verdict, name=name)) for name in names]
        case_columns += [(f"{name} agrees", partial(_agrees, name=name)) for name in candidates]
        print(f"Conformance (max_size {CASE_MAX_SIZE}):")
        print(table(case_columns, rows))
        for name in candidates:
            differ = [r.case for r in rows if r.verdicts[name] != r.verdicts["websockets"]]
            print(f"{name}: {len(differ)} of {len(rows)} cases differ from websockets")
    warning = noisy_warning(noisy)
    if warning:
        print(warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
