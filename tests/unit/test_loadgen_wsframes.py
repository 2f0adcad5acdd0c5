"""The frame splitter (rig.loadgen.wsframes) against websockets alone, differentially.

Fuzzed streams of frames - every opcode (invalid ones too), fragments and control frames
between them, reserved bits, masks, every payload-length encoding (minimal or not), lengths
past ``max_size``, close frames valid or not (codes, UTF-8 reasons) and raw garbage - cut at
arbitrary points, go to two client connections, one with the splitter and one with
websockets' parser only. After every read both must have handed over the same messages,
raised the same error, reached the same state and queued the same bytes to send; and so at
the end of the stream.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.protocol import State
from websockets.uri import parse_uri
from websockets.utils import accept_key

from rig.loadgen.ws import WSConnection, WSProtocolError
from rig.loadgen.wsframes import FrameSplitter, frame_length

MAX_SIZE = 300
URL = "ws://127.0.0.1:9/v1/responses"


@pytest.fixture(autouse=True)
def _fixed_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client frames are masked with random bytes: fixed here so both sides compare."""
    import websockets.frames

    monkeypatch.setattr(websockets.frames.secrets, "token_bytes", lambda n: b"\x01" * n)


def _header(first: int, masked: bool, length: int, encoding: int) -> bytes:
    """A frame header with ``length`` in the given encoding (0 minimal, 126 or 127)."""
    mask_bit = 0x80 if masked else 0
    if encoding == 0:
        if length < 126:
            return bytes([first, mask_bit | length])
        encoding = 126 if length < 65536 else 127
    if encoding == 126 and length < 65536:
        return bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    return bytes([first, mask_bit | 127]) + struct.pack("!Q", length)


def _frame(first: int, payload: bytes, masked: bool = False, encoding: int = 0) -> bytes:
    mask = b"\x00\x00\x00\x00" if masked else b""
    return _header(first, masked, len(payload), encoding) + mask + payload


SIMPLE = _frame(0x81, b"hello")
"""A frame the splitter takes: inside another frame's payload, it shows a misframing."""


@st.composite
def payloads(draw: Any, sizes: list[int]) -> bytes:
    if draw(st.integers(0, 3)) == 0:  # looks like frames: read as such only if misframed
        return SIMPLE * draw(st.integers(1, 3))
    size = draw(st.sampled_from(sizes))
    return bytes(draw(st.binary(min_size=size, max_size=size)))


@st.composite
def frames(draw: Any) -> bytes:
    kind = draw(
        st.sampled_from(["text"] * 6 + ["fragments"] * 2 + ["data", "control", "close", "odd"])
    )
    encoding = draw(st.sampled_from([0, 0, 0, 126, 127]))
    masked = draw(st.integers(0, 30)) == 0
    if kind == "odd":  # garbage, or a header claiming far more than follows
        if draw(st.booleans()):
            return draw(st.binary(min_size=1, max_size=12))
        first = draw(st.integers(0, 255))
        claimed = draw(st.sampled_from([MAX_SIZE + 1, 70_000, 2**40, 2**63 + 5]))
        return _header(first, draw(st.booleans()), claimed, 127) + draw(st.binary(max_size=8))
    if kind == "fragments":  # a message in pieces, maybe with control frames between
        pieces = [_frame(draw(st.sampled_from([0x01, 0x02])), draw(payloads([0, 3, 130])))]
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                pieces.append(_frame(0x89, b"ping"))
            pieces.append(_frame(0x00, draw(payloads([0, 2, 150]))))
        # ended as it should, or by a new message (refused), or not at all
        pieces.append(_frame(draw(st.sampled_from([0x80, 0x80, 0x81])), b"end"))
        return b"".join(pieces[: draw(st.integers(1, len(pieces)))])
    fin = draw(st.booleans()) if kind == "data" else True
    rsv = draw(st.sampled_from([0] * 12 + [0x10, 0x40, 0x70]))
    if kind == "close":
        opcode = 8
        code = draw(st.sampled_from([1000, 1001, 1011, 1005, 999, 4000, 5000]))
        reason = draw(st.sampled_from([b"", b"bye", "d\u00e9j\u00e0".encode(), b"\xff\xfe"]))
        payload = b"" if draw(st.integers(0, 5)) == 0 else struct.pack("!H", code) + reason
    else:
        if kind == "control":
            opcode = draw(st.sampled_from([9, 10, 9, 8, 3, 11, 15]))
        elif kind == "data":
            opcode = draw(st.sampled_from([0, 1, 2, 0]))
        else:
            opcode = draw(st.sampled_from([1, 1, 2]))
        sizes = [0, 1, 40, 125, 126, 127, 200, MAX_SIZE, MAX_SIZE + 1]
        payload = draw(payloads(sizes))
    first = (0x80 if fin else 0) | rsv | opcode
    return _frame(first, payload, masked, encoding)


@st.composite
def streams(draw: Any) -> tuple[bytes, list[int]]:
    stream = b"".join(draw(st.lists(frames(), min_size=1, max_size=12)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=10)))
    return stream, cuts


