"""The presenter's answer to a typed line: a message to send, a command, or a refusal shown here."""

from __future__ import annotations

from susurro.client import commands
from susurro.client.link import LinkState
from susurro.client.printable import printable

from . import room_view
from .panes import ROOM, _Sent, safe_lines, short_fp
from .room_view import is_room_key
from .updates import Outgoing, Update
from .views import Views


class Composing(Views):
    """What the user typed, and the app's own lines."""

    def compose(self, raw: str, conversation: str) -> tuple[Outgoing | commands.Command | None, list[Update]]:
        """Turn what the user typed in ``conversation`` into a message to send, a command, or a refusal.

        Lines are parsed by ``commands.parse``, the terminal client's parser:
        ``/msg NAME TEXT`` opens (and sends in) the direct conversation with
        NAME, ``/who`` and ``/help`` answer here, and ``/verify``,
        ``/verified``, ``/accept``, ``/strict`` and ``/quit`` come back as the
        command for the app to carry out. ``//`` sends a line that starts with
        ``/``. Refusals the view can decide (not connected, unknown member,
        changed key) never reach the core.
        """
        s = self.strings
        command = commands.parse(raw.strip("\n"))
        if command is None:
            return None, []
        in_room = conversation == ROOM or is_room_key(conversation)
        to: tuple[str, ...] | None = None if in_room else (conversation,)
        room: bytes | None = None
        updates: list[Update] = []
        origin = conversation  # refusals are shown where the user typed
        if isinstance(command, commands.Unknown):
            return None, self._error(origin, s("unknown_command", command=printable(command.word)))
        if isinstance(command, commands.Usage):
            if command.command is commands.Name.MSG:
                return None, self._error(origin, s("usage_msg"))
            return None, self._error(origin, s("usage", usage=s.usage(command.usage)))
        if isinstance(command, commands.Plain):
            if command.command is commands.Name.WHO:  # answered here; returned so the composer clears
                return command, self.who(origin)
            if command.command is commands.Name.HELP:
                return command, self._help(origin)
            return command, []  # /quit
        if isinstance(command, commands.OnMember):
            if command.name not in self.members:
                return None, self._error(origin, s("not_in_room", name=printable(command.name)))
            return command, []
        if isinstance(command, commands.Strict):
            return command, []
        if isinstance(command, commands.RoomCommand):  # checked against the log here, carried out by the app
            here = self.rooms.get(origin) if is_room_key(origin) else None
            refusal = room_view.check(s, command, here, self.identity_key)
            if refusal is not None:
                return None, self._error(origin, refusal)
            said = room_view.answer(s, command, here, self.rooms.values())
            return command, [update for text in said for update in self._notice(origin, text)]
        if isinstance(command, commands.Direct):
            conversation, to, text = command.name, (command.name,), command.text
        else:
            text = command.text
        if to is None and is_room_key(conversation):
            info = self.rooms.get(conversation)
            if info is None or not info.joined:
                return None, self._error(origin, s("room_not_member", room=self._label(conversation)))
            room = info.room_id
        # Someone away can still be written to in an open conversation: the core seals it to their
        # prekeys if they left some, or says why not.
        if to is not None and to[0] not in self.members and to[0] not in self.tabs:
            return None, self._error(origin, s("not_in_room", name=printable(to[0])))
        if self.connection not in (LinkState.JOINED, LinkState.RECONNECTING):  # reconnecting: the core holds it
            return None, self._error(origin, s("not_sent", reason=self.send_block_reason()))
        if to is not None and to[0] in self.blocked:
            return None, self._error(origin, s("not_sent", reason=s("reason_key_changed", name=to[0])))
        if conversation != self.selected:
            updates += self.select(conversation)
        ref = f"m{next(self._refs)}"
        self._sent[ref] = _Sent(conversation=conversation)
        note = s("sending") if self.connection is LinkState.JOINED else s("held_note")
        updates += self._line(conversation, "own", safe_lines(text), sender=self.name, ref=ref, note=note)
        return Outgoing(ref=ref, text=text, to=to, conversation=conversation, room=room), updates

    def who(self, conversation: str = ROOM) -> list[Update]:
        """``/who``: everyone here, one line each, with the fingerprint and trust in words."""
        s = self.strings
        out: list[Update] = []
        for row in self.roster().rows:
            out += self._notice(
                conversation,
                s("who_line", name=row.label, fingerprint=short_fp(row.fingerprint), trust=row.trust_label),
            )
        return out

    def _help(self, conversation: str) -> list[Update]:
        s = self.strings
        out: list[Update] = self._notice(conversation, s("help_intro"))
        for name, (usage, _what) in commands.USAGE.items():
            out += self._notice(conversation, s("help_line", usage=s.usage(usage), what=s(f"help_{name.value}")))
        for word, usage in commands.ROOM_USAGE.items():
            out += self._notice(conversation, s("help_line", usage=s.usage(usage), what=s(f"help_{word.value}")))
        return out

    def notice(self, text: str, conversation: str = ROOM) -> list[Update]:
        """A line of the app's own (a relay started here, a key created)."""
        return self._notice(conversation, text)

    def error(self, text: str, conversation: str = ROOM) -> list[Update]:
        """A refusal the app learned of later (a trust action, a failed reconnect)."""
        return self._error(conversation, text)
