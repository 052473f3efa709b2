"""The relay core's per-connection outbox, in memory.

``RelayCore`` talks to a connection only through its outbox's ``offer``, so a
list of the bytes offered is the whole I/O surface of a socket-free relay.
"""

from __future__ import annotations

from collections.abc import Hashable

from susurro.protocol import RELAY_FRAMES, Frame, FrameDecoder, decode_frame
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME


class MemoryOutbox:
    """Collects what the core offers; ``accept=False`` plays a full outbox, ``closed`` a closed one."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.closed = False
        #: Everything offered, accepted or not.
        self.offered: list[bytes] = []
        #: What was accepted and not yet handed on by ``take_all``.
        self.data: list[bytes] = []
        #: The tags of what was accepted (the core tags each ``deliver``), as a real outbox keeps them.
        self.tags: list[Hashable] = []
        self._read = 0

    def offer(self, data: bytes, tag: Hashable | None = None) -> bool:
        self.offered.append(data)
        if not self.accept or self.closed:
            return False
        self.data.append(data)
        if tag is not None:
            self.tags.append(tag)
        return True

    def take_all(self) -> bytes:
        """Hand on (and forget) everything accepted so far, as one byte string."""
        data = b"".join(self.data)
        self.data.clear()
        self._read = 0
        return data

    def raw(self) -> bytes:
        return b"".join(self.data)

    def frames(self) -> list[Frame]:
        """Every accepted frame so far, decoded as a client would."""
        decoder = FrameDecoder(ABSOLUTE_MAX_FRAME)
        out: list[Frame] = []
        for chunk in self.data:
            decoder.feed(chunk)
            while (payload := decoder.next_payload()) is not None:
                out.append(decode_frame(payload, RELAY_FRAMES, max_bin_len=ABSOLUTE_MAX_FRAME))
        assert decoder.buffered == 0, "the core offered a partial frame"
        return out

    def new_frames(self) -> list[Frame]:
        """Frames accepted since the last call."""
        frames = self.frames()
        fresh = frames[self._read :]
        self._read = len(frames)
        return fresh
