"""The app's sending: a typed line to the presenter, then to the core off the Tk thread, or a command carried
out.
"""

from __future__ import annotations

from typing import Any

from susurro.client import commands
from susurro.client.session import SendError

from .updates import Outgoing


class Sending:
    """Sending and commands, for ``SusurroApp``."""

    def send(self, text: str, conversation: str) -> bool:
        """Compose (view rules) then send on the worker; returns whether to clear the entry."""
        if self.state is None or self.window is None or self.opened is None:
            return False
        outgoing, updates = self.state.compose(text, conversation)
        self.window.apply(updates)
        if outgoing is None:
            return False
        if not isinstance(outgoing, Outgoing):  # a command for the app: the composer is cleared
            self._command(outgoing, conversation)
            return True
        connection, state, window = self.opened.connection, self.state, self.window
        to = list(outgoing.to) if outgoing.to is not None else None
        room = outgoing.room

        def done(msg_id: str | None, error: BaseException | None) -> None:
            if error is not None or msg_id is None:
                reason = str(error) if isinstance(error, SendError) else f"{type(error).__name__}: {error}"
                window.apply(state.send_failed(outgoing.ref, reason))
            else:
                window.apply(state.sent(outgoing.ref, msg_id))

        if room is not None:
            self.worker.submit(lambda: connection.send_to_room(outgoing.text, room), done)
        else:
            self.worker.submit(lambda: connection.send_message(outgoing.text, to), done)
        return True

    def _draw(self, updates: list[Any]) -> None:
        if self.window is not None:
            self.window.apply(updates)

    def _command(self, command: commands.Command, conversation: str) -> None:
        """``/verify``, ``/verified``, ``/accept``, ``/strict``, ``/quit`` and the room commands typed in the
        composer of ``conversation``."""
        if isinstance(command, commands.RoomCommand):
            self.rooms.typed(command, conversation)
        elif isinstance(command, commands.OnMember):
            if command.command is commands.Name.ACCEPT:
                self.accept_key(command.name)
            else:  # /verify, and /verified: marking needs the number compared, so the dialog shows it
                self.verify(command.name)
        elif isinstance(command, commands.Strict) and self.opened is not None and self.state is not None:
            connection, state = self.opened.connection, self.state
            on = command.on

            def strict() -> bool:
                if on is not None:
                    connection.set_strict(on)
                return connection.session.strict

            self.worker.submit(
                strict, lambda now, _e: self._draw(state.notice(self.strings("strict_on" if now else "strict_off")))
            )
        elif isinstance(command, commands.Plain) and command.command is commands.Name.QUIT:
            self.close()
