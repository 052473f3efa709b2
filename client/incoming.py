"""Messages from peers: opened, checked, and turned into ``Message`` or a warning.

A ``deliver`` becomes a ``Message`` only if it decrypts with one of our
session keys, its signature verifies under the sender's identity key, it is
addressed to us, it is not a replay, and its counter is in order (a gap is
reported beside it). The signed recipient list is compared with the keys we
hold for the same names, which shows a key the relay substituted for
someone else.
"""

from __future__ import annotations

from susurro.crypto import CryptoError, DecryptFailed, OpenedMessage, ReplayGuard, fingerprint_bytes, open_message
from susurro.protocol import Deliver

from . import events as ev
from .admission import Members, Peer
from .counters import conversation_of
from .events import WarningKind
from .rotation import OwnSessionKeys


class Incoming:
    def __init__(
        self, own_name: str, own_identity_key: bytes, keys: OwnSessionKeys, members: Members, replay: ReplayGuard
    ) -> None:
        self._own_name = own_name
        self._own_identity_key = own_identity_key
        self._keys = keys
        self._members = members
        self._replay = replay

    def deliver(self, deliver: Deliver) -> list[ev.Event]:
        peer = self._members.get(deliver.sender)
        if peer is None:
            return [
                ev.Warning(
                    kind=WarningKind.UNKNOWN_SENDER,
                    detail=f"a message claimed to be from {deliver.sender!r}, who is not in the room",
                    sender=deliver.sender,
                )
            ]
        try:
            opened = self._open(deliver, peer)
            stream = (peer.identity_key, conversation_of(opened.inner.direct, opened.inner.room))
            check = self._replay.check(peer.session_key, peer.name, opened.inner.msg_id, opened.counter, stream)
        except CryptoError as exc:  # each failed check, Replay included, has its own kind
            return [ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=str(exc), sender=peer.name)]
        out: list[ev.Event] = []
        if check.missed:
            out.append(
                ev.Warning(
                    kind=WarningKind.GAP,
                    detail=f"{check.missed} message(s) from {peer.name} addressed to you never arrived",
                    sender=peer.name,
                )
            )
        inner = opened.inner
        out.extend(self._cross_check_recipients(peer.name, inner.to))
        out.append(
            ev.Message(
                sender=peer.name,
                text=inner.body,
                to=inner.recipient_names,
                direct=inner.direct,
                msg_id=inner.msg_id,
                sent_at=inner.sent_at,
                trust=peer.trust,
            )
        )
        return out

    def _open(self, deliver: Deliver, peer: Peer) -> OpenedMessage:
        """Open with our current session key, or a previous one within its grace period."""
        keys = self._keys.opening_boxes()
        for index, boxes in enumerate(keys):
            try:
                return open_message(
                    boxes=boxes,
                    ciphertext=deliver.ct,
                    relay_sender=deliver.sender,
                    sender_identity_key=peer.identity_key,
                    sender_session_key=peer.session_key,
                    own_name=self._own_name,
                    own_identity_key=self._own_identity_key,
                )
            except DecryptFailed:
                if index == len(keys) - 1:
                    raise
        raise AssertionError("unreachable")

    def _cross_check_recipients(self, sender: str, to: tuple[tuple[str, bytes], ...]) -> list[ev.Event]:
        """Compare the signed recipient list with the keys we hold for the same names.

        The sender signed which identity key it encrypted to for each member.
        If that differs from the key we hold for the member, the relay gave
        one of us a substituted key: someone may be reading along.
        """
        out: list[ev.Event] = []
        for name, fp in to:
            peer = self._members.get(name)
            if peer is not None and fingerprint_bytes(peer.identity_key) != fp:
                out.append(
                    ev.Warning(
                        kind=WarningKind.RECIPIENT_KEY_MISMATCH,
                        detail=f"{sender} encrypted this message to a different identity key for {name} than the "
                        f"one you have ({peer.fingerprint}); one of you was given a substituted key",
                        sender=sender,
                    )
                )
        return out
