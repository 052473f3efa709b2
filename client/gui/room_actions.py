"""The window's room actions: the dialogs and typed commands collect, the core signs and sends.

Every action is the core call the terminal's room commands make
(``RoomBook.create``, ``RoomBook.change``, ``RoomBook.fetch``/``find``
through ``RelayConnection.room_request``), run on the worker thread; the
answer comes back as the core's room events. What the verified log already
refuses (a non-admin removing someone, a name that is no member) is said
before the core is asked (``room_view.check``); the core checks again.
Removing someone, making someone an admin and leaving ask first, in
people's words (``room_dialogs.ConfirmDialog``); what is typed was asked for
in words already, so ``/forget-room`` and ``/resume-room`` do not ask again
(nor does the terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from susurro.client import commands
from susurro.client.commands import RoomWord
from susurro.client.printable import printable
from susurro.client.room_events import RoomAlert, RoomEvent, RoomReady, RoomWarning
from susurro.client.room_invites import AmbiguousInvitation
from susurro.crypto import EntryKind, RoomLogError, RoomPolicy, RoomState
from susurro.protocol import BadName, name_key, normalize_name

from . import room_view
from .panes import ROOM
from .room_dialogs import ConfirmDialog, InviteDialog, NewRoomDialog
from .room_view import RoomInfo, room_key

if TYPE_CHECKING:
    from susurro.client import events as ev

    from .app import SusurroApp

#: The log entry each member action signs.
_KINDS = {RoomWord.REMOVE: EntryKind.REMOVE, RoomWord.PROMOTE: EntryKind.PROMOTE}


class RoomActions:
    """One signed-in app's room actions (``app.rooms``); every method runs on the Tk thread."""

    def __init__(self, app: SusurroApp) -> None:
        self.app = app
        self.dialog: NewRoomDialog | InviteDialog | ConfirmDialog | None = None
        #: Labels typed with /join whose log we asked for: once verified, we go there (adding ourselves if open).
        self.joining: set[str] = set()
        #: Rooms to show as soon as the view has them (the core verified them before the view heard).
        self._going: set[bytes] = set()

    # --- dialogs -------------------------------------------------------------------------

    def _open(self, dialog: NewRoomDialog | InviteDialog | ConfirmDialog) -> None:
        self.close_dialog()
        self.dialog = dialog

    def close_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.destroy()
            self.dialog = None

    def new_room(self) -> None:
        app = self.app
        if app.window is not None and app.state is not None:
            self._open(NewRoomDialog(app.window.top, app.strings, self.create))

    def invite(self, room: str) -> None:
        app = self.app
        if app.window is None or app.state is None or room not in app.state.rooms:
            return
        info = app.state.rooms[room]
        self._open(
            InviteDialog(
                app.window.top,
                app.strings,
                info.display,
                app.state.invite_candidates(room),
                lambda name: self.invite_name(room, name),
            )
        )

    def ask(self, word: RoomWord, room: str, name: str = "") -> None:
        """The member list's Remove, Make admin and Leave room: ask first, then do it (or say why not)."""
        app = self.app
        info = self._room(room)
        if app.window is None or app.state is None or info is None:
            return
        refusal = room_view.check(app.strings, commands.RoomCommand(word=word, arg=name), info, app.state.identity_key)
        if refusal is not None:
            app._draw(app.state.error(refusal, room))
            return
        title, question, ok = room_view.confirm_words(app.strings, word, info, name)
        self._open(
            ConfirmDialog(app.window.top, app.strings, title, question, ok, lambda: self._carry_out(word, info, name))
        )

    # --- what they do -----------------------------------------------------------------------

    def create(self, label: str, open_room: bool) -> str | None:
        """Ask the core to create room ``label``; a refusal in words, or None (the window switches to
        the room when the relay confirms it: ``RoomCreated``)."""
        s, app = self.app.strings, self.app
        if app.opened is None or app.state is None:
            return s("not_sent", reason=s("reason_disconnected"))
        if not label:
            return s("err_room_label_empty")
        try:
            if normalize_name(label) != label:
                return s("err_room_label")
        except BadName:
            return s("err_room_label")
        policy = RoomPolicy.OPEN if open_room else RoomPolicy.INVITE
        connection = app.opened.connection
        app.worker.submit(
            lambda: connection.room_request(lambda book, now: book.create(label, policy, now)),
            lambda _r, error: self._done(error, ROOM),
        )
        return None

    def invite_name(self, room: str, name: str) -> str | None:
        """Add ``name`` to ``room`` with the key pinned for them; a refusal in words, or None."""
        s, app = self.app.strings, self.app
        if app.opened is None or app.state is None:
            return s("not_sent", reason=s("reason_disconnected"))
        if not name:
            return s("err_invite_unknown", name="?")
        refusal = app.state.invite_check(room, name)
        if refusal is not None:
            return refusal
        connection = app.opened.connection
        # Only a key we pinned: an invitation never takes the relay's word for who NAME is.
        contact = connection.session.trust.contact(name)
        if contact is None:
            return s("err_invite_unknown", name=name)
        self._sign(app.state.rooms[room].room_id, EntryKind.ADD, contact.name, contact.identity_key, room)
        return None

    def typed(self, command: commands.RoomCommand, conversation: str) -> None:
        """A room command typed in ``conversation`` (the presenter checked it and answered /rooms, /members)."""
        app = self.app
        word = command.word
        if word is RoomWord.CREATE:
            refusal = self.create(command.arg, command.open)
        elif word is RoomWord.JOIN:
            refusal = self.join(command.arg)
        elif word is RoomWord.INVITE:
            refusal = self.invite_name(conversation, command.arg)
        elif word is RoomWord.FORGET_ROOM:
            refusal = self.forget_room(command.arg, conversation)
        elif word is RoomWord.RESUME_ROOM:
            refusal = self.resume_room(command.arg, conversation)
        elif word is RoomWord.INVITES:
            self._list_invitations(conversation)
            refusal = None
        elif word in (RoomWord.ACCEPT_INVITE, RoomWord.DECLINE_INVITE):
            refusal = self._answer_typed(command.arg, word is RoomWord.ACCEPT_INVITE)
        elif word in (RoomWord.LEAVE, RoomWord.REMOVE, RoomWord.PROMOTE):
            info = self._room(conversation)
            refusal = None
            if info is not None:  # typed, so asked for in words already: no second question
                self._carry_out(word, info, command.arg)
        else:
            refusal = None
        if refusal is not None and app.state is not None:
            app._draw(app.state.error(refusal, conversation))

    def join(self, label: str) -> str | None:
        """``/join LABEL``: go to the room this label names here, joining it if it is open; a refusal or None.

        A label not verified in this run is asked for by the room id it was pinned to (an earlier run),
        else by the label; ``seen`` goes on once its log is verified.
        """
        app = self.app
        if app.opened is None or app.state is None:
            return app.strings("not_sent", reason=app.strings("reason_disconnected"))
        connection = app.opened.connection
        book = connection.session.rooms  # read without the lock, as the view reads rooms (``app._room_of``)
        state = book.state(label)
        if state is not None:
            return self._enter(state.room_id)
        try:
            invited = self._invitation(label) is not None
        except AmbiguousInvitation:
            invited = True  # the answer names both
        if invited:  # someone added us to it: /join is the user's yes
            return self._answer_typed(label, True)
        self.joining.add(name_key(label))
        pinned = book.pinned_id(label)
        if pinned is not None:
            request = connection.room_request
            app.worker.submit(
                lambda: request(lambda b, _now: b.fetch(pinned, 0)), lambda _r, error: self._done(error, ROOM)
            )
        else:
            app.worker.submit(
                lambda: connection.room_request(lambda b, _now: b.find(label)),
                lambda _r, error: self._done(error, ROOM),
            )
        app._draw(app.state.notice(app.strings("joining_notice", room=label), app.state.selected))
        return None

    def forget_room(self, label: str, conversation: str) -> str | None:
        """``/forget-room LABEL``: drop the label's pin and what is known of its room (after the relay lost
        it), as the terminal does: the next ``/join LABEL`` takes the room the relay names then, verified
        from its first entry. The room leaves the sidebar. A refusal in words, or None."""
        app = self.app
        if app.opened is None or app.state is None:
            return app.strings("not_sent", reason=app.strings("reason_disconnected"))
        connection, state = app.opened.connection, app.state
        book = connection.session.rooms  # read without the lock, as the view reads rooms (``app._room_of``)
        known = book.state(label)
        shown = self._display(known) if known is not None else printable(label)

        def done(room_id: bytes | None, error: BaseException | None) -> None:
            if error is not None:
                self._done(error, conversation)
            elif room_id is None:
                app._draw(state.error(app.strings("err_forget_unknown", label=printable(label)), conversation))
            else:
                self.joining.discard(name_key(label))
                self._going.discard(room_id)
                app._draw(state.room_forgotten(room_id, printable(label), shown, conversation))

        app.worker.submit(lambda: connection.with_rooms(lambda b: b.forget_label(label)), done)
        return None

    def resume_room(self, label: str, conversation: str) -> str | None:
        """``/resume-room LABEL``: after a fork, go on sending to the room at the history verified here, on
        the user's word, as the terminal does (a new fork stops sends again). A refusal in words, or None."""
        app = self.app
        if app.opened is None or app.state is None:
            return app.strings("not_sent", reason=app.strings("reason_disconnected"))
        connection, state = app.opened.connection, app.state
        known = connection.session.rooms.state(label)
        if known is None:
            return app.strings("err_resume_unknown", label=printable(label))
        room_id, shown = known.room_id, self._display(known)

        def done(reason: str | None, error: BaseException | None) -> None:
            if error is not None:
                self._done(error, conversation)
            elif not reason:
                app._draw(state.error(app.strings("err_not_forked", room=shown), conversation))
            else:  # the fork's reason is the core's English: the window said the fork in its own words
                app._draw(state.room_resumed(room_id, shown))

        app.worker.submit(lambda: connection.with_rooms(lambda b: b.resume(room_id)), done)
        return None

    # --- invitations: rooms someone added us to ------------------------------------------------

    def answer_invitation(self, room_id: bytes, accepted: bool) -> None:
        """Accept (the room's log is fetched and verified, and the window goes there) or decline one."""
        app = self.app
        if app.opened is None or app.state is None:
            return
        connection = app.opened.connection
        if accepted:
            self._going.add(room_id)
            app.worker.submit(
                lambda: connection.room_request(lambda book, _now: book.accept(room_id)),
                lambda _r, error: self._done(error, ROOM),
            )
        else:
            app.worker.submit(
                lambda: connection.with_rooms(lambda book: book.invites.decline(room_id)),
                lambda _r, error: self._done(error, ROOM),
            )
        app._draw(app.state.invitation_answered(room_id, accepted))

    def _invitation(self, label: str) -> bytes | None:
        """The room id of the one waiting invitation that answers to ``label`` (LABEL#ID too), or None;
        AmbiguousInvitation if two do."""
        app = self.app
        if app.opened is None:
            return None
        found = app.opened.connection.session.rooms.invites.invitations.find(label)
        return None if found is None else found.room_id

    def _answer_typed(self, label: str, accepted: bool) -> str | None:
        s = self.app.strings
        try:
            room_id = self._invitation(label)
        except AmbiguousInvitation:
            return s("err_two_invitations", room=label)
        if room_id is None:
            return s("err_no_invitation", room=label)
        self.answer_invitation(room_id, accepted)
        return None

    def _list_invitations(self, conversation: str) -> None:
        app = self.app
        if app.state is not None:
            texts = [item.text for item in app.state.invitations.values()] or [app.strings("no_invitations_notice")]
            app._draw([update for text in texts for update in app.state.notice(text, conversation)])

    def answers(self, event: ev.Event) -> bool:
        """Whether ``event`` is answered here instead of by the presenter: the relay's refusal while we
        asked for a label, about no room we know, is "no room called LABEL you may join", not a banner
        about a change to a room."""
        app = self.app
        if not (isinstance(event, RoomAlert) and event.kind is RoomWarning.REFUSED and not event.room_id):
            return False
        if not self.joining or app.state is None:
            return False
        for label in sorted(self.joining):
            app._draw(app.state.error(app.strings("err_join_unknown", room=label), app.state.selected))
        self.joining.clear()
        return True

    def seen(self, event: ev.Event) -> None:
        """Follow the core's events (after the view drew them): a room asked for with /join is verified now."""
        app = self.app
        if isinstance(event, RoomEvent) and event.room_id in self._going and app.state is not None:
            if room_key(event.room_id) in app.state.rooms:
                self._going.discard(event.room_id)
                app.select(room_key(event.room_id))
        if not isinstance(event, RoomReady) or name_key(event.room) not in self.joining or app.opened is None:
            return
        if app.opened.connection.session.rooms.pinned_id(event.room) != event.room_id:
            return  # another room the relay put under a label pinned here: not the one asked for
        self.joining.discard(name_key(event.room))
        refusal = self._enter(event.room_id)
        if refusal is not None and app.state is not None:
            app._draw(app.state.error(refusal, app.state.selected))

    def _enter(self, room_id: bytes) -> str | None:
        """Go to a verified room: ours already, or an open one we add ourselves to; invite-only says so."""
        app = self.app
        assert app.opened is not None
        connection = app.opened.connection
        state = connection.session.rooms.state(room_id)
        if state is None:
            return None
        own = connection.session.identity.public
        key = room_key(room_id)
        if own not in state.members:
            if state.policy is not RoomPolicy.OPEN:
                return app.strings("err_join_invite_only", room=connection.session.rooms.display(state))
            self._sign(room_id, EntryKind.ADD, connection.session.name, own, key)
        if app.state is not None and key in app.state.rooms:
            app.select(key)
        else:
            self._going.add(room_id)
        return None

    def _carry_out(self, word: RoomWord, info: RoomInfo, name: str) -> None:
        app = self.app
        if app.opened is None:
            return
        if word is RoomWord.LEAVE:
            me = next(
                (m for m in info.members if m.identity_key == app.opened.connection.session.identity.public), None
            )
            if me is not None:
                self._sign(info.room_id, EntryKind.LEAVE, me.name, me.identity_key, info.key)
            return
        subject = room_view.subject(info, name)
        if subject is not None:
            self._sign(info.room_id, _KINDS[word], subject.name, subject.identity_key, info.key)

    def _sign(self, room_id: bytes, kind: EntryKind, name: str, key: bytes, where: str) -> None:
        """A signed change to the room's log, on the worker (the core refuses what the log would refuse)."""
        app = self.app
        if app.opened is None:
            return
        connection = app.opened.connection

        def change() -> None:
            connection.room_request(lambda book, now: book.change(room_id, kind, name, key, now))

        app.worker.submit(change, lambda _r, error: self._done(error, where))

    def _display(self, state: RoomState) -> str:
        """A room as the window shows it: its signed label and short id."""
        info = self._room(room_key(state.room_id))
        return info.display if info is not None else f"{state.label} #{state.short_id}"

    def _room(self, key: str) -> RoomInfo | None:
        state = self.app.state
        return state.rooms.get(key) if state is not None else None

    def _done(self, error: BaseException | None, where: str) -> None:
        app = self.app
        if error is None or app.state is None:
            return
        if isinstance(error, RoomLogError):
            text = app.strings("err_room_action", detail=error.detail)
        else:
            text = app.strings("not_sent", reason=app.strings.reason(str(error)))
        app._draw(app.state.error(text, where))
