"""Length-prefixed msgpack framing: bytes in, frames out, with no I/O.

A frame is a 4-byte big-endian length followed by that many bytes holding one
msgpack map. ``FrameDecoder`` is fed whatever the socket returned and yields
complete payloads; it refuses an oversized length as soon as the prefix is
read, so a hostile peer cannot make us buffer more than ``max_frame`` bytes.
"""

from __future__ import annotations

import struct
from typing import Any, Final

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
    the budget is spent. The pairs hook (``map``, the full parse) also refuses
    non-string and duplicate keys (``strict_map_key`` still allows ``bin``
    keys, and a duplicate key is an ambiguity two parsers could resolve
    differently); the dict hook (``counted_map``, the quick parse) only
    counts, and ``_quick_parse_vouched`` then checks the keys.
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

    def counted_map(self, built: dict[Any, Any]) -> dict[Any, Any]:
        # The quick parse's map: msgpack built the dict itself (no list of pairs).
        self.remaining -= 1
        if self.remaining < 0:
            raise ValueError("too many containers in one payload")
        return built

    def array(self, items: list[Any]) -> list[Any]:
        self._spend()
        return items


def unpack_payload(payload: bytes | memoryview, *, max_bin_len: int = DEFAULT_MAX_FRAME) -> Any:
    """Parse one frame body with every msgpack safety limit on.

    Raises ``RemoteProtocolError(BAD_FRAME)`` for anything msgpack refuses:
    truncation, trailing bytes, ext types (timestamps included), non-string
    or duplicate map keys, a container larger than the limits in ``limits``,
    or more than ``MAX_CONTAINERS`` containers in all.

    Two parses, one answer. The quick one lets msgpack build each map itself
    and only counts containers; its value is returned only when
    ``_quick_parse_vouched`` proves it is the value the full parse (pairs
    hook: duplicate and non-string keys refused) gives. Anything else (an
    error, a non-string key, a possible duplicate, a non-minimal encoding) is
    decided by the full parse alone, so what is accepted and refused, and
    with which error, is the full parse's. A hostile frame costs at most the
    two parses, both under the same container budget.
    """
    quick = _ContainerBudget(MAX_CONTAINERS)
    try:
        value = msgpack.unpackb(
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
            object_hook=quick.counted_map,
            list_hook=quick.array,
        )
    except (ValueError, TypeError, RecursionError):
        return _full_parse(payload, max_bin_len)
    # len() only of exact bytes: a bytes subclass could say any length (review-s10-core 4). A
    # memoryview's context manager here cost 1,700 instructions a message compiled.
    size = len(payload) if type(payload) is bytes else memoryview(payload).nbytes
    if _quick_parse_vouched(value, size):
        return value
    del value  # not held through the full parse: a fallback's peak stays one parse's (review-s10-core 3)
    return _full_parse(payload, max_bin_len)


def _full_parse(payload: bytes | memoryview, max_bin_len: int) -> Any:
    """The parse whose answer ``unpack_payload`` gives: every key checked as each map completes."""
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


# --- why the quick parse's value may be trusted --------------------------------
# The quick parse runs with the full parse's options and hooks but one: each map
# is the dict msgpack built, where a repeated key silently keeps its last value.
# So when it succeeds, the full parse would fail only on a non-string key (checked
# below, in every map) or a repeated one, and would otherwise give an equal value
# (dict(pairs) of distinct keys is the same dict, in the same order). A repeated
# key is ruled out by counting bytes:
#
# ``_least_size(v)`` is a lower bound on the bytes of any msgpack item that
# decodes to ``v`` under these options: for each type the smallest header its
# length or value fits (ints: fixint, 8/16/32/64-bit; str: its UTF-8 length,
# exactly what the strict decoder read, plus fixstr/str8/16/32; bin 8/16/32;
# floats 5, float32's size; nil and bools 1), and for a container its header
# for the entries it holds plus theirs. Headers only grow with the count. A map
# in which a key came twice holds fewer entries than its encoding declared, and
# each dropped pair took at least 2 bytes (a key and a value), so by induction
# the bound for the whole value falls short of the payload by at least 2 bytes
# per dropped pair. The payload is exactly one item (msgpack refuses trailing
# bytes), so a bound equal to its length means no map lost a pair. Counting a
# string as one byte a character instead of its UTF-8 length only lowers the
# bound (a character takes at least a byte; headers only grow), so that cheaper
# count is tried first and vouches just as well when it reaches the length. A bound
# below it (a repeat, or merely a non-minimal encoding or a float64) proves
# nothing and the full parse decides. Any type the bound does not know (none
# can be decoded: ext is refused), and any array (see _least_size), also sends
# it to the full parse.

