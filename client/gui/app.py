"""The GUI's controller: sign in, then run one chat window over the core's event queue.

Threading: everything here runs on the Tk thread. Blocking work (key file,
connect, send, close) goes to the ``Worker``; the core's reader thread puts
events on the connection's queue. A single ``after`` loop drains both queues,
so widgets are only ever touched from the Tk thread.

A ``SusurroApp`` owns only ``Toplevel`` windows, never the Tk root, so one
root can host several apps: the GUI tests run two signed-in users in one
process this way, which is more robust than two ``Tk()`` interpreters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import time
import tkinter as tk
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from susurro.client import commands
from susurro.client import events as ev
from susurro.client.history import DEFAULT_PAGE, HistoryPage
from susurro.client.mailstate import DeliveryState as WaitState
from susurro.client.room_events import RoomEvent
from susurro.client.session import SendError
from susurro.client.sockets import shown_address
from susurro.crypto.trust import TrustState

from .closing import Unconfirmed, UnconfirmedDialog
from .presenter import ROOM, ChatState, Outgoing, conversation_key, history_name
from .room_actions import RoomActions
from .room_dialogs import Dialog
from .room_view import RoomInfo, is_room_key, room_info
from .settings import Settings
from .signin import JOIN_TIMEOUT, OpenedSession, SignInError, SignInRequest, default_relay, open_session, refusal
from .signin_dialog import SignInDialog
from .strings import Strings, pick_language
from .theme import LIGHT, Palette, apply_theme
from .verify_dialog import VerifyDialog
from .window import ChatWindow, WindowActions, recolour_all
from .worker import Worker

POLL_MS = 50
#: Events handled per poll, so a flood of messages cannot freeze the window.
EVENTS_PER_POLL = 200
#: On closing, how long to wait for the receipts of what was just sent (as the terminal's /quit), and how often to ask.
QUIT_GRACE = 2.0
UNCONFIRMED_POLL_MS = 200
#: After a restart, kept rooms are asked for this many at a time, one batch per tick: half the
#: relay's default flood allowance (10 frames a second), so typing at the start is not held up.
FETCHES_PER_TICK = 5
FETCH_TICK_MS = 1000
#: Bound on waiting for the worker to finish closing when the app ends.
SHUTDOWN_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What the command line said (all optional: the dialog asks for the rest)."""

    server: str | None = None
    name: str | None = None
    identity: str | None = None
    lang: str | None = None
    tls: bool = False
    cafile: str | None = None
    #: The pinned-keys file; None: ``$SUSURRO_HOME/trust.json`` (tests give each user one).
    trust_file: str | None = None


