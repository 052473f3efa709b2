"""The app's sign-in: the dialog or the command line, the session opened off the Tk thread, its failures."""

from __future__ import annotations

import time
import tkinter as tk
from typing import Any

from susurro.client import events as ev
from susurro.client.reconnect import JoinWait

from .signin import JOIN_TIMEOUT, OpenedSession, SignInError, SignInRequest, default_relay, open_session
from .signin_dialog import SignInDialog
from .theme import apply_theme


class SignInFlow:
    """Signing in, for ``SusurroApp``."""

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
        self._join_wait = JoinWait(time.monotonic(), JOIN_TIMEOUT)

    def _sign_in_failed(self, error: SignInError) -> None:
        if self.opened is not None:
            self._shutdown_session(self.opened)
            self.opened = None
        self._join_wait = None
        self._before_welcome.clear()
        self.show_sign_in(error)

    def _looks_like_tls(self, event: ev.Event) -> bool:
        """A plain connection the relay hung up on before greeting us: what a TLS relay does."""
        request = self.request
        plain = request is not None and not request.tls and not request.cafile
        return plain and isinstance(event, ev.Reconnecting) and "closed the connection" in event.reason
