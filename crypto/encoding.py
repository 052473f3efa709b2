"""Domain-separated, unambiguous byte strings for signing.

Every signature in Susurro is over ``purpose || 0x00 || msgpack([fields...])``.
The purpose names what is being signed and its version, so a signature made
for one purpose can never be replayed as another (a join proof is not a
certificate, a certificate is not a message). msgpack length-prefixes every
field, so no two field lists encode to the same bytes.
"""

from __future__ import annotations

import msgpack

CERT_PURPOSE = b"susurro/session-key/v1"
JOIN_PURPOSE = b"susurro/join/v1"
MESSAGE_PURPOSE = b"susurro/msg/v1"


def signing_payload(purpose: bytes, *fields: bytes | str | int) -> bytes:
    """The exact bytes signed for ``purpose`` over ``fields``."""
    if b"\x00" in purpose:
        raise ValueError("a purpose must not contain NUL")
    packed: bytes = msgpack.packb(list(fields), use_bin_type=True)
    return purpose + b"\x00" + packed
