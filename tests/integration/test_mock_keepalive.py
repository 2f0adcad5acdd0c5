"""The mock's WebSocket keepalive (``--ws-ping-interval``, ``--ws-ping-timeout``): a
client that answers its pings stays connected, one that does not is closed with 1011."""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from rig.loadgen.wire import WireCounter, open_wire
from rig.loadgen.ws import WSConnection
from tests.servers import start_mock

INTERVAL_S = 0.3
TIMEOUT_S = 0.3
WAIT_S = 20.0
"""A bound on each wait below (never reached when the server behaves)."""


@pytest.fixture(scope="module")
def pinging_url() -> Iterator[str]:
    process, url = start_mock(
        "--preset",
        "instant",
        "--ws-ping-interval",
        str(INTERVAL_S),
        "--ws-ping-timeout",
        str(TIMEOUT_S),
    )
    yield url
    process.stop()


def _connect(url: str) -> WSConnection:
    ws_url = url.replace("http://", "ws://") + "/responses"
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    return WSConnection.handshake(open_wire(host, int(port), WireCounter()), ws_url)


def test_a_client_that_does_not_answer_pings_is_closed_with_1011(pinging_url: str) -> None:
    connection = _connect(pinging_url)
    # Read what arrives, but do not hand it to the protocol: no pong goes back (as an
    # agent that does not read its socket between turns). The server's end of stream is
    # the event waited for.
    arrived = []
    with gevent.Timeout(WAIT_S):
        while data := connection.wire.recv():
            arrived.append(data)
    protocol = connection.protocol
    protocol.receive_data(b"".join(arrived))
    protocol.receive_eof()
    frames = [event for event in protocol.events_received() if isinstance(event, Frame)]
    assert [frame.opcode for frame in frames] == [Opcode.PING, Opcode.CLOSE]
    assert protocol.close_rcvd is not None
    assert protocol.close_rcvd.code == 1011
    assert "keepalive" in protocol.close_rcvd.reason
    connection.abort()


def test_a_client_that_answers_pings_stays_open(pinging_url: str) -> None:
    connection = _connect(pinging_url)
    protocol = connection.protocol
    pings = 0
    # Four pings answered: longer than a ping's interval and timeout together.
    with gevent.Timeout(WAIT_S):
        while pings < 4:
            data = connection.wire.recv()
            assert data, "the server closed a connection that answered its pings"
            protocol.receive_data(data)
            for event in protocol.events_received():
                assert isinstance(event, Frame)
                assert event.opcode is Opcode.PING, event
                pings += 1
            for pong in protocol.data_to_send():  # the protocol answers each ping
                connection.wire.sendall(pong)
    assert protocol.state is State.OPEN
    assert protocol.close_rcvd is None
    connection.close()
