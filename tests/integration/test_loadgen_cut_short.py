"""A turn cut short in the middle of its upload (the request timeout, on a slow link)
records the bytes it put on the wire: exactly what the kernel took from its socket, so
that a run's totals still add up to what went over the network."""

from __future__ import annotations

import array
import fcntl
import termios
from collections.abc import Iterator

import pytest

from rig.loadgen.link import Link, LinkProfile
from rig.loadgen.target import Target
from rig.loadgen.transports import TurnInput, make_transport
from rig.loadgen.wire import WireCounter, WireSocket

THIN = LinkProfile("thin", uplink_bps=200e3, downlink_bps=8e6, rtt_s=0.02)
"""25 KB/s up, no loss or jitter: a 100 KB request takes 4 s, the turn timeout 1 s."""


def kernel_written(wire: WireSocket) -> int:
    """Bytes the kernel took from the client's socket: acknowledged plus still queued."""
    queued = array.array("i", [0])
    fcntl.ioctl(wire.sock.fileno(), termios.TIOCOUTQ, queued)
    return wire.tcp_info().payload_acked + queued[0]


@pytest.fixture
def closed_wires(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """What the kernel had taken from each connection the rig closed, when it closed it."""
    written: list[int] = []
    close = WireSocket.close

    def recording_close(self: WireSocket) -> None:
        written.append(kernel_written(self))
        close(self)

    monkeypatch.setattr(WireSocket, "close", recording_close)
    yield written


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_turn_timed_out_mid_upload_counts_what_the_kernel_sent(
    mock_url: str, transport: str, closed_wires: list[int]
) -> None:
    counter = WireCounter()
    session = make_transport(
        transport,
        Target.from_url(mock_url),
        counter,
        instructions="Be brief.",
        tools=[],
        timeout=1.0,
        link=Link(THIN, seed=1),
    )
    prompt = {"role": "user", "content": "x" * 100_000}
    try:
        outcome = session.turn(TurnInput([prompt], [prompt], None))
    finally:
        session.close()
    assert outcome.status == "timeout", outcome.error
    assert closed_wires, "the timed-out connection was not closed"
    # One connection, opened by this turn: all it sent was this turn's.
    assert len(closed_wires) == 1
    assert 10_000 < outcome.bytes_sent < 100_000  # a part of the request left in 1 s
    assert outcome.bytes_sent == closed_wires[0] == counter.sent
