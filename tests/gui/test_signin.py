"""The sign-in dialog, driven through its real entries and keys.

Every failure must end in the dialog with plain words and the field to fix
highlighted, never in a traceback or a half-open window.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.client.gui.signin_dialog import INVALID
from susurro.crypto import IdentityKey, save_identity
from tests.helpers.certs import make_pki, needs_openssl
from tests.helpers.gui_driver import close_app, fill_and_submit, keyboard_to, pump, signed_in, start_app
from tests.helpers.processes import RelayProcess
from tests.helpers.system import free_port


def wait_error(root, app: SusurroApp) -> str:  # type: ignore[no-untyped-def]
    pump(root, lambda: app.dialog is not None and app.dialog.error.cget("text"), "an error in the sign-in dialog")
    assert app.dialog is not None
    return str(app.dialog.error.cget("text"))


def highlighted(app: SusurroApp) -> list[str]:
    assert app.dialog is not None
    return [f for f, e in app.dialog.entries.items() if e.instate([INVALID])]


def test_taken_name_is_shown_on_the_name_field(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    host, port = relay_server.address
    first = start_app(root, tmp_path / "first", name="alice", server=f"{host}:{port}")
    signed_in(root, first)  # before the second app moves $SUSURRO_HOME to its own machine
    second = start_app(root, tmp_path / "second")
    try:
        fill_and_submit(
            root, second, name="Alice", relay=f"{host}:{port}", identity=str(tmp_path / "second" / "alice.key")
        )
        error = wait_error(root, second)
        assert error == "Someone is already connected as Alice. Pick another name."
        assert highlighted(second) == ["name"]
        assert second.window is None and second.dialog is not None
        # Fixing the name signs in from the same dialog.
        fill_and_submit(root, second, name="alicia")
        assert signed_in(root, second).top.title() == "Susurro: alicia"
        assert second.dialog is None
    finally:
        close_app(root, first)
        close_app(root, second)


def test_unreachable_relay_is_shown_on_the_address_field(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    app = start_app(root, tmp_path / "a")
    try:
        fill_and_submit(
            root, app, name="alice", relay=f"127.0.0.1:{free_port()}", identity=str(tmp_path / "a" / "alice.key")
        )
        error = wait_error(root, app)
        assert error.startswith("Cannot reach the relay at 127.0.0.1:")
        assert error.endswith(": nothing answers there (is the relay running?)"), "where, once; then why"
        assert error.lower().count("cannot reach") == 1
        assert highlighted(app) == ["relay"]
        assert app.window is None
    finally:
        close_app(root, app)


def test_bad_name_and_bad_address_never_touch_the_network(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    app = start_app(root, tmp_path / "a")
    try:
        fill_and_submit(root, app, name="no spaces allowed", relay="127.0.0.1:1")
        assert wait_error(root, app) == "Names cannot contain spaces; use _ or - instead (ana_maria)."
        assert highlighted(app) == ["name"]
        fill_and_submit(root, app, name="alice", relay="127.0.0.1:99999")
        pump(root, lambda: "relay address is not valid" in str(app.dialog.error.cget("text")), "address error")
        assert highlighted(app) == ["relay"]
        assert not (tmp_path / "home" / "identities").exists(), "no key was created for a refused form"
    finally:
        close_app(root, app)


def test_enter_in_any_field_submits(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The keyboard way of what ``fill_and_submit`` does with the Connect button."""
    root = tk_root
    app = start_app(root, tmp_path / "a")
    try:
        pump(root, lambda: app.dialog is not None, "the sign-in dialog")
        assert app.dialog is not None
        app.dialog.entries["name"].insert(0, "no spaces allowed")
        relay = app.dialog.entries["relay"]
        keyboard_to(root, relay)
        relay.event_generate("<Return>")
        assert wait_error(root, app) == "Names cannot contain spaces; use _ or - instead (ana_maria)."
    finally:
        close_app(root, app)


def test_escape_cancels_and_relay_address_is_remembered(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    host, port = relay_server.address
    home = tmp_path / "a"
    app = start_app(root, home)
    fill_and_submit(root, app, name="alice", relay=f"{host}:{port}", identity=str(home / "alice.key"))
    signed_in(root, app)
    close_app(root, app)
    again = start_app(root, home)
    try:
        pump(root, lambda: again.dialog is not None, "the sign-in dialog")
        assert again.dialog.entries["relay"].get() == f"{host}:{port}"
        assert again.dialog.entries["name"].get() == "alice"
        keyboard_to(root, again.dialog.entries["name"])
        again.dialog.entries["name"].event_generate("<Escape>")
        pump(root, lambda: again.closed, "Escape closed the dialog and the app")
    finally:
        close_app(root, again)


def test_protected_key_asks_for_its_passphrase(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    host, port = relay_server.address
    key_file = tmp_path / "keys" / "alice.key"
    key_file.parent.mkdir(mode=0o700)
    save_identity(IdentityKey.generate(), key_file, "correct horse")
    app = start_app(root, tmp_path / "a")
    try:
        pump(root, lambda: app.dialog is not None, "the sign-in dialog")
        assert not app.dialog.passphrase_shown
        fill_and_submit(root, app, name="alice", relay=f"{host}:{port}", identity=str(key_file))
        assert wait_error(root, app) == "This key file is protected: type its passphrase."
        assert app.dialog.passphrase_shown and highlighted(app) == ["passphrase"]
        fill_and_submit(root, app, passphrase="wrong horse")
        pump(root, lambda: "Wrong passphrase" in str(app.dialog.error.cget("text")), "wrong passphrase error")
        assert highlighted(app) == ["passphrase"]
        fill_and_submit(root, app, passphrase="correct horse")
        signed_in(root, app)
    finally:
        close_app(root, app)


def test_command_line_sign_in_failure_falls_back_to_the_dialog(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    app = start_app(root, tmp_path / "a", name="alice", server=f"127.0.0.1:{free_port()}")
    try:
        assert "Cannot reach the relay" in wait_error(root, app)
        assert highlighted(app) == ["relay"]
        assert app.dialog.entries["name"].get() == "alice"
    finally:
        close_app(root, app)


@needs_openssl
def test_plain_window_against_a_tls_relay_is_told_to_add_tls(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pki = make_pki(tmp_path)
    relay = RelayProcess(tmp_path, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--handshake-timeout", "1")
    app = start_app(tk_root, tmp_path / "a", name="ana", server=relay.address)
    try:
        pump(tk_root, lambda: app.dialog is not None and app.dialog.error.cget("text"), "a sign-in error")
        error = str(app.dialog.error.cget("text"))  # type: ignore[union-attr]
        assert error == (
            f"The relay at {relay.address} hung up before greeting us. If it serves TLS, start susurro "
            "with --tls (or --cafile FILE)."
        )
    finally:
        close_app(tk_root, app)
        relay.stop()
