"""Closing the window with a message no receipt has confirmed: it says so, as the terminal's ``/quit``.

Alice's window and bob's ``susurro-cli --json`` on a real relay process. bob
is stopped (SIGSTOP) before he can read alice's second message, so no
receipt comes. Closing alice's window lists it (how many, to whom) and says
it is sent again next time; "Keep the window open" keeps it. Once closed,
bob is killed and started again, alice's window opens again, and bob gets
the message: what the dialog promised. With nothing unconfirmed the window
closes without a word.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.client.gui.closing import SHOWN_MESSAGES, unconfirmed_words
from susurro.client.gui.strings import Strings
from tests.helpers.gui_driver import close_app, pump, signed_in, start_app, type_line, wait_in_pane
from tests.helpers.processes import CliProcess, RelayProcess


def asking(root, app: SusurroApp) -> str:  # type: ignore[no-untyped-def]
    pump(root, lambda: app.closing_dialog is not None, f"{app.options.name}'s window says what is unconfirmed")
    assert app.closing_dialog is not None
    return app.closing_dialog.text


def test_closing_lists_unconfirmed_messages_and_the_next_start_sends_them(tk_root, tmp_path: Path, cli_clients) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    relay = RelayProcess(tmp_path, "--data-dir", str(tmp_path / "data"))

    def start_bob() -> CliProcess:
        bob = CliProcess("bob", tmp_path / "bob", relay.address)
        cli_clients.append(bob)
        bob.expect_event("connected")
        return bob

    alice = start_app(root, tmp_path / "alice", name="alice", server=relay.address)
    try:
        signed_in(root, alice)
        bob = start_bob()
        wait_in_pane(root, alice, "bob joined")
        type_line(root, alice, "/msg bob warm-up")
        bob.expect_event("message", text="warm-up")
        wait_in_pane(root, alice, "warm-up  ✓✓ delivered to bob", "bob")  # bob confirms what he shows

        os.kill(bob.proc.pid, signal.SIGSTOP)
        type_line(root, alice, "said while you were frozen")
        wait_in_pane(root, alice, "said while you were frozen  ✓ sent to bob", "bob")
        alice.close()
        said = asking(root, alice)
        assert said.startswith("One of your messages has no receipt yet:")
        assert "“said while you were frozen” to bob" in said and "warm-up" not in said
        assert said.endswith("They are kept on this computer and sent again the next time you sign in.")
        alice.closing_dialog.keep_button.invoke()  # type: ignore[union-attr]
        root.update()
        assert not alice.closed and alice.window is not None and alice.window.top.winfo_exists()
        assert alice.closing_dialog is None

        alice.close()
        asking(root, alice)
        alice.closing_dialog.close_button.invoke()  # type: ignore[union-attr]
        pump(root, lambda: alice.closed, "alice's window closed")

        bob.proc.kill()  # SIGKILL reaches a stopped process: what it had not read is gone with it
        bob.wait()
        bob = start_bob()
        alice = start_app(root, tmp_path / "alice", name="alice", server=relay.address)
        signed_in(root, alice)
        bob.expect_event("message", text="said while you were frozen")
        wait_in_pane(root, alice, "said while you were frozen  ✓✓ delivered to bob", "bob")
        alice.close()
        pump(root, lambda: alice.closed, "closed without a question: nothing is unconfirmed")
        assert alice.closing_dialog is None
    finally:
        close_app(root, alice)
        relay.stop()


def test_the_list_counts_names_and_cuts_in_both_languages() -> None:
    items = [(f"id{i}", f"mensaje {i}\nsegunda línea", ("bob", "carol")) for i in range(10)]
    items[0] = ("id0", "x" * 200, ("bob",))
    en = unconfirmed_words(Strings("en"), items)
    assert en[0] == "10 of your messages have no receipt yet:"
    assert en[1] == "“" + "x" * 59 + "…” to bob"
    assert en[2] == "“mensaje 1 segunda línea” to bob, carol"
    assert en[-2] == "…and 2 more" and len(en) == 1 + SHOWN_MESSAGES + 2
    es = unconfirmed_words(Strings("es"), items[:1])
    assert es == [
        "Uno de tus mensajes aún no tiene acuse de recibo:",
        "«" + "x" * 59 + "…» para bob",
        "Se guardan en este ordenador y se envían de nuevo la próxima vez que entres.",
    ]
