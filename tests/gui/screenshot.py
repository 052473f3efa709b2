"""Regenerate ``docs/screenshots/conversation-{light,dark}.png`` and ``rooms-light.png``: real windows, real chats.

    .venv/bin/python -m tests.gui.screenshot [FOLDER]

Starts a private Xvfb (unless ``DISPLAY`` is set... it always uses its own, so
the picture does not depend on your desktop), a relay on an ephemeral port,
and two signed-in windows side by side; types a short conversation through
the real entries, verifies one contact through the real dialog, then grabs
the screen with ImageMagick's ``import`` and trims it to the two windows.
The rooms picture is a second run: two rooms created and joined through
the app's own room actions, a conversation in one of them with its ticks,
and a member who left shown offline in the member list.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tkinter as tk
from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.relay import RelayConfig, RelayServer
from tests.helpers.gui_driver import (
    close_app,
    pane,
    pump,
    room_named,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.xvfb import start_xvfb, stop_xvfb

WIDTH, HEIGHT, GAP = 800, 500, 6
MODES = ("light", "dark")


def three_windows(root: tk.Tk, work: Path, server: str) -> tuple[SusurroApp, SusurroApp, SusurroApp]:
    """ana (Spanish) and beto side by side on screen, carla off it; all three signed in."""
    ana = start_app(root, work / "ana", name="ana", server=server, lang="es")
    win_ana = signed_in(root, ana)
    beto = start_app(root, work / "beto", name="beto", server=server)
    win_beto = signed_in(root, beto)
    carla = start_app(root, work / "carla", name="carla", server=server)
    signed_in(root, carla)
    for window, x in ((win_ana, 0), (win_beto, WIDTH + GAP)):
        window.top.geometry(f"{WIDTH}x{HEIGHT}+{x}+0")
    carla.window.top.geometry(f"{WIDTH}x{HEIGHT}+{3 * WIDTH}+0")  # type: ignore[union-attr]  # off screen
    return ana, beto, carla


def stage(root: tk.Tk, work: Path, server: str) -> list[object]:
    ana, beto, carla = three_windows(root, work, server)
    win_ana, win_beto = ana.window, beto.window
    assert win_ana is not None and win_beto is not None
    wait_in_pane(root, ana, "carla")
    wait_in_pane(root, beto, "carla")
    ana.verify("beto")
    pump(root, lambda: ana.verify_dialog is not None, "verify dialog")
    ana.verify_dialog.mark_button.invoke()  # type: ignore[attr-defined]
    type_line(root, ana, "/msg beto esto es solo para ti")
    wait_in_pane(root, beto, "solo para ti", conversation="ana")
    win_ana.actions.select("")
    type_line(root, ana, "hola a los dos, ¿me leéis?")
    wait_in_pane(root, beto, "me leéis")
    type_line(root, carla, "yes! the relay only ever sees ciphertext")
    wait_in_pane(root, ana, "ciphertext")
    type_line(root, beto, "loud and clear")
    type_line(root, beto, "and the shields say who is verified")
    wait_in_pane(root, ana, "shields")
    type_line(
        root, ana, "perfecto. Los números de seguridad coinciden,", shift_lines=("te he marcado como verificado.",)
    )
    wait_in_pane(root, beto, "verificado")
    win_beto.actions.select("")
    type_line(root, carla, "/msg beto can you check my number later?")
    wait_in_pane(root, beto, "my number", conversation="carla")
    for app in (ana, beto):
        app.window.top.lift()  # type: ignore[attr-defined]
    pump(root, lambda: "enviando" not in pane(ana), "every message of ana's has its delivery note")
    settle(root)
    return [ana, beto, carla]


def stage_rooms(root: tk.Tk, work: Path, server: str) -> list[object]:
    """ana (Spanish) and beto in the room clase-3b, which carla has just left; beto also has ops."""
    ana, beto, carla = three_windows(root, work, server)
    win_beto = beto.window
    assert win_beto is not None
    wait_in_pane(root, ana, "carla")

    assert ana.rooms.create("clase-3b", False) is None
    clase = room_named(root, ana, "clase-3b")
    for name in ("beto", "carla"):
        assert ana.rooms.invite_name(clase, name) is None
        wait_in_pane(root, ana, f"ana ha añadido a {name}.", clase)
    assert beto.rooms.create("ops", True) is None
    ops = room_named(root, beto, "ops")
    assert beto.rooms.invite_name(ops, "ana") is None
    room_named(root, ana, "ops")
    for app in (ana, beto, carla):
        app.select(clase)
    type_line(root, ana, "¿Quién trae el proyector mañana?")
    wait_in_pane(root, beto, "proyector", clase)
    type_line(root, carla, "not me, I'm off until Thursday")
    wait_in_pane(root, ana, "Thursday", clase)
    type_line(root, beto, "I'll bring it, and the cable")
    wait_in_pane(root, ana, "cable", clase)
    pump(root, lambda: "✓✓ entregado a beto, carla" in pane(ana, clase), "ana's two ticks")
    close_app(root, carla)
    pump(root, lambda: "offline" in win_beto.roster.item("carla", "tags"), "carla offline in beto's member list")
    type_line(root, ana, "Gracias, Beto. Carla lo verá cuando vuelva.")
    wait_in_pane(root, beto, "Gracias", clase)
    pump(root, lambda: "Gracias, Beto. Carla lo verá cuando vuelva.  ✓✓" in pane(ana, clase), "ana's note")
    for app in (ana, beto):
        app.window.top.lift()  # type: ignore[union-attr]
    settle(root)
    return [ana, beto]


def settle(root: tk.Tk) -> None:
    for _ in range(30):
        root.update()


def grab(display: str, work: Path, output: Path) -> None:
    raw = work / "screen.png"
    subprocess.run(["import", "-display", display, "-window", "root", str(raw)], check=True, timeout=60)
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["convert", str(raw), "-strip", "-colors", "160", f"PNG8:{output}"], check=True, timeout=60)
    print(f"{output} ({output.stat().st_size // 1024} KiB)")


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/screenshots").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["SUSURRO_HOME"] = str(work / "home")
        proc, display = start_xvfb(work / "xvfb.log", size=f"{2 * WIDTH + GAP}x{HEIGHT}x24")
        os.environ["DISPLAY"] = display
        relay = RelayServer(RelayConfig(host="127.0.0.1", port=0))
        relay.start()
        root = tk.Tk(className="Susurro")
        root.withdraw()
        try:
            apps = stage(root, work, "{}:{}".format(*relay.address))
            for mode in MODES:
                apps[0].set_theme(mode)  # type: ignore[attr-defined]  # the theme is the interpreter's: all windows
                settle(root)
                grab(display, work, folder / f"conversation-{mode}.png")
            apps[0].set_theme("light")  # type: ignore[attr-defined]
            for app in apps:
                close_app(root, app)  # type: ignore[arg-type]
            settle(root)
            apps = stage_rooms(root, work / "rooms", "{}:{}".format(*relay.address))
            grab(display, work, folder / "rooms-light.png")
            for app in apps:
                close_app(root, app)  # type: ignore[arg-type]
        finally:
            root.destroy()
            relay.stop()
            stop_xvfb(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
