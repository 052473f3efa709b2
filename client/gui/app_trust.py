"""The app's trust actions: verify, mark verified, accept a changed key."""

from __future__ import annotations

from susurro.crypto.trust import TrustState

from .verify_dialog import VerifyDialog


class TrustFlow:
    """Trust actions, for ``SusurroApp``."""

    def verify(self, name: str) -> None:
        """Ask the core for the safety number (on the worker), then show the dialog."""
        if self.opened is None or self.state is None or name == self.state.name:
            return
        member = self.state.members.get(name)
        if member is None:
            return
        connection = self.opened.connection
        state, window = self.state, self.window

        def show(number: str | None, error: BaseException | None) -> None:
            if window is None or not window.top.winfo_exists():
                return
            self.verify_dialog = VerifyDialog(
                window.top,
                self.strings,
                name=name,
                safety_number=number if error is None else None,
                their_fingerprint=member.fingerprint,
                own_fingerprint=state.fingerprint,
                verified=member.trust is TrustState.VERIFIED,
                on_mark_verified=self.mark_verified,
                shields=window.shields,
            )

        # TrustError (the member just left) leaves the dialog without a number, saying so.
        self.worker.submit(lambda: connection.safety_number(name), show)

    # Trust actions: the core answers with events (``TrustUpdated``) on its queue.
    def mark_verified(self, name: str) -> None:
        if self.opened is not None:
            connection = self.opened.connection
            self.worker.submit(lambda: connection.mark_verified(name), self._trust_done)

    def accept_key(self, name: str) -> None:
        if self.opened is not None:
            connection = self.opened.connection
            self.worker.submit(lambda: connection.accept_key(name), self._trust_done)

    def _trust_done(self, _result: object, error: BaseException | None) -> None:
        """A refused trust action (the member left, nothing to accept) is said, not swallowed."""
        if error is not None and self.window is not None:
            if self.state is not None:
                self.window.apply(self.state.error(self.strings.reason(str(error))))
