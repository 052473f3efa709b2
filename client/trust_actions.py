"""What the user decides about a member's key: compare safety numbers, verify, accept.

The trust store pins what the relay announced; these are the user's acts on
top of it (``/verify``, ``/verified``, ``/accept`` and the GUI's buttons),
and the pins written when the user writes to someone. Each refusal is a
``TrustError`` with the reason; each decision is a ``TrustUpdated`` event.
"""

from __future__ import annotations

from collections.abc import Callable

from susurro.crypto import IdentityPublicKey
from susurro.crypto.safety import safety_number
from susurro.crypto.trust import TrustState, TrustStore, TrustStoreError

from . import events as ev
from .admission import Members
from .errors import TrustError
from .events import WarningKind
from .peer import Peer


class TrustActions:
    def __init__(self, own_identity_key: IdentityPublicKey, trust: TrustStore, members: Members) -> None:
        self._own_identity_key = own_identity_key
        self.trust = trust
        self._members = members
        self._said_save_failed = False

    def remember(self, peers: list[Peer]) -> None:
        """The user wrote to these people: pin any not yet remembered, from the reserve the relay cannot spend.

        Saved with the next ``tick`` or ``receive_data``; a store full even in
        its reserve leaves them shown as new, as before.
        """
        for peer in peers:
            if peer.trust is TrustState.NEW and self.trust.contact(peer.name) is None:
                try:
                    self.trust.remember(peer.name, peer.identity_key, peer.issued_at)
                except TrustStoreError:
                    return

    def _present(self, name: str) -> Peer:
        peer = self._members.get(name)
        if peer is None:
            raise TrustError(f"{name} is not in the room")
        return peer

    def safety_number(self, name: str) -> str:
        """The safety number to compare with ``name`` (12 groups of 5 digits)."""
        return safety_number(self._own_identity_key, self._present(name).identity_key)

    def mark_verified(self, name: str, compared: str | None = None) -> list[ev.Event]:
        """The user compared safety numbers with ``name``: pin its current key as verified.

        ``compared`` is the safety number the user was shown and compared;
        if the key changed since (the relay swapped it in between), this is
        refused rather than verifying a key the user never saw. Views always
        pass it. For a changed key, verifying also accepts it: comparing the
        number is the check that accepting asks for.
        """
        peer = self._present(name)
        if compared is not None and compared != safety_number(self._own_identity_key, peer.identity_key):
            raise TrustError(
                f"{name}'s identity key is not the one whose safety number you compared; "
                f"compare the numbers again (/verify {name})"
            )
        self._trust_action(lambda: self.trust.mark_verified(peer.name, peer.identity_key, peer.issued_at))
        peer.trust = TrustState.VERIFIED
        return [ev.TrustUpdated(member=peer.info()), *self.save()]

    def accept_key(self, name: str) -> list[ev.Event]:
        """Accept ``name``'s changed identity key (pinned, not verified) so messages reach it again."""
        peer = self._present(name)
        if peer.trust is not TrustState.CHANGED:
            raise TrustError(f"{name}'s identity key has not changed; there is nothing to accept")
        self._trust_action(lambda: self.trust.accept(peer.name, peer.identity_key, peer.issued_at))
        peer.trust = TrustState.PINNED
        return [ev.TrustUpdated(member=peer.info()), *self.save()]

    @staticmethod
    def _trust_action(action: Callable[[], None]) -> None:
        try:
            action()
        except TrustStoreError as exc:
            raise TrustError(str(exc)) from None

    def save(self) -> list[ev.Event]:
        """Persist pins; a failure is reported once and chatting goes on (pins stay in memory)."""
        try:
            self.trust.save()
        except TrustStoreError as exc:
            if self._said_save_failed:
                return []
            self._said_save_failed = True
            return [ev.Warning(kind=WarningKind.TRUST_STORE, detail=str(exc))]
        return []
