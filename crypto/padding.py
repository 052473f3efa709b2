"""Length padding, so ciphertext sizes reveal only a coarse size class.

Uses the Padmé scheme (Nikitin et al., PETS 2019): a length L is rounded up so
that only O(log log L) bits of it remain, with at most about 12 % overhead.
Below 256 bytes everything pads to 256. The padded block is
``u32 length || data || zeros`` and unpadding checks every byte.
"""

from __future__ import annotations

import struct

from .errors import MalformedMessage

_LEN = struct.Struct(">I")
MIN_PADDED = 256


def padded_length(length: int) -> int:
    """The Padmé bucket for a block of ``length`` bytes (at least ``MIN_PADDED``)."""
    if length <= MIN_PADDED:
        return MIN_PADDED
    exponent = length.bit_length() - 1
    significant = exponent.bit_length()
    low_bits = exponent - significant
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def pad(data: bytes, *more: bytes) -> bytes:
    """Pad ``data`` (followed by ``more``, if given: padded as one, copied once)."""
    length = len(data) + sum(len(part) for part in more)
    size = _LEN.size + length
    return b"".join((_LEN.pack(length), data, *more, bytes(padded_length(size) - size)))


#: Where the data of a padded block starts: after its length.
DATA_AT = _LEN.size


def unpad(block: bytes) -> bytes:
    return block[DATA_AT : unpadded_end(block)]


def unpadded_end(block: bytes) -> int:
    """Where the data of a padded block ends (it starts at ``DATA_AT``), if every check of ``unpad``
    passes; for a reader of the data in place, without a copy of it."""
    if len(block) < _LEN.size:
        raise MalformedMessage("padded block too short")
    length: int = _LEN.unpack_from(block)[0]
    end = _LEN.size + length
    if end > len(block):
        raise MalformedMessage("padding length points past the block")
    if block.count(0, end) != len(block) - end:  # in C, not one Python int per byte
        raise MalformedMessage("padding bytes are not zero")
    return end
