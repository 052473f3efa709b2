"""The frame work the relay does for every message, in a module mypyc compiles.

``protocol/frames.py`` holds the frame types: dataclasses whose ``ClassVar``
fields (``TYPE``, ``WIRE_NAMES``) mypyc takes for instance fields (mypyc
issue 1122), so that module stays pure Python. What the relay does per
``send`` is here instead, as plain functions and one plain class that mypyc
compiles with the rest of the hot path (decision 61): parsing a frame's
envelope (``decode_frame``), the bulk check of a ``send``'s fields
(``send_fields_ok``), the ``deliver`` copies (``DeliverEncoder``) and the
``ack`` (``encode_ack``), with the field checks they share. ``frames.py``
imports them and exports them under the names it always had; this module
knows no frame class (``decode_frame`` is handed the table of the types a side
accepts).

These functions parse hostile input. Compiled or not they must give the same
value or the same typed error for any input, so what they take from outside is
annotated ``object`` and checked where a compiled ``str`` or ``bytes`` annotation
would raise a bare ``TypeError``
(``tests/property/test_compiled_differential.py`` checks this module compiled
against its own source run as Python).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

import msgpack

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .framing import encode_frame, unpack_payload
from .limits import (
    DEFAULT_MAX_FRAME,
    LENGTH_PREFIX_SIZE,
    MAX_MAP_LEN,
    MAX_MSG_ID_CHARS,
    MAX_NAME_CHARS,
    PROTOCOL_VERSION,
)

#: How long a name field may be for the frame to parse at all: a parsing bound
#: derived from MAX_NAME_CHARS, not a second name limit. Parsing a longer
#: string than the name rules allow lets them refuse it with ``bad_name`` and
#: the reason ("at most 32 characters", "send it normalized") rather than a
#: bare ``bad_field``.
MAX_RAW_NAME_CHARS: Final = 4 * MAX_NAME_CHARS

MSG_ID_CHARS: Final = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")


def fail(detail: str) -> LocalProtocolError:
    return LocalProtocolError(ErrorCode.BAD_FIELD, detail)


def check_str(name: str, value: object, max_chars: int, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise fail(f"{name} must be a string")
    if not value and not allow_empty:
        raise fail(f"{name} must not be empty")
    if len(value) > max_chars:
        raise fail(f"{name} is longer than {max_chars} characters")


def check_msg_id(value: object) -> None:
    """Message ids are opaque tokens: ASCII letters, digits, ``_`` and ``-``.

    The relay logs them; a free-text id could forge lines in its audit log.
    """
    check_str("id", value, MAX_MSG_ID_CHARS)
    if not isinstance(value, str) or not MSG_ID_CHARS.issuperset(value):
        raise fail("id may only hold ASCII letters, digits, '_' and '-'")


# --- parsing -------------------------------------------------------------------

_Frame_co = TypeVar("_Frame_co", covariant=True)
_Frame = TypeVar("_Frame")


class FrameType(Protocol[_Frame_co]):
    """What ``decode_frame`` needs of a frame class: its constructor from the decoded map."""

    def from_wire(self, raw: Mapping[str, Any], /) -> _Frame_co: ...


def decode_frame(
    payload: bytes | memoryview,
    allowed: Mapping[str, FrameType[_Frame]],
    *,
    max_bin_len: int = DEFAULT_MAX_FRAME,
) -> _Frame:
    """Turn one frame payload from the network into a validated frame.

    ``allowed`` is ``CLIENT_FRAMES`` on the relay and ``RELAY_FRAMES`` on a
    client: a frame type meant for the other direction is a ``bad_type``.
    """
    raw = unpack_payload(payload, max_bin_len=max_bin_len)
    if not isinstance(raw, dict):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "a frame must be a msgpack map")
    version = raw.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        shown = repr(version)[:20] if isinstance(version, (int, str)) else type(version).__name__
        detail = f"unsupported protocol version {shown}; this side speaks {PROTOCOL_VERSION}"
        raise RemoteProtocolError(ErrorCode.BAD_VERSION, detail)
    kind = raw.get("t")
    if not isinstance(kind, str) or kind not in allowed:
        shown = repr(kind)[:40] if isinstance(kind, (int, str)) else type(kind).__name__
        raise RemoteProtocolError(ErrorCode.BAD_TYPE, f"unexpected frame type {shown}")
    try:
        return allowed[kind].from_wire(raw)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, f"{kind}: {exc.detail}") from None
    except TypeError:
        # A nested value of the wrong shape (e.g. a list where a map belongs).
        raise RemoteProtocolError(ErrorCode.BAD_FIELD, f"{kind}: malformed fields") from None


def send_from_wire(cls: type[_Frame], raw: Mapping[str, Any]) -> _Frame:
    """``Send.from_wire`` (frames.py makes this that class's constructor from a decoded map).

    The relay decodes one of these per message: its two fields by name, and
    a valid one checked once (``send_fields_ok``) and stored without the
    dataclass's ``__init__``, whose keyword handling and per-field setattr
    cost as much as the checks. Here, compiled, rather than in frames.py:
    ``decode_frame`` then calls it without a Python frame in between.
    Anything else goes through ``__init__``, whose checks name what is wrong.
    """
    msg_id, to = raw.get("id"), raw.get("to")
    if type(to) is dict and send_fields_ok(msg_id, to):
        frame = object.__new__(cls)
        object.__setattr__(frame, "id", msg_id)
        object.__setattr__(frame, "to", to)
        return frame
    missing = [name for name in ("id", "to") if name not in raw]  # as frames._take names them
    if missing:
        raise fail(f"missing field(s): {', '.join(missing)}")
    return cls(id=raw["id"], to=raw["to"])  # type: ignore[call-arg]  # Send's keywords


def send_fields_ok(msg_id: object, to: object) -> bool:
    """All of ``Send``'s checks at once for the common, valid case.

    The relay checks every send, one entry per recipient: compiled, a loop
    over the map is a few machine steps an entry (``type(x) is str`` is a
    pointer compare). False means "look closer", not "invalid": the
    entry-by-entry checks of ``Send.__post_init__`` then name the problem.
    """
    if type(msg_id) is not str or not 0 < len(msg_id) <= MAX_MSG_ID_CHARS or not MSG_ID_CHARS.issuperset(msg_id):
        return False
    if type(to) is not dict:
        # A Mapping that is not a dict: only a frame built locally (the wire gives dicts).
        return isinstance(to, Mapping) and _mapping_ok(to)
    if not 0 < len(to) <= MAX_MAP_LEN:
        return False
    for name, ct in to.items():
        if type(name) is not str or not 0 < len(name) <= MAX_RAW_NAME_CHARS or type(ct) is not bytes or not ct:
            return False
    return True


def _mapping_ok(to: Mapping[Any, Any]) -> bool:
    if not 0 < len(to) <= MAX_MAP_LEN:
        return False
    for name in to:
        if type(name) is not str or not 0 < len(name) <= MAX_RAW_NAME_CHARS:
            return False
        ct = to[name]
        if type(ct) is not bytes or not ct:
            return False
    return True


# --- packing -------------------------------------------------------------------
# msgpack written by hand where the relay packs per message: ``msgpack.packb``
# makes a Packer object per call, which cost more than the bytes it packed.
# The bytes are those ``packb`` writes (tests/unit/test_fast_path.py).


def str_header(size: int) -> bytes:
    """msgpack's header for a ``str`` of ``size`` UTF-8 bytes (fixstr, str 8, 16 or 32), as ``packb`` writes it."""
    if size < 32:
        return _FIXSTR[size]
    if size < 0x100:
        return b"\xd9" + size.to_bytes(1, "big")
    if size < 0x10000:
        return b"\xda" + size.to_bytes(2, "big")
    if size < 0x1_0000_0000:
        return b"\xdb" + size.to_bytes(4, "big")
    raise ValueError("unicode string is too large")  # packb's refusal (unreachable: every field is bounded)


_FIXSTR: Final = tuple(bytes([0xA0 | size]) for size in range(32))


def packed_str(text: object) -> bytes:
    """``text`` as msgpack, as ``packb`` packs it; a lone surrogate is refused as ``pack_payload`` refuses it.

    ``object``, checked here: compiled, a ``str`` annotation would raise a bare
    ``TypeError`` for anything else (and the pure build an ``AttributeError``).
    """
    if not isinstance(text, str):
        raise LocalProtocolError(ErrorCode.BAD_FIELD, "text must be a string")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(ErrorCode.BAD_FIELD, "text is not valid Unicode (lone surrogate)") from None
    return str_header(len(data)) + data


def bin_header(size: int) -> bytes:
    """msgpack's header for a ``bin`` of ``size`` bytes (bin 8, 16 or 32), as ``packb`` writes it."""
    if size < 0x100:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 0x10000:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def array_header(count: int) -> bytes:
    """msgpack's header for an array of ``count`` items (fixarray, array 16 or 32), as ``packb`` writes it."""
    if count < 16:
        return _FIXARRAY[count]
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


_FIXARRAY: Final = tuple(bytes([0x90 | count]) for count in range(16))


def _packed(value: object) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


#: A ``deliver`` map up to the sender's name (five entries; ``v``, ``t`` and the
#: ``from`` key, in ``Frame.to_wire``'s order), and the keys that follow it.
_DELIVER_START: Final = b"\x85" + b"".join(map(_packed, ("v", PROTOCOL_VERSION, "t", "deliver", "from")))
_ID_KEY: Final = _packed("id")
_CT_KEY: Final = _packed("ct")
#: An ``ack`` map up to its id (five entries: ``v``, ``t``, ``id``, ``delivered``, ``missing``).
_ACK_START: Final = b"\x85" + b"".join(map(_packed, ("v", PROTOCOL_VERSION, "t", "ack", "id")))
_DELIVERED_KEY: Final = _packed("delivered")
_MISSING_KEY: Final = _packed("missing")


class HasId(Protocol):
    """A decoded ``Send``, as ``DeliverEncoder.for_send`` reads it."""

    @property
    def id(self) -> object: ...


class DeliverEncoder:
    """Packs the ``deliver`` frames of one ``send`` for the relay's hot path.

    Every copy of a message carries the same ``from`` and ``id``; only the
    ciphertext differs, and in one ``send`` the ciphertexts are all padded to
    the same few sizes. So the frame's fixed part (length prefix, map header,
    ``v``, ``t``, ``from``, ``id``, the ``ct`` key and its ``bin`` header) is
    checked and packed once per size, and each recipient costs one
    concatenation of that prefix and its ciphertext: no msgpack call and no
    frame object per copy. The bytes are identical to
    ``encode(Deliver(sender=..., id=..., ct=ct), max_frame=...)``
    (tests/unit/test_fast_path.py).
    """

    __slots__ = ("_head", "_last_prefix", "_last_size", "_max_frame", "_prefixes")

    def __init__(
        self, sender: object, msg_id: object, *, max_frame: int = DEFAULT_MAX_FRAME, id_checked: bool = False
    ) -> None:
        # What Deliver checks of the shared fields, once (not a Deliver object
        # per send: building and unpacking one cost more than the checks).
        # ``id_checked``: only ``for_send``'s, whose id a ``Send`` has checked already.
        # ``object`` and checked (packed_str checks the id's type too): compiled, a ``str``
        # annotation would raise a bare TypeError where Deliver refuses with bad_field.
        check_str("from", sender, MAX_RAW_NAME_CHARS)
        if not id_checked:
            check_msg_id(msg_id)
        # Written out, not packed from a dict: once per send, the dict and its
        # pack were most of what an encoder cost (3.4 -> 1.3 µs).
        self._head = _DELIVER_START + packed_str(sender) + _ID_KEY + packed_str(msg_id) + _CT_KEY
        self._max_frame = max_frame
        #: Ciphertext length -> the frame's bytes before the ciphertext.
        self._prefixes: dict[int, bytes] = {}
        #: The last copy's length and prefix (-1: none yet). A send's copies are padded to the
        #: same size nearly always, and compiled, comparing two native ints is what the dict's
        #: lookup was not: a boxed length and a hash (CPyDict_GetWithNone, 263 instructions a
        #: copy of the frame's 722 under callgrind at N = 100).
        self._last_size = -1
        self._last_prefix = b""

    @classmethod
    def for_send(cls, sender: object, send: HasId, *, max_frame: int = DEFAULT_MAX_FRAME) -> DeliverEncoder:
        """The encoder for the copies of ``send``: its id is not checked again, since a ``Send``
        exists only with an id that passed ``Deliver``'s check (``send_fields_ok`` or ``__post_init__``)."""
        # Through __init__ (a class compiled with mypyc has no __new__ to call), and by name,
        # not ``cls``: compiled, that is a direct call instead of a call through the type
        # with keywords (a third of what an encoder cost). Nothing subclasses it.
        return DeliverEncoder(sender, send.id, max_frame=max_frame, id_checked=True)

    def frame(self, ct: object) -> bytes:
        # ``object``, not ``bytes``: compiled, an annotation is checked at the call, and a
        # bytearray would raise a bare TypeError instead of this refusal.
        if type(ct) is not bytes:
            raise LocalProtocolError(ErrorCode.BAD_FIELD, "ct must be non-empty binary")
        size = len(ct)
        if size == self._last_size:  # checked when first seen: never 0, within the limit
            return self._last_prefix + ct
        if not size:
            raise LocalProtocolError(ErrorCode.BAD_FIELD, "ct must be non-empty binary")
        prefix = self._prefixes.get(size)
        if prefix is None:
            prefix = self._prefixes[size] = self._prefix(size)
        self._last_size = size
        self._last_prefix = prefix
        return prefix + ct

    def _prefix(self, size: int) -> bytes:
        header = bin_header(size)
        payload_size = len(self._head) + len(header) + size
        if payload_size > self._max_frame:
            raise LocalProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame of {payload_size} bytes exceeds the limit of {self._max_frame} bytes",
            )
        return payload_size.to_bytes(LENGTH_PREFIX_SIZE, "big") + self._head + header