class SusurroApp:
    def __init__(
        self,
        root: tk.Misc,
        options: Options,
        *,
        strings: Strings | None = None,
        settings: Settings | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.options = options
        self.strings = strings or Strings(pick_language(options.lang))
        self.settings = settings or Settings()
        self.on_exit = on_exit
        self.worker = Worker()
        self.opened: OpenedSession | None = None
        self.state: ChatState | None = None
        self.window: ChatWindow | None = None
        self.dialog: SignInDialog | None = None
        self.request: SignInRequest | None = None
        self.closed = False
        self._closing = False
        self._join_deadline: float | None = None
        self._before_welcome: list[ev.Event] = []
        self._after_id: str | None = None
        self._close_requested = False
        #: Closing asked for, waiting for receipts or for the person's answer (``closing_dialog``).
        self._leaving = False
        self.closing_dialog: UnconfirmedDialog | None = None
        self.verify_dialog: VerifyDialog | None = None
        self.rooms = RoomActions(self)
        #: Rooms still to ask for after a restart (``_fetch_rooms``), a few each second.
        self._to_fetch: list[bytes] = []
        self.colours: Palette = LIGHT

    # --- starting ---------------------------------------------------------------------

    def start(self) -> None:
        """``--server`` and ``--name`` given: connect at once; otherwise ask."""
        if isinstance(self.root, tk.Tk):  # the theme belongs to the interpreter, i.e. its root
            self.colours = apply_theme(self.root, str(self.settings.get("theme", "light")))
        if self.options.server and self.options.name:
            self._sign_in(
                SignInRequest(
                    name=self.options.name,
                    relay=self.options.server,
                    identity=self.options.identity or "",
                    # The default address written out starts the demo relay like the bare command.
                    allow_local_relay=self.options.server.strip() == default_relay(),
                    **self._connection_options(),
                )
            )
        else:
            self.show_sign_in()
        self._poll()

    def show_sign_in(self, error: SignInError | None = None) -> None:
        if self.dialog is None:
            settings = self.settings
            self.dialog = SignInDialog(
                self.root,
                self.strings,
                name=self.options.name or settings.get("name", ""),
                relay=self.options.server or settings.get("relay", "") or default_relay(),
                identity=self.options.identity or settings.get("identity", ""),
                on_submit=self._submit,
                on_cancel=self.close,
            )
        if error is not None:
            self.dialog.show_error(error.field, error.message)

    def _submit(self, values: dict[str, str | None]) -> None:
        relay = (values["relay"] or "").strip()
        self._sign_in(
            SignInRequest(
                name=values["name"] or "",
                relay=relay,
                identity=values["identity"] or "",
                passphrase=values["passphrase"],
                # The one-command demo: the default local address may start a
                # relay in this process, as susurro-cli does; any other address never.
                allow_local_relay=relay == default_relay(),
                **self._connection_options(),
            )
        )

    def _connection_options(self) -> dict[str, Any]:
        options = self.options
        return {"tls": options.tls, "cafile": options.cafile or "", "trust_file": options.trust_file or ""}

    def _sign_in(self, request: SignInRequest) -> None:
        self.request = request
        if self.dialog is not None:
            self.dialog.busy(self.strings("connecting_to", relay=request.relay.strip()))
        strings = self.strings
        self.worker.submit(lambda: open_session(request, strings), self._on_opened)

    def _on_opened(self, opened: OpenedSession | None, error: BaseException | None) -> None:
        if self._closing:
            if opened is not None:
                self._shutdown_session(opened)
            return
        if error is not None or opened is None:
            failure = error if isinstance(error, SignInError) else SignInError("relay", str(error))
            self._sign_in_failed(failure)
            return
        self.opened = opened
        self._join_deadline = time.monotonic() + JOIN_TIMEOUT

    def _sign_in_failed(self, error: SignInError) -> None:
        if self.opened is not None:
            self._shutdown_session(self.opened)
            self.opened = None
        self._join_deadline = None
        self._before_welcome.clear()
        self.show_sign_in(error)

    def _shutdown_session(self, opened: OpenedSession) -> None:
        def shutdown() -> None:
            opened.connection.close()
            if opened.history is not None:
                opened.history.close()
            if opened.stop_relay is not None:
                opened.stop_relay()

        self.worker.submit(shutdown)

    # --- the event loop ------------------------------------------------------------------

    def request_close(self) -> None:
        """Ask to leave from a signal handler: only sets a flag, the Tk loop acts on it."""
        self._close_requested = True

    def _poll(self) -> None:
        self._after_id = None
        if self.closed:
            return
        if self._close_requested and not self._closing:
            self.close_now()  # a signal: nobody is there to answer a question
        while not self.closed:
            try:
                self.worker.done.get_nowait().deliver()
            except queue.Empty:
                break
        if self._closing:
            if not self.closed:
                self._after_id = self.root.after(POLL_MS, self._poll)
            return
        opened = self.opened
        for _ in range(EVENTS_PER_POLL):
            if opened is None or self.opened is not opened:
                break
            try:
                item = opened.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, ev.Event):
                self._on_event(item)
        if self.window is None and self._join_deadline is not None and time.monotonic() > self._join_deadline:
            self._sign_in_failed(SignInError("relay", self.strings("err_no_welcome", seconds=f"{JOIN_TIMEOUT:g}")))
        if not self.closed:
            self._after_id = self.root.after(POLL_MS, self._poll)

    def _on_event(self, event: ev.Event) -> None:
        if self.window is None or self.state is None:
            if isinstance(event, ev.Connected):
                self._enter_chat(event)
            elif isinstance(event, ev.Disconnected):
                name = self.request.name.strip() if self.request else ""
                self._sign_in_failed(refusal(event, name, self.strings))
            elif self._looks_like_tls(event):
                relay = self.request.relay.strip() if self.request else ""
                self._sign_in_failed(SignInError("relay", self.strings("err_tls_needed", relay=relay)))
            else:
                self._before_welcome.append(event)
            return
        if not self.rooms.answers(event):
            self.window.apply(self.state.apply(self._in_use(event), self._room_of(event)))
        self.rooms.seen(event)

    def _in_use(self, event: ev.Event) -> ev.Event:
        """A ``Connected`` names the relay node in use when the address lists several (``a:1,b:2``):
        the first that answered, or the one a reconnect moved to when another went away."""
        opened = self.opened
        if not isinstance(event, ev.Connected) or opened is None or "," not in opened.relay:
            return event
        address = opened.connection.address
        return event if address is None else dataclasses.replace(event, relay=shown_address(address))

    def _room_of(self, event: ev.Event) -> RoomInfo | None:
        """For a room event, the room's verified log as it stands now (read from the core's book).

        Read without the connection's lock: the book outlives reconnects, its
        states are replaced whole, never changed in place, and the Tk thread
        must not wait for a send holding the lock.
        """
        if not isinstance(event, RoomEvent) or self.opened is None:
            return None
        session = self.opened.connection.session
        state = session.rooms.state(event.room_id)
        return room_info(state, session.identity.public) if state is not None else None

    def _looks_like_tls(self, event: ev.Event) -> bool:
        """A plain connection the relay hung up on before greeting us: what a TLS relay does."""
        request = self.request
        plain = request is not None and not request.tls and not request.cafile
        return plain and isinstance(event, ev.Reconnecting) and "closed the connection" in event.reason

    def _enter_chat(self, connected: ev.Connected) -> None:
        opened = self.opened
        assert opened is not None
        self._join_deadline = None
        self.settings.update(
            name=opened.name, relay=opened.relay, identity=self.request.identity if self.request else None
        )
        if self.dialog is not None:
            self.dialog.destroy()
            self.dialog = None
        notifications = bool(self.settings.get("notifications", True))
        session = opened.connection.session
        self.state = ChatState(self.strings, relay=opened.relay, notifications=notifications,
                               trust_of=session.trust.state, identity_key=session.identity.public)
        state = self.state
        self.window = ChatWindow(
            self.root,
            self.strings,
            WindowActions(
                send=self.send,
                open_direct=self.open_direct,
                select=self.select,
                verify=self.verify,
                accept_key=self.accept_key,
                close=self.close,
                close_conversation=lambda key: self._draw(state.close_tab(key)),
                focus_changed=lambda focused: self._draw(state.set_focus(focused)),
                jump_targets=state.jump_targets,
                reconnect=self.reconnect,
                set_notifications=self.set_notifications,
                set_theme=self.set_theme,
                new_room=self.rooms.new_room,
                invite=self.rooms.invite,
                room_member=self.rooms.ask,
                load_older=self.load_older,
            ),
            self.colours,
            geometry=self.settings.get("geometry"),
            sash=self.settings.get("sash"),
            notifications=notifications,
        )
        self.window.apply(state.select(ROOM))
        self.window.apply(self.state.apply(self._in_use(connected)))
        if opened.started_relay:
            self._notice(self.strings("started_local_relay", relay=opened.relay))
        if opened.created_key:
            self._notice(self.strings("created_key", path=str(opened.key_file)))
        for text in opened.notices:
            self._notice(text)
        for event in self._before_welcome:
            self.window.apply(self.state.apply(event, self._room_of(event)))
        self._before_welcome.clear()
        self._open_history()

    def _notice(self, text: str) -> None:
        if self.window is not None and self.state is not None:
            self.window.apply(self.state.notice(text))

    # --- what the window forwards ------------------------------------------------------

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

            self.worker.submit(strict, lambda now, _e: self._draw(state.notice(
                self.strings("strict_on" if now else "strict_off"))))
        elif isinstance(command, commands.Plain) and command.command is commands.Name.QUIT:
            self.close()

    def open_direct(self, name: str) -> None:
        if self.state is not None:
            self._draw(self.state.open_tab(name))

    def select(self, key: str) -> None:
        """Sidebar click, Ctrl+K, Ctrl+Tab: an open conversation, or a member to start one with."""
        if self.state is not None:
            state = self.state
            known = key == ROOM or key in state.tabs or key in state.rooms
            self._draw(state.select(key) if known else state.open_tab(key))

    def set_notifications(self, on: bool) -> None:
        if self.state is not None:
            self.state.notifications = on
        self.settings.update(notifications=on)

    def set_theme(self, mode: str) -> None:
        if isinstance(self.root, tk.Tk):
            self.colours = apply_theme(self.root, mode)
            recolour_all(self.colours)
            self.settings.update(theme=self.colours.mode)

    def reconnect(self) -> None:
        """The relay refused us (or we gave up): the Reconnect button signs in again, same window."""
        if self.request is None or self.opened is None or self._closing:
            return
        old, request, strings = self.opened, self.request, self.strings
        self.opened = None

        def again() -> OpenedSession:
            old.connection.close()
            opened = open_session(request, strings)
            if opened.stop_relay is None:  # keep the demo relay this window started
                opened.stop_relay, opened.started_relay = old.stop_relay, False
            return opened

        def done(opened: OpenedSession | None, error: BaseException | None) -> None:
            if opened is None or error is not None:
                self.opened = old
                text = error.message if isinstance(error, SignInError) else str(error)
                self._draw(self.state.error(text) if self.state is not None else [])
                return
            if self._closing:
                self._shutdown_session(opened)
                return
            self.opened = opened

        self.worker.submit(again, done)

    # --- history: pages read on the worker, drawn on the Tk thread ---------------------------

    def _open_history(self) -> None:
        """Each conversation kept on this computer: its newest page now, older ones on scrolling up."""
        opened, state = self.opened, self.state
        if opened is None or state is None:
            return
        # Every room an earlier run verified here, with or without messages: checked against what it verified.
        self._fetch_rooms(opened.remembered_rooms)
        if opened.history is None:
            return
        reader = opened.history

        def found(names: list[str] | None, error: BaseException | None) -> None:
            if error is not None or names is None or self.state is not state:
                return
            keys = {conversation_key(name) for name in names} - {None}
            for key in sorted(k for k in keys if k is not None):
                self.load_older(key)
                if is_room_key(key) and self.opened is opened:
                    with contextlib.suppress(ValueError):  # only ever our own labels, but never a crash
                        room_id = bytes.fromhex(key[1:])
                        if room_id not in opened.remembered_rooms:  # asked for already
                            self._fetch_rooms([room_id])

        self.worker.submit(reader.conversations, found)

    def _fetch_rooms(self, room_ids: Iterable[bytes]) -> None:
        """Rooms this computer kept (their pins and heads, or history): ask for their logs again, each
        verified from its create entry and against the head kept for it.

        The core's book starts from what was kept; the relay is trusted for nothing here (the logs are
        checked, and which rooms to ask for comes from our own files), and answers ``RoomReady``.
        ``FETCHES_PER_TICK`` go at a time, one tick a second, so a person in hundreds of rooms is not
        held back (and after a while cut off) by the relay's flood control at every start.
        """
        first = not self._to_fetch
        self._to_fetch.extend(room_ids)
        if first:
            self._fetch_some(self.opened)

    def _fetch_some(self, opened: OpenedSession | None) -> None:
        if opened is None or self.opened is not opened or self.state is None or self._closing:
            self._to_fetch.clear()
            return
        batch, self._to_fetch = self._to_fetch[:FETCHES_PER_TICK], self._to_fetch[FETCHES_PER_TICK:]
        connection = opened.connection
        for room_id in batch:
            self.state.replaying(room_id)
            self.worker.submit(lambda r=room_id: connection.room_request(lambda book, _now: book.fetch(r, 0)))
        if self._to_fetch:
            self.root.after(FETCH_TICK_MS, lambda: self._fetch_some(opened))

    def load_older(self, key: str) -> None:
        opened, state = self.opened, self.state
        if opened is None or state is None or opened.history is None:
            return
        wanted, before = state.history_wanted(key)
        if not wanted:
            return
        reader, name, connection = opened.history, history_name(key), opened.connection

        def read() -> tuple[HistoryPage, dict[str, dict[str, WaitState]]]:
            page = reader.page(name, before=before, limit=DEFAULT_PAGE)
            # Where our own messages of the page are, as kept across our restarts (waiting, delivered).
            return page, connection.delivery_reports(e.record.msg_id for e in page.entries if e.record.outgoing)

        def shown(result: tuple[HistoryPage, dict[str, dict[str, WaitState]]] | None,
                  error: BaseException | None) -> None:
            if self.state is not state or self.window is None:
                return
            if error is not None or result is None:
                self._draw(state.history(key, (), older=False))
                return
            page, reports = result
            self._draw(state.history(key, page.entries, page.older, page.refused, reports))

        self.worker.submit(read, shown)

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

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Leave, as the terminal's ``/quit``: after a short wait for receipts on their way, the messages
        still without one are listed (they are sent again next time) and the person chooses to close
        or keep the window open; with none, the window closes at once."""
        if self._closing or self._leaving:
            return
        if self.window is None or self.opened is None:
            self.close_now()
            return
        self._leaving = True
        self._check_unconfirmed(time.monotonic() + QUIT_GRACE)

    def _check_unconfirmed(self, deadline: float) -> None:
        opened, window = self.opened, self.window
        if opened is None or window is None or self._closing:
            self.close_now()
            return

        def answered(items: list[Unconfirmed] | None, error: BaseException | None) -> None:
            if self._closing or not self._leaving:
                return
            if error is not None or not items:
                self.close_now()
            elif time.monotonic() < deadline:  # receipts may be on their way: ask again shortly
                self.root.after(UNCONFIRMED_POLL_MS, lambda: self._check_unconfirmed(deadline))
            elif window.top.winfo_exists():
                self.closing_dialog = UnconfirmedDialog(window.top, self.strings, items, self.close_now,
                                                        self._keep_open)
            else:  # nowhere left to ask
                self.close_now()

        self.worker.submit(opened.connection.unconfirmed, answered)

    def _keep_open(self) -> None:
        self._leaving = False
        self.closing_dialog = None

    def close_now(self) -> None:
        """Leave now: remember the layout, say bye (on the worker), then remove the windows."""
        if self._closing:
            return
        self._closing = True
        if self.window is not None:
            self.settings.update(**self.window.layout())
            self.window.top.withdraw()
        if self.dialog is not None:
            self.dialog.top.withdraw()
        if self.opened is not None:
            self._shutdown_session(self.opened)
        self.worker.submit(lambda: None, lambda _r, _e: self._finish())

    def _finish(self) -> None:
        self.closed = True
        if self._after_id is not None:
            self.root.after_cancel(self._after_id)
            self._after_id = None
        self.rooms.close_dialog()
        if self.closing_dialog is not None:
            Dialog.destroy(self.closing_dialog)  # not its own destroy: that would keep the window open
            self.closing_dialog = None
        for widget in (self.window, self.dialog):
            if widget is not None:
                widget.destroy()
        self.window = self.dialog = None
        self.worker.stop(SHUTDOWN_TIMEOUT)
        if self.on_exit is not None:
            self.on_exit()
