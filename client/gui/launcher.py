"""The ``susurro`` command: parse flags, find a display, run the app.

Without a display (or without Tk) it prints one line pointing to
``susurro-cli`` and exits 2, instead of a Tcl traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from .strings import LANGUAGES, Strings, pick_language

DESCRIPTION = """\
Susurro desktop client: end-to-end encrypted group chat over a blind relay.

Without flags it opens a sign-in dialog. With --server and --name it connects
at once. The default relay address 127.0.0.1:12345 starts a relay inside the
window if none is running there (the one-command local demo). The terminal
client is susurro-cli.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="susurro", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", metavar="HOST:PORT", help="relay address; with --name, skips the sign-in dialog")
    parser.add_argument("--name", help="your name in the room")
    parser.add_argument(
        "--identity", metavar="FILE", help="identity key file (default $SUSURRO_HOME/identities/NAME.key)"
    )
    parser.add_argument("--lang", choices=LANGUAGES, help="interface language (default: from the locale)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS and verify the relay's certificate")
    parser.add_argument(
        "--cafile", metavar="FILE", help="trust only the certificate authorities in this PEM file (implies --tls)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    strings = Strings(pick_language(args.lang))
    try:
        import tkinter
    except ImportError as exc:
        print(strings("no_tkinter", detail=exc), file=sys.stderr)
        return 2
    try:
        root = tkinter.Tk(className="Susurro")
    except tkinter.TclError as exc:
        print(strings("no_display", detail=exc), file=sys.stderr)
        return 2
    from .app import Options, SusurroApp
    from .app_close import SHUTDOWN_TIMEOUT

    root.withdraw()  # the app's windows are Toplevels; the root only hosts them
    app = SusurroApp(
        root,
        Options(
            server=args.server,
            name=args.name,
            identity=args.identity,
            lang=args.lang,
            tls=args.tls or bool(args.cafile),
            cafile=args.cafile,
        ),
        strings=strings,
        on_exit=root.quit,
    )
    # Ctrl-C and SIGTERM leave cleanly (bye to the relay, settings saved).
    # An exception raised inside a Tk callback would only be printed, so the
    # handlers set a flag that the app's own loop acts on.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: app.request_close())
    app.start()
    try:
        root.mainloop()
    except KeyboardInterrupt:
        pass
    if not app.closed:  # Ctrl-C: leave cleanly all the same, bounded
        app.close()
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        while not app.closed and time.monotonic() < deadline:
            root.update()
            time.sleep(0.02)
    root.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
