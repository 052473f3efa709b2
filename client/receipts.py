"""Signed receipts, both ways (sans-I/O): confirming what we showed, and reading our senders' word.

``Receipts`` is the part of ``mailbox.Mailbox`` that owns them:

- every message shown (online or from the mailbox) is confirmed to its
  sender by a signed receipt (``susurro/receipt/v1``), one per sender per
  read, sealed to the sender's signed prekey (fetched once, then again after
  ``RECEIPT_PREKEY_REFRESH_MS``) and posted to their mailbox, so "delivered"
  is the recipient's word and not the relay's;
- a ``receipt`` item in our own mailbox becomes a ``Receipt`` event once it
  verifies under the pinned key of whoever it claims to be from.

A sender who never published prekeys on this relay (an older client) gets
no receipts this session: one fetch, not one per read.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

from susurro.crypto import CryptoError, IdentityKey, IdentityPublicKey
from susurro.crypto.errors import BadPrekey, MalformedMessage
from susurro.crypto.fingerprint import fingerprint_bytes
from susurro.crypto.prekeys import (
    MAX_RECEIPT_IDS,
    SIGNED_PREKEY_ROTATION,
    CheckedBundle,
    EnvelopeKind,
    Receipt,
    check_bundle,
    open_receipt,
    receipt_block,
    seal_to_prekey,
)
from susurro.crypto.trust import TrustStore
from susurro.protocol import BundleFetch, Bundles, Frame, Mail, MailKind, Post

from . import events as ev
from .events import WarningKind
from .mailstate import MailState
from .prekeyring import Duplicate, PrekeyRing
from .prekeywire import bundle_from_wire

#: Senders, fetches and posts kept at once for receipts (older ones are dropped first).
MAX_RECEIPT_SENDERS = 1_000
#: A sender's signed prekey fetched for receipts is used this long, then fetched again: the owner
#: rotates it every 7 days and deletes a replaced one 30 days later, so a copy kept for a long-lived
#: session would make every receipt unreadable (review S4 finding 9).
RECEIPT_PREKEY_REFRESH_MS = SIGNED_PREKEY_ROTATION * 1000


class Receipts:
    """Receipts we owe for what was shown, and the ones our senders mailed us."""

    def __init__(
        self,
        identity: IdentityKey,
        name: str,
        trust: TrustStore,
        ring: PrekeyRing,
        state: MailState,
        persist: Callable[[], None],
    ) -> None:
        """``ring`` opens receipt items; ``state`` learns each sender's newest prekey and what they confirmed."""
        self._identity = identity
        self._name = name
        self._trust = trust
        self._ring = ring
        self._state = state
        self._persist = persist
        # Ids shown per sender, each sender's signed prekey (fetched once), fetches and posts in flight.
        self._shown: OrderedDict[bytes, tuple[str, list[str]]] = OrderedDict()
        self._signed_prekeys: dict[bytes, CheckedBundle] = {}
        self._receipt_fetches: dict[str, bytes] = {}
        #: When each sender's signed prekey for receipts was asked for (ms), to fetch it again when old.
        self._receipt_fetched_at: dict[bytes, int] = {}
        self._receipt_posts: OrderedDict[str, None] = OrderedDict()
        #: Senders with no prekeys on this relay (an older client): no receipts to them this session.
        self._no_receipts: set[bytes] = set()

    # --- what we owe ----------------------------------------------------------------

    def shown(self, sender: str, identity_key: bytes, msg_id: str) -> None:
        """A message from ``sender`` was shown: confirm it to them with the next receipt."""
        if identity_key in self._no_receipts:
            return
        name, ids = self._shown.pop(identity_key, (sender, []))
        ids.append(msg_id)
        self._shown[identity_key] = (name, ids[-MAX_RECEIPT_IDS:])
        while len(self._shown) > MAX_RECEIPT_SENDERS:
            self._shown.popitem(last=False)

    def due(self, now_ms: int) -> list[Frame]:
        """One signed receipt per sender for what was shown since the last call (after fetching their prekey)."""
        frames: list[Frame] = []
        for identity_key in list(self._shown):
            name, ids = self._shown[identity_key]
            bundle = self._signed_prekeys.get(identity_key)
            if bundle is not None and now_ms - self._receipt_fetched_at.get(identity_key, now_ms) >= (
                RECEIPT_PREKEY_REFRESH_MS
            ):
                del self._signed_prekeys[identity_key]  # likely replaced by now: ask for the current one
                bundle = None
            if bundle is None:
                if identity_key not in self._receipt_fetches.values():
                    fetch_id = "r" + secrets.token_hex(8)
                    self._receipt_fetches[fetch_id] = identity_key
                    self._receipt_fetched_at[identity_key] = now_ms
                    frames.append(BundleFetch(id=fetch_id, keys=(identity_key,), one_time=False))
                continue
            del self._shown[identity_key]
            receipt = Receipt(
                sender=self._name,
                recipient=name,
                recipient_fingerprint=fingerprint_bytes(IdentityPublicKey(identity_key)),
                msg_ids=tuple(ids),
                at=now_ms,
            )
            try:
                envelope = seal_to_prekey(
                    self._identity, bundle, receipt_block(self._identity, receipt), EnvelopeKind.RECEIPT
                )
            except CryptoError:
                continue  # their prekey went bad: no receipt, they see the message as waiting
            post_id = "r" + secrets.token_hex(8)
            self._receipt_posts[post_id] = None
            while len(self._receipt_posts) > MAX_RECEIPT_SENDERS:
                self._receipt_posts.popitem(last=False)
            frames.append(Post(id=post_id, kind=MailKind.RECEIPT.value, to={identity_key: envelope}))
        return frames

    def asked(self, fetch_id: str) -> bool:
        """``fetch_id`` is a bundle fetch of ours, for a receipt."""
        return fetch_id in self._receipt_fetches

    def on_bundle(self, frame: Bundles) -> list[ev.Event]:
        """The answer to ``asked(frame.id)``: the sender's signed prekey, checked against their pinned key."""
        identity_key = self._receipt_fetches.pop(frame.id)
        if not frame.bundles:  # they never published prekeys here: stop asking (one fetch, not one per read)
            self._no_receipts.add(identity_key)
            self._shown.pop(identity_key, None)
            return []
        for wire in frame.bundles:
            try:
                checked = check_bundle(
                    bundle_from_wire(wire), identity_key, newest_signed=self._state.newest.get(identity_key)
                )
            except BadPrekey as exc:  # PrekeyKeyChanged included: no receipt to a key we did not pin
                self._no_receipts.add(identity_key)
                self._shown.pop(identity_key, None)
                return [ev.Warning(kind=WarningKind.BAD_PREKEY, detail=str(exc), sender=wire.name)]
            self._state.newest.saw(identity_key, checked.signed)
            self._signed_prekeys[identity_key] = checked
        return []

    def posted(self, post_id: str) -> bool:
        """The relay's answer to ``post_id`` was for a receipt of ours (nothing to report to the user)."""
        if post_id not in self._receipt_posts:
            return False
        del self._receipt_posts[post_id]
        return True

    # --- what our senders confirmed -----------------------------------------------------

    def on_receipt(self, frame: Mail) -> list[ev.Event]:
        """A ``receipt`` item of our mailbox: a ``Receipt`` event if it is the sender's own word."""
        contact = self._trust.contact(frame.sender)
        if contact is None:
            detail = f"a receipt claimed to be from {frame.sender!r}, whom you never wrote to"
            return [ev.Warning(kind=WarningKind.UNKNOWN_SENDER, detail=detail, sender=frame.sender)]
        own_fingerprint = fingerprint_bytes(self._identity.public)

        def genuine(kind: EnvelopeKind, block: bytes) -> Receipt:
            if kind is not EnvelopeKind.RECEIPT:  # the kind is hashed into the key: the relay relabelled it
                raise MalformedMessage(f"the relay labelled a {kind.name.lower()} as a receipt")
            return open_receipt(
                block,
                relay_sender=frame.sender,
                sender_identity_key=contact.identity_key,
                own_name=self._name,
                own_fingerprint=own_fingerprint,
            )

        try:
            receipt = self._ring.open_with(frame.ct, contact.identity_key, genuine)
        except Duplicate:
            return []
        except CryptoError as exc:
            detail = f"a receipt from {frame.sender!r} was refused: {exc}"
            return [ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=detail, sender=frame.sender)]
        confirmed = self._state.deliveries.receipt(contact.identity_key, receipt.msg_ids)
        if confirmed:
            self._persist()  # before the receipt item is confirmed: "delivered" must outlive a restart
        return [ev.Receipt(sender=contact.name, msg_ids=receipt.msg_ids, waited=confirmed)]
