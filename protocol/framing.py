"""Length-prefixed msgpack framing: bytes in, frames out, with no I/O.

A frame is a 4-byte big-endian length followed by that many bytes holding one
msgpack map. ``FrameDecoder`` is fed whatever the socket returned and yields
complete payloads; it refuses an oversized length as soon as the prefix is
read, so a hostile peer cannot make us buffer more than ``max_frame`` bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .limits import (
    ABSOLUTE_MAX_FRAME,
    DEFAULT_MAX_FRAME,
    LENGTH_PREFIX_SIZE,
    MAX_ARRAY_LEN,
    MAX_CONTAINERS,
    MAX_MAP_LEN,
    MAX_STR_LEN,
)

_LENGTH = struct.Struct(">I")
_STR_ONLY = {str}


def pack_payload(obj: dict[str, Any]) -> bytes:
    """Serialize one frame body; bytes stay ``bin``, strings stay ``str``."""
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, so not carriable
        raise LocalProtocolError(ErrorCode.BAD_FIELD, "text is not valid Unicode (lone surrogate)") from None
    return packed


def _refuse_ext(code: int, data: bytes) -> Any:
    # max_ext_len=0 still lets a zero-length ext through; this catches it.
    raise ValueError("msgpack extension types are not allowed")


class _ContainerBudget:
    """msgpack hooks that bound the *number* of containers in one payload.

    Per-container limits do not stop amplification: a 1-byte empty array
    becomes a ~60-byte Python object, so a 1 MiB frame of them costs ~70 MiB.
    The hooks run as each container completes, so parsing stops as soon as
    the budget is spent. The map hook also refuses non-string and duplicate
    keys (``strict_map_key`` still allows ``bin`` keys, and a duplicate key is
    an ambiguity two parsers could resolve differently).
    """

    __slots__ = ("remaining",)

    def __init__(self, budget: int) -> None:
        self.remaining = budget

    def _spend(self) -> None:
        self.remaining -= 1
        if self.remaining < 0:
            raise ValueError("too many containers in one payload")

    def map(self, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
        # _spend written out: this runs twice per send, and the call was a fifth of it.
        self.remaining -= 1
        if self.remaining < 0:
            raise ValueError("too many containers in one payload")
        result = dict(pairs)
        # set(map(type, ...)) runs at C speed: a send's map has a key per recipient.
        if len(result) != len(pairs) or (result and set(map(type, result)) != _STR_ONLY):
            raise ValueError("map keys must be unique strings")
        return result

    def array(self, items: list[Any]) -> list[Any]:
        self._spend()
        return items


def unpack_payload(payload: bytes | memoryview, *, max_bin_len: int = DEFAULT_MAX_FRAME) -> Any:
    """Parse one frame body with every msgpack safety limit on.

    Raises ``RemoteProtocolError(BAD_FRAME)`` for anything msgpack refuses:
    truncation, trailing bytes, ext types (timestamps included), non-string
    or duplicate map keys, a container larger than the limits in ``limits``,
    or more than ``MAX_CONTAINERS`` containers in all.
    """
    budget = _ContainerBudget(MAX_CONTAINERS)
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=MAX_STR_LEN,
            max_bin_len=max_bin_len,
            max_array_len=MAX_ARRAY_LEN,
            max_map_len=MAX_MAP_LEN,
            max_ext_len=0,
            ext_hook=_refuse_ext,
            object_pairs_hook=budget.map,
            list_hook=budget.array,
        )
    except (ValueError, TypeError, RecursionError) as exc:
        # msgpack's errors (ExtraData, FormatError, StackError, limit errors)
        # are all ValueError subclasses; nothing else is expected here.
        detail = f"not a valid msgpack frame ({exc.__class__.__name__})"
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, detail) from None


def encode_frame(payload: bytes, *, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Prefix ``payload`` with its length, refusing what the peer would reject."""
    if not payload:
        raise LocalProtocolError(ErrorCode.BAD_FRAME, "empty frame")
    if len(payload) > max_frame:
        raise LocalProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"frame of {len(payload)} bytes exceeds the limit of {max_frame} bytes",
        )
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes, then take payloads with ``next_payload``.

    Bounded in space: the buffer never holds more than one maximal frame plus
    one ``feed`` call's data. After a ``RemoteProtocolError`` the stream is out
    of sync and the decoder refuses further use.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 < max_frame <= ABSOLUTE_MAX_FRAME:
            raise ValueError(f"max_frame must be in 1..{ABSOLUTE_MAX_FRAME}")
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._broken: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._buffer += data

    def next_payload(self) -> bytes | None:
        """Return the next complete payload, or ``None`` until more data arrives."""
        if self._broken is not None:
            raise self._broken
        if len(self._buffer) < LENGTH_PREFIX_SIZE:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length == 0:
            self._broken = RemoteProtocolError(ErrorCode.BAD_FRAME, "zero-length frame")
            raise self._broken
        if length > self.max_frame:
            self._broken = RemoteProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame length {length} exceeds the limit of {self.max_frame} bytes",
            )
            raise self._broken
        end = LENGTH_PREFIX_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[LENGTH_PREFIX_SIZE:end])
        del self._buffer[:end]
        return payload
