"""Safety numbers: what two people compare to know no one sits between them.

A safety number is pairwise and order-independent: Alice and Bob see the
same 60 digits. Each person contributes a 30-digit half derived only from
their identity key (BLAKE2b, personalised for this purpose), and the two
halves are shown in sorted order. It does not depend on session keys, so it
stays the same across sessions and key rotations, and each half is one
person's "code": if only one half differs, the reader knows whose key changed.

30 digits carry about 99 bits, so finding another identity key whose half
matches a given one is a second-preimage search of about 2**99 hashes; no key
stretching is needed at that size (Signal stretches because its halves also
cover a phone number).
"""

from __future__ import annotations

import nacl.encoding
import nacl.hash

from .errors import BadPublicKey
from .keytypes import IdentityPublicKey
from .limits import IDENTITY_KEY_SIZE

_PERSON = b"susurro/safety1"  # BLAKE2b personalisation: at most 16 bytes
_GROUPS_PER_HALF = 6
_GROUP_DIGITS = 5
_BYTES_PER_GROUP = 5  # 2**40 values reduced mod 10**5: bias below 1e-7


def _half(identity_public: bytes) -> tuple[str, ...]:
    if not isinstance(identity_public, bytes) or len(identity_public) != IDENTITY_KEY_SIZE:
        raise BadPublicKey(f"an identity key is {IDENTITY_KEY_SIZE} bytes")
    digest = nacl.hash.blake2b(
        identity_public,
        digest_size=_GROUPS_PER_HALF * _BYTES_PER_GROUP,
        person=_PERSON,
        encoder=nacl.encoding.RawEncoder,
    )
    groups = []
    for i in range(_GROUPS_PER_HALF):
        chunk = int.from_bytes(digest[i * _BYTES_PER_GROUP : (i + 1) * _BYTES_PER_GROUP], "big")
        groups.append(f"{chunk % 10**_GROUP_DIGITS:0{_GROUP_DIGITS}d}")
    return tuple(groups)


def safety_number(identity_a: IdentityPublicKey, identity_b: IdentityPublicKey) -> str:
    """The 12 groups of 5 digits that ``a`` and ``b`` compare, space separated."""
    first, second = sorted((_half(identity_a), _half(identity_b)))
    return " ".join(first + second)


def safety_number_rows(number: str, per_row: int = 4) -> list[str]:
    """The number laid out in rows (3 rows of 4 groups by default) for display."""
    groups = number.split(" ")
    return [" ".join(groups[i : i + per_row]) for i in range(0, len(groups), per_row)]
