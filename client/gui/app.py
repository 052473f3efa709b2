"""The GUI's controller: sign in, then run one chat window over the core's event queue.

Threading: everything here runs on the Tk thread. Blocking work (key file,
connect, send, close) goes to the ``Worker``; the core's reader thread puts
events on the connection's queue. A single ``after`` loop drains both queues,
so widgets are only ever touched from the Tk thread.

A ``SusurroApp`` owns only ``Toplevel`` windows, never the Tk root, so one
root can host several apps: the GUI tests run two signed-in users in one
process this way, which is more robust than two ``Tk()`` interpreters.

Its parts: ``app_signin`` (signing in), ``app_send`` (typed lines and
commands), ``app_history`` (history pages, rooms' logs read again),
``app_trust`` (verify, accept a changed key) and ``app_close`` (leaving);
``SusurroApp`` composes them and keeps the poll loop and the chat window's
wiring.
"""

from __future__ import annotations

import dataclasses
import queue
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass

from susurro.client import events as ev
from susurro.client.reconnect import JoinWait
from susurro.client.room_events import RoomEvent
from susurro.client.sockets import shown_address
from susurro.protocol import ErrorCode

from .app_close import Closing
from .app_history import HistoryLoading
from .app_send import Sending
from .app_signin import SignInFlow
from .app_trust import TrustFlow
from .closing import UnconfirmedDialog
from .panes import ROOM
from .presenter import ChatState
from .room_actions import RoomActions
from .room_view import RoomInfo, room_info
from .settings import Settings
from .signin import OpenedSession, SignInError, SignInRequest, open_session, refusal
from .signin_dialog import SignInDialog
from .strings import Strings, pick_language
from .theme import LIGHT, Palette, apply_theme
from .verify_dialog import VerifyDialog
from .window import ChatWindow, WindowActions, recolour_all
from .worker import Worker

POLL_MS = 50
#: Events handled per poll, so a flood of messages cannot freeze the window.
EVENTS_PER_POLL = 200


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


class SusurroApp(SignInFlow, Sending, HistoryLoading, TrustFlow, Closing):
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
        #: A first join's wait for its welcome (20 s, started again by each cluster_down); None when not waiting.
        self._join_wait: JoinWait | None = None
        #: Events before the welcome, drawn in the window once it opens; not a Reconnecting (the sign-in
        #: said it, and the welcome supersedes it: replayed after it, the status said "not let in" while in).
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
        wait = self._join_wait
        if self.window is None and wait is not None and wait.expired(time.monotonic()):
            self._sign_in_failed(self._no_welcome(wait))
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
                self._refused_join(event)
                if not isinstance(event, ev.Reconnecting):  # the sign-in said it; the welcome supersedes it
                    self._before_welcome.append(event)
            return
        if not self.rooms.answers(event):
            self.window.apply(self.state.apply(self._in_use(event), self._room_of(event)))
        self.rooms.seen(event)

    def _refused_join(self, event: ev.Event) -> None:
        """A first join the relay refused for now (``cluster_down``: the core tries again on its backoff):
        the sign-in says why while it waits, and its 20 s start again from the next attempt (``JoinWait``);
        another ending retried after it takes the reason off the sign-in, which no longer holds."""
        if not isinstance(event, ev.Reconnecting):
            return
        if self._join_wait is not None:
            self._join_wait.seen(event, time.monotonic())
        if self.dialog is None:
            return
        relay = self.request.relay.strip() if self.request else ""
        if event.code == ErrorCode.CLUSTER_DOWN:
            reason = self.strings.reason(event.reason, event.code)
            delay = f"{max(1, round(event.delay))}"
            self.dialog.busy(self.strings("connecting_refused", relay=relay, reason=reason, delay=delay))
        else:
            self.dialog.busy(self.strings("connecting_to", relay=relay))

    def _no_welcome(self, wait: JoinWait) -> SignInError:
        # At the overall bound the wait may end a moment after the latest attempt: the words name the whole wait.
        seconds = f"{wait.give_up if wait.capped else wait.timeout:g}"
        refusal = wait.refusal
        if refusal is not None:
            reason = self.strings.reason(refusal.reason, refusal.code)
            if wait.capped:
                minutes = f"{wait.give_up / 60:g}"
                return SignInError("relay", self.strings("err_refused_gave_up", minutes=minutes, reason=reason))
            return SignInError("relay", self.strings("err_refused_retrying", seconds=seconds, reason=reason))
        return SignInError("relay", self.strings("err_no_welcome", seconds=seconds))

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

    def _enter_chat(self, connected: ev.Connected) -> None:
        opened = self.opened
        assert opened is not None
        self._join_wait = None
        self.settings.update(
            name=opened.name, relay=opened.relay, identity=self.request.identity if self.request else None
        )
        if self.dialog is not None:
            self.dialog.destroy()
            self.dialog = None
        notifications = bool(self.settings.get("notifications", True))
        session = opened.connection.session
        self.state = ChatState(
            self.strings,
            relay=opened.relay,
            notifications=notifications,
            trust_of=session.trust.state,
            identity_key=session.identity.public,
        )
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
                answer_invitation=self.rooms.answer_invitation,
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
