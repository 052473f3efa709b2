"""Constants that mean the same thing agree across packages.

``crypto`` imports nothing of ours and ``protocol`` must not import
``crypto`` (decision 29), so a few limits are stated in both
``protocol/`` and ``crypto/`` (``limits.py``, and the room log's bounds in
``crypto/membership.py``). Each pair is checked here, so
a change to one side that forgets the other fails at once instead of letting
the relay accept what every client refuses (or the reverse).
"""

from __future__ import annotations

import nacl.bindings
import nacl.public
import pytest

from susurro.crypto import limits as crypto_limits
from susurro.crypto import membership
from susurro.protocol import frames, rooms
from susurro.protocol import limits as protocol_limits

PAIRS = {
    "identity key size": (protocol_limits.PUBLIC_KEY_SIZE, crypto_limits.IDENTITY_KEY_SIZE),
    "session key size": (protocol_limits.PUBLIC_KEY_SIZE, crypto_limits.SESSION_KEY_SIZE),
    "signature size": (protocol_limits.SIGNATURE_SIZE, crypto_limits.SIGNATURE_SIZE),
    "longest name": (protocol_limits.MAX_NAME_CHARS, crypto_limits.MAX_NAME_CHARS),
    "longest message id": (protocol_limits.MAX_MSG_ID_CHARS, crypto_limits.MAX_MSG_ID_CHARS),
    "most recipients": (protocol_limits.MAX_RECIPIENTS, crypto_limits.MAX_RECIPIENTS),
    "room id size": (protocol_limits.ROOM_ID_SIZE, membership.ROOM_ID_SIZE),
    "longest room log entry": (protocol_limits.MAX_ENTRY_BYTES, membership.MAX_ENTRY_BYTES),
    "longest name or label before the name rules": (frames.MAX_RAW_NAME_CHARS, membership.MAX_ENTRY_TEXT_CHARS),
    "largest room log sequence number": (rooms.MAX_SEQ, membership.MAX_SEQ),
    "message id alphabet": (frames._MSG_ID_CHARS, crypto_limits.MSG_ID_ALPHABET),
}


@pytest.mark.parametrize(("wire", "crypto"), list(PAIRS.values()), ids=list(PAIRS))
def test_protocol_and_crypto_state_the_same_limit(wire: int, crypto: int) -> None:
    assert wire == crypto


def test_crypto_sizes_are_libsodiums() -> None:
    assert crypto_limits.IDENTITY_KEY_SIZE == nacl.bindings.crypto_sign_PUBLICKEYBYTES
    assert crypto_limits.SIGNATURE_SIZE == nacl.bindings.crypto_sign_BYTES
    assert crypto_limits.SESSION_KEY_SIZE == nacl.public.PublicKey.SIZE


def test_the_relay_default_for_recipients_is_within_the_absolute_limit() -> None:
    assert 0 < protocol_limits.DEFAULT_MAX_RECIPIENTS <= protocol_limits.MAX_RECIPIENTS
