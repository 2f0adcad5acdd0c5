"""The kernel's own byte counts of a socket (Linux TCP_INFO), the ground truth of tests."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from rig.loadgen.wire import WireSocket

# struct tcp_info (linux/tcp.h): tcpi_state first; tcpi_bytes_acked and
# tcpi_bytes_received after 8 u8, 24 u32 and 2 u64 fields.
_TCP_INFO = struct.Struct("8B24I4Q")
_FIN_RECEIVED = {6, 8, 9, 11}  # TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING


def final_counts(wire: WireSocket) -> tuple[int, int]:
    """Payload bytes the kernel saw acknowledged and received on ``wire``, read at once:
    its counters also count our SYN and, once it arrived, the peer's FIN (one sequence
    number each), which carry no payload."""
    raw = wire.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    fields = _TCP_INFO.unpack_from(raw)
    return fields[34] - 1, fields[35] - (fields[0] in _FIN_RECEIVED)


def counting_closes(
    counts: list[tuple[int, int]], keep: Callable[[WireSocket], bool] = lambda wire: True
) -> Callable[[WireSocket], None]:
    """A replacement for ``WireSocket.close`` (to monkeypatch) that appends each kept
    socket's :func:`final_counts` to ``counts`` just before the socket goes."""
    close = WireSocket.close

    def counted_close(wire: WireSocket) -> None:
        if keep(wire):
            counts.append(final_counts(wire))
        close(wire)

    return counted_close
