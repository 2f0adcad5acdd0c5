"""WireSocket counts what the kernel took, also of a write cut short."""

from __future__ import annotations

import gevent
import gevent.socket
import pytest

from rig.loadgen.wire import WireCounter, WireSocket


def test_a_write_cut_short_by_a_deadline_counts_exactly_what_the_peer_can_read() -> None:
    client, peer = gevent.socket.socketpair()
    counter = WireCounter()
    wire = WireSocket(client, counter)
    # The peer reads nothing: the kernel's buffers fill, and the write waits until the
    # deadline cuts it short.
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.2):
        wire.sendall(b"x" * 50_000_000)
    wire.close()
    received = 0
    while chunk := peer.recv(1 << 20):
        received += len(chunk)
    peer.close()
    assert 0 < counter.sent < 50_000_000
    assert counter.sent == received