def _chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *[c for c in cuts if 0 < c < len(stream)], len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _open_pair() -> tuple[WSConnection, WSConnection]:
    """Two open client connections on no socket: websockets alone, and with the splitter."""
    plain = WSConnection(
        None,  # type: ignore[arg-type]
        ClientProtocol(parse_uri(URL), state=State.OPEN, max_size=MAX_SIZE),
        split_frames=False,
    )
    split_protocol = ClientProtocol(parse_uri(URL), state=State.OPEN, max_size=MAX_SIZE)
    split = WSConnection(None, split_protocol)  # type: ignore[arg-type]
    split._frames = FrameSplitter(split_protocol)
    return plain, split


def _step(connection: WSConnection, data: bytes) -> dict[str, Any]:
    """One read's outcome, as the connection's callers see it."""
    try:
        more: Any = connection._take(data)
        control: Any = connection._collected()
    except WSProtocolError as exc:
        more, control = f"error: {exc}", None
    protocol = connection.protocol
    pending, connection._pending = connection._pending, []
    close: Close | None = protocol.close_rcvd
    return {
        "more": more,
        "control": control,
        "messages": [bytes(m) for m in pending],
        "state": protocol.state,
        "close": (close.code, close.reason) if close else None,
        "error": repr(protocol.parser_exc),
        "sent": protocol.data_to_send(),
    }


def _differ(plain: WSConnection, split: WSConnection, chunks: list[bytes]) -> None:
    for data in [*chunks, b""]:
        expected = _step(plain, data)
        assert _step(split, data) == expected, data
        if isinstance(expected["more"], str):  # the transport gives up on the connection
            return


@settings(max_examples=600, deadline=None)
@given(streams())
def test_splitter_agrees_with_websockets_after_every_read(case: tuple[bytes, list[int]]) -> None:
    stream, cuts = case
    plain, split = _open_pair()
    _differ(plain, split, _chunks(stream, cuts))


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(0, 3))
def test_frames_that_came_with_the_upgrade(case: tuple[bytes, list[int]], cut: int) -> None:
    """Frames in the same reads as the answer to the upgrade went to websockets: the
    splitter starts where they end, mid-frame included."""
    stream, cuts = case

    class Wire:
        def __init__(self) -> None:
            self.reads: list[bytes] = []
            self.answered = False

        def sendall(self, data: bytes) -> None:
            if not self.answered:  # the upgrade request: answer it, with frames behind
                self.answered = True
                key = data.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0].decode()
                answer = (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
                ).encode()
                with_frames = answer + stream[: cuts[0] if cuts else len(stream)]
                at = len(answer) - cut
                self.reads = [r for r in (with_frames[:at], with_frames[at:]) if r]

        def recv(self) -> bytes:
            return self.reads.pop(0) if self.reads else b""

        def close(self) -> None:
            pass

    outcomes: list[Any] = []
    left: list[bytes] = []
    for split_frames in (False, True):
        wire = Wire()
        try:
            connection = WSConnection.handshake(wire, URL, max_size=MAX_SIZE)  # type: ignore[arg-type]
        except WSProtocolError as exc:
            outcomes.append(str(exc))
            continue
        if not split_frames:
            connection._frames = None
        outcomes.append(connection)
        left = wire.reads  # the same for both: what the handshake's reads left
    plain, split = outcomes
    if isinstance(plain, str):
        assert split == plain
        return
    assert isinstance(split, WSConnection)
    assert isinstance(plain, WSConnection)
    assert split._frames is not None or split.protocol.state is not State.OPEN
    assert split._pending == plain._pending
    rest = stream[cuts[0] :] if cuts else b""
    later = _chunks(rest, [c - cuts[0] for c in cuts[1:]]) if rest else []
    _differ(plain, split, [*left, *later])


def test_simple_frames_are_taken_without_websockets() -> None:
    """The splitter does the work: websockets sees only the ping between two messages."""
    plain, split = _open_pair()
    seen: list[bytes] = []
    protocol = split.protocol
    original = protocol.receive_data

    def spy(data: bytes) -> None:
        seen.append(data)
        original(data)

    protocol.receive_data = spy  # type: ignore[method-assign]
    ping = b"\x89\x02hi"
    stream = b"\x81\x05hello" + ping + b"\x81\x7e\x00\x80" + b"x" * 128
    assert _step(split, stream) == _step(plain, stream)
    assert seen == [ping]


@pytest.mark.parametrize(
    ("head", "total"),
    [
        (b"\x81\x05", 7),
        (b"\x81\x85", 11),
        (b"\x81\x7e\x01\x00", 260),
        (b"\x81\x7f" + (70_000).to_bytes(8, "big"), 70_010),
        (b"\x81", None),
        (b"\x81\x7e\x01", None),
    ],
)
def test_frame_length(head: bytes, total: int | None) -> None:
    assert frame_length(head) == total
