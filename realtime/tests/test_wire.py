"""realtime.wire's frames are what a websocket client reads, whatever the payload's size."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.wire import frame_of


def _parsed(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("the frame is incomplete")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_frame_holds_the_text_whole(size):
    text = ("é" * size)[:size] if size < 10 else "x" * (size - 2) + "é"
    frame = _parsed(frame_of(text))
    assert (frame.opcode, frame.fin, frame.data.decode()) == (Opcode.TEXT, True, text)