#: Returned by ``_least_size`` for a value it cannot vouch for.
_UNKNOWN: Final = -1


def _quick_parse_vouched(value: object, size: int) -> bool:
    """True when the quick parse's ``value`` of a ``size``-byte payload is what the full parse gives.

    First with each string counted as one byte a character (a lower bound too:
    UTF-8 takes at least a byte a character, and headers only grow), which
    needs no encoding; only when that falls short is the exact UTF-8 length
    counted, so a frame with non-ASCII text costs one more walk, not a parse.
    """
    least = _least_size(value, False)
    if least == size:
        return True
    return least != _UNKNOWN and _least_size(value, True) == size


def _least_size(value: object, utf8: bool) -> int:
    """The fewest bytes any msgpack item decoding to ``value`` can take (with ``utf8`` False: a
    lower bound of that, strings counted a byte a character), or ``_UNKNOWN``.

    ``_UNKNOWN`` also for a map with a key that is not a ``str`` (the full parse
    refuses it). A loop over a stack, not recursion: a value nests as deep as
    msgpack's parser allows, deeper than a C stack should be trusted with. A
    map's ``bin`` and ``str`` values are counted in its loop, not pushed: a
    send's recipients are such a map.
    """
    total = 0
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            total += _container_header_size(len(item))
            for key, entry in item.items():
                # The common sizes written out (a recipient's name and ciphertext): the pure
                # build pays a Python call per helper, and this loop runs once a recipient.
                if type(key) is not str:
                    return _UNKNOWN
                length = len(key.encode("utf-8", "surrogatepass")) if utf8 else len(key)
                total += length + (1 if length < 32 else _str_header_size(length))
                if type(entry) is bytes:
                    length = len(entry)
                    total += length + (2 if length < 0x100 else _bin_header_size(length))
                elif type(entry) is str:
                    total += _str_size(entry, utf8)
                else:
                    pending.append(entry)
        elif type(item) is bytes:
            total += _bin_header_size(len(item)) + len(item)
        elif type(item) is str:
            total += _str_size(item, utf8)
        elif type(item) is list:
            # No frame the relay routes at speed holds an array (a send is a map of str to bin),
            # and an array of a million one-byte ints made this walk, a Python step an item,
            # cost the pure build 20-45x the old parse (review-s10-core 1): an array sends the
            # frame to the full parse, so a hostile frame costs at most the two parses.
            return _UNKNOWN
        elif type(item) is int:
            total += _int_size(item)
        elif item is None or type(item) is bool:
            total += 1
        elif type(item) is float:
            total += 5
        else:
            return _UNKNOWN
    return total


def _str_size(text: str, utf8: bool) -> int:
    # surrogatepass: the strict decoder never yields a lone surrogate, but this must not raise if one came.
    length = len(text.encode("utf-8", "surrogatepass")) if utf8 else len(text)
    return _str_header_size(length) + length


def _str_header_size(length: int) -> int:
    if length < 32:
        return 1
    if length < 0x100:
        return 2
    return 3 if length < 0x10000 else 5


def _bin_header_size(length: int) -> int:
    if length < 0x100:
        return 2
    return 3 if length < 0x10000 else 5


def _container_header_size(count: int) -> int:
    if count < 16:
        return 1
    return 3 if count < 0x10000 else 5


def _int_size(number: int) -> int:
    if -32 <= number < 0x80:
        return 1
    if -0x80 <= number < 0x100:
        return 2
    if -0x8000 <= number < 0x10000:
        return 3
    if -0x8000_0000 <= number < 0x1_0000_0000:
        return 5
    return 9


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
