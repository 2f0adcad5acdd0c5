"""The text frame header the rig's WebSocket servers write themselves (looked up in a table
below 1,024 bytes, built above): the same bytes websockets writes for that frame."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from rig.serving.wsproto import text_frame_header


@given(
    length=st.one_of(
        st.integers(min_value=0, max_value=2_000),
        st.sampled_from([65_535, 65_536, 70_000]),
    )
)
def test_a_text_frame_header_is_the_one_websockets_writes(length: int) -> None:
    payload = b"x" * length
    frame = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame_header(length) + payload == frame
