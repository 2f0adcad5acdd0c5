"""WSConnection's receive path, fed server frames as plain bytes (no socket, no server)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from rig.loadgen.ws import WSClosedError, WSConnection


class ScriptedWire:
    """A wire whose reads return the given chunks, then the end of the stream."""

    def __init__(self, *reads: bytes):
        self.reads = list(reads)
        self.sent: list[bytes] = []

    def recv(self) -> bytes:
        return self.reads.pop(0) if self.reads else b""

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def _frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


def _connection(*reads: bytes) -> tuple[WSConnection, ScriptedWire]:
    wire = ScriptedWire(*reads)
    protocol = Protocol(Side.CLIENT, state=State.OPEN)
    return WSConnection(wire, protocol), wire  # type: ignore[arg-type]


def test_messages_of_one_read_come_together_in_order() -> None:
    connection, wire = _connection(_frame(Opcode.TEXT, b"one") + _frame(Opcode.TEXT, b"two"))
    assert connection.receive() == [b"one", b"two"]
    assert wire.sent == []  # nothing to answer


def test_a_fragmented_message_is_assembled() -> None:
    connection, _ = _connection(
        _frame(Opcode.TEXT, b"hel", fin=False),
        _frame(Opcode.CONT, b"lo ", fin=False),
        _frame(Opcode.CONT, b"world") + _frame(Opcode.TEXT, b"next"),
    )
    assert connection.receive() == [b"hello world", b"next"]


def test_a_ping_between_messages_is_answered() -> None:
    connection, wire = _connection(
        _frame(Opcode.TEXT, b"a") + _frame(Opcode.PING, b"?") + _frame(Opcode.TEXT, b"b")
    )
    assert connection.receive() == [b"a", b"b"]
    assert len(wire.sent) == 1  # the pong (masked, so compare the opcode only)
    assert wire.sent[0][0] == 0x80 | Opcode.PONG.value


def test_unreceived_messages_come_first_next_time() -> None:
    connection, _ = _connection(
        _frame(Opcode.TEXT, b"a") + _frame(Opcode.TEXT, b"b") + _frame(Opcode.TEXT, b"c"),
        _frame(Opcode.TEXT, b"d"),
    )
    first = connection.receive()
    connection.unreceive(first[1:])
    assert connection.receive() == [b"b", b"c"]
    assert connection.receive() == [b"d"]


def test_the_end_of_the_stream_is_a_closed_error_after_the_last_message() -> None:
    connection, _ = _connection(_frame(Opcode.TEXT, b"last"))
    assert connection.receive() == [b"last"]
    with pytest.raises(WSClosedError):
        connection.receive()