def encode_ack(msg_id: object, delivered: Sequence[str], missing: Sequence[str], *, max_frame: int) -> bytes:
    """The relay's ``ack`` for one ``send``, packed without an ``Ack`` object.

    Only for names and an id the relay has already bounded: ``msg_id`` and
    ``missing`` come from a decoded ``Send`` (its checks are Ack's), and
    ``delivered`` holds roster names, checked when each member joined. Bytes
    identical to ``encode(Ack(...), max_frame=...)``.
    """
    return encode_ack_packed(msg_id, packed_names(delivered), missing, max_frame=max_frame)


def encode_ack_packed(msg_id: object, delivered: bytes, missing: Sequence[str], *, max_frame: int) -> bytes:
    """``encode_ack`` with ``delivered`` packed already (``packed_names``): the relay packs a
    run's list once when its sends all reached the same members."""
    payload = _ACK_START + packed_str(msg_id) + _DELIVERED_KEY + delivered
    return encode_frame(payload + _MISSING_KEY + packed_names(missing), max_frame=max_frame)


#: ``packb([])``: an ack's ``missing`` list, nearly always.
_EMPTY_ARRAY: Final = b"\x90"
#: Each thread's own ``msgpack.Packer`` for the acks' name lists (``packer``; absent until its first ack).
_PACKERS: Final = threading.local()


def packed_names(names: Sequence[str]) -> bytes:
    """``names`` as ``msgpack.packb(list(names))`` packs them, by a packer kept for the thread.

    The lists are packed by msgpack, at C speed per name: a ``packed_str`` per name made
    the pure build's ack at N = 100 cost more than all of its copies' checks. But
    ``packb`` builds (and frees) a ``Packer`` per call, half of what packing nine names
    cost: each thread keeps one instead (a ``Packer`` holds a buffer between the
    start and the end of a ``pack``, so it is never shared between threads). An empty
    list, what ``missing`` nearly always is, is one constant byte.
    """
    if not names:
        return _EMPTY_ARRAY
    packer: msgpack.Packer | None = getattr(_PACKERS, "packer", None)
    if packer is None:
        packer = _PACKERS.packer = msgpack.Packer()
    try:
        packed: bytes = packer.pack(names if type(names) is list else list(names))
    except UnicodeEncodeError:  # a lone surrogate, as pack_payload says it (the packer empties itself)
        raise LocalProtocolError(ErrorCode.BAD_FIELD, "text is not valid Unicode (lone surrogate)") from None
    return packed
