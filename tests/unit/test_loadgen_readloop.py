"""The read loop (rig.loadgen.readloop) over real socket pairs."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import gevent
import gevent.event
import pytest

from rig.loadgen.readloop import ReadLoop


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(20)]
    for reader, _ in made:
        reader.setblocking(False)
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_every_ready_socket_is_read_in_turn_and_the_loop_ends_with_its_last_socket(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    loop = ReadLoop.current()
    got: dict[int, bytes] = {}
    done = gevent.event.Event()

    def handler(sock: socket.socket) -> None:
        data = sock.recv(65536)
        got[sock.fileno()] = got.get(sock.fileno(), b"") + data
        if got[sock.fileno()].endswith(b"!"):
            loop.remove(sock.fileno())
            if not len(loop):
                done.set()

    for reader, _ in pairs:
        loop.add(reader.fileno(), lambda r=reader: handler(r))
    assert len(loop) == len(pairs)
    for index, (_, writer) in enumerate(pairs):
        writer.send(f"{index}:".encode())
    for index, (_, writer) in enumerate(reversed(pairs)):
        writer.send(b"x" * index + b"!")
    assert done.wait(10)
    for index, (reader, _) in enumerate(pairs):
        assert got[reader.fileno()] == f"{index}:".encode() + b"x" * (len(pairs) - 1 - index) + b"!"
    assert loop._greenlet is None  # it ended its pass with nothing left to read
    assert ReadLoop.current() is loop  # one per hub


def test_a_failing_handler_loses_its_socket_not_the_loop(
    pairs: list[tuple[socket.socket, socket.socket]], caplog: pytest.LogCaptureFixture
) -> None:
    loop = ReadLoop.current()
    (bad, bad_writer), (good, good_writer) = pairs[0], pairs[1]
    heard = gevent.event.Event()

    def broken() -> None:
        raise RuntimeError("a bug")

    def fine() -> None:
        if good.recv(100) == b"ok":
            loop.remove(good.fileno())
            heard.set()

    loop.add(bad.fileno(), broken)
    loop.add(good.fileno(), fine)
    bad_writer.send(b"boom")
    good_writer.send(b"ok")
    assert heard.wait(10)
    assert len(loop) == 0
    assert "read loop handler failed" in caplog.text


def test_remove_is_idempotent_and_survives_a_closed_socket(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    loop = ReadLoop.current()
    reader, _ = pairs[0]
    fd = reader.fileno()
    loop.add(fd, lambda: None)
    reader.close()
    loop.remove(fd)
    loop.remove(fd)
    assert len(loop) == 0
