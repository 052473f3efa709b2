"""Sizes and bounds that ``crypto`` checks, in one place.

Key and signature sizes are libsodium's. The longest name, the longest
message id and the most recipients of one message are the wire protocol's
as well: ``crypto`` imports nothing of ours (and ``protocol`` must not import
``crypto``), so ``protocol/limits.py`` states them too, and
``tests/unit/test_limits_agree.py`` fails if a pair differs (decision 29).
"""

from __future__ import annotations

import nacl.bindings
import nacl.public

#: An Ed25519 identity public key, the seed a key file holds, and a signature.
IDENTITY_KEY_SIZE: int = nacl.bindings.crypto_sign_PUBLICKEYBYTES
SEED_SIZE: int = nacl.bindings.crypto_sign_SEEDBYTES
SIGNATURE_SIZE: int = nacl.bindings.crypto_sign_BYTES
#: An X25519 public key: a session key, a prekey, an ephemeral key.
SESSION_KEY_SIZE: int = nacl.public.PublicKey.SIZE

#: A member name, in characters (names are NFKC-normalized before they are
#: signed, sealed or pinned). The wire's ``MAX_NAME_CHARS``.
MAX_NAME_CHARS = 32
#: A message id, in characters: the same string as the ``send`` frame's ``id``.
MAX_MSG_ID_CHARS = 64
#: What a message id may hold, as the ``send`` frame's ``id``: it is echoed in receipts, delivery
#: reports and warnings, so a control or bidi character in it would reach a terminal.
MSG_ID_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")
#: Recipients of one sealed message; no relay may allow more per ``send``.
MAX_RECIPIENTS = 1024
