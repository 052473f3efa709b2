"""``susurro-cli``: the terminal client, and the one-command local demo.

One main thread owns the output: it takes both the core's events and the
lines typed on stdin from one queue, so nothing is printed from two threads.
With ``--json`` every line on stdout is one JSON object (for scripts/tests).
"""

from __future__ import annotations

import argparse
import os
import queue
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from susurro.crypto import CryptoError
from susurro.crypto.files import UnsafeFile
from susurro.crypto.trust import TrustStore, TrustStoreError
from susurro.protocol import BadName, name_key, normalize_name

from . import commands, terminal
from . import events as ev
from .connection import RelayConnection
from .demo import DEFAULT_RELAY, LOCAL_RELAY_ENV, start_local_relay
from .history import HistoryError
from .home import identity_path, trust_path
from .lobby import Lobby
from .localstate import open_local_state
from .passphrase import change_identity_passphrase, identity_is_protected, open_identity, read_passphrase_file
from .reconnect import JOIN_TIMEOUT, JoinWait
from .render import Output
from .room_commands import COMMANDS as ROOM_COMMANDS
from .room_commands import RoomCommands
from .session import ClientSession, SendError
from .sockets import ConnectFailed, parse_address, parse_addresses
from .tls import TLSSetupError, client_context
from .typed_lines import handle_line, send_failed

#: On /quit, how long to wait for the receipts of what was just sent before saying what is unconfirmed.
QUIT_GRACE = 2.0

DESCRIPTION = """\
Susurro terminal client: end-to-end encrypted group chat over a blind relay.

Type a line to send it to everyone in the room. Commands:
  /msg NAME TEXT   direct message to one member
  /who             list members with their fingerprints and trust
  /verify NAME     show the safety number to compare with NAME
  /verified NAME   mark NAME verified after the numbers matched
  /accept NAME     accept NAME's changed key (after checking it)
  /strict on|off   send only to verified members
  /history [NAME] [N]  the last N messages of the room (or of your direct messages with NAME)
  /forget [NAME]   delete the room's (or NAME's) history from this computer
  /create, /join, /invite, /rooms, /members, /leave, /remove, /promote: rooms (/help lists them)
  /forget-room LABEL  forget which room LABEL names (a relay that lost its rooms)
  /resume-room LABEL  after a fork, send to LABEL again at the history verified here
  /quit            leave (Ctrl-D works too)
  /help            this list
Start a line with // to send a message that begins with '/'.

Without --server the client uses the relay on 127.0.0.1:12345, starting one
inside this process if none is running there: the one-command local demo.
"""


@dataclass(frozen=True, slots=True)
class TypedLine:
    text: str


@dataclass(frozen=True, slots=True)
class EndOfInput:
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="susurro-cli", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        help=f"relay address (default {DEFAULT_RELAY}, started locally if absent); several, comma-separated, are "
        "the nodes of one relay: the first that answers is used, and the next one after a disconnect",
    )
    parser.add_argument("--name", help="your name in the room (asked for if omitted on a terminal)")
    parser.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help="identity key file (default $SUSURRO_HOME/identities/NAME.key, created on first use)",
    )
    parser.add_argument("--room", metavar="LABEL", help="start in room LABEL (joining it if it is open)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event on stdout (for scripts)")
    keys = parser.add_argument_group("key file passphrase")
    keys.add_argument(
        "--passphrase",
        action="store_true",
        help="protect a new identity key file with a passphrase (asked twice); "
        "the passphrase of a protected file is asked for on a terminal even without this flag",
    )
    keys.add_argument(
        "--passphrase-file",
        metavar="FILE",
        type=Path,
        help="read the passphrase from the first line of FILE instead of asking (for scripts; keep it mode 600)",
    )
    keys.add_argument(
        "--change-passphrase",
        action="store_true",
        help="add, change or remove the passphrase of the identity key file, then exit",
    )
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="keep no history on this computer (by default messages are kept, encrypted, in $SUSURRO_HOME/history)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="send only to members you verified (/verified NAME); others are listed as skipped",
    )
    tls = parser.add_argument_group(
        "TLS (hides metadata from the network; messages are end-to-end encrypted either way)"
    )
    tls.add_argument("--tls", action="store_true", help="connect with TLS and verify the relay's certificate")
    tls.add_argument(
        "--cafile",
        metavar="FILE",
        help="trust only the certificate authorities in this PEM file (implies --tls; default: the system's)",
    )
    return parser


def uses_demo_relay(args: argparse.Namespace, tls: ssl.SSLContext | None) -> bool:
    """No --server, or the demo's address written out (--server 127.0.0.1:12345): the one-command demo."""
    demo = os.environ.get(LOCAL_RELAY_ENV, DEFAULT_RELAY)
    return not args.server or (tls is None and args.server.strip() == demo)


def connect(
    args: argparse.Namespace,
    session: ClientSession,
    events: queue.Queue[object],
    output: Output,
    tls: ssl.SSLContext | None = None,
) -> tuple[RelayConnection, Callable[[], None] | None]:
    stop_relay: Callable[[], None] | None = None
    if not uses_demo_relay(args, tls):
        (host, port), *others = parse_addresses(args.server)  # several: the nodes of one cluster
        return RelayConnection.open(session, host, port, events, tls=tls, others=others), None
    host, port = parse_address(os.environ.get(LOCAL_RELAY_ENV, DEFAULT_RELAY))
    for _attempt in range(2):
        try:
            return RelayConnection.open(session, host, port, events), stop_relay
        except ConnectFailed:
            if stop_relay is not None:
                raise
            stop_relay = start_local_relay(host, port, output.notice)
            if stop_relay is None:  # lost a race with another demo: connect to it
                time.sleep(0.2)
    return RelayConnection.open(session, host, port, events), stop_relay


# --- main loop -----------------------------------------------------------------


def _read_stdin(lines: queue.Queue[object]) -> None:
    for line in sys.stdin:
        lines.put(TypedLine(line.rstrip("\r\n")))
    lines.put(EndOfInput())


#: The commands Tab completes (and /help lists), in the order people reach for them.
COMMANDS = (*commands.WORDS, "/history", "/forget", *sorted(f"/{word}" for word in ROOM_COMMANDS))
#: Exit status when the person pressed Ctrl-C before the chat began (as shells report SIGINT).
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Ctrl-C anywhere leaves cleanly: no traceback, whatever was running."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return INTERRUPTED


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever the locale, a peer's text must never crash the client: what the
    # terminal cannot show is replaced, and undecodable input becomes U+FFFD.
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    output = Output(args.json)
    tty = terminal.interactive(args.json)
    tls: ssl.SSLContext | None = None
    if args.tls or args.cafile:
        if not args.server:
            print("susurro-cli: --tls needs --server (the local demo relay has no certificate)", file=sys.stderr)
            return 2
        try:
            tls = client_context(args.cafile)
        except TLSSetupError as exc:
            print(f"susurro-cli: {exc}", file=sys.stderr)
            return 2
    name = args.name
    if name is None:
        if not sys.stdin.isatty():
            print("susurro-cli: --name is required when stdin is not a terminal", file=sys.stderr)
            return 2
        name = terminal.ask("Your name: ") if tty else _input_line("Your name: ")
        if name is None:  # Ctrl-C or Ctrl-D: no name, nothing to do
            return INTERRUPTED
    try:
        name = normalize_name(name)
        key_file = args.identity or identity_path(name)
        passphrase = read_passphrase_file(args.passphrase_file) if args.passphrase_file else None
        if args.change_passphrase:
            protected = change_identity_passphrase(key_file, passphrase=passphrase, interactive=sys.stdin.isatty())
            print(f"{key_file} is now {'protected by a passphrase' if protected else 'not protected'}", file=sys.stderr)
            return 0
        identity, created = open_identity(
            key_file,
            protect=args.passphrase,
            passphrase=passphrase,
            interactive=sys.stdin.isatty(),
            busy=output.notice,
        )
        if tty:
            terminal.discard_typeahead()  # typed while argon2id ran: never sent as a message
    except BadName as exc:
        detail = "names cannot contain spaces (use _ or -)" if any(ch.isspace() for ch in name) else exc.detail
        print(f"susurro-cli: invalid name {name!r}: {detail}", file=sys.stderr)
        return 2
    except (CryptoError, OSError) as exc:
        print(f"susurro-cli: {exc}", file=sys.stderr)
        return 2
    if created:
        output.notice(f"created a new identity key for {name} in {key_file}")
    if (args.passphrase or args.passphrase_file) and not created and not identity_is_protected(key_file):
        output.notice(f"{key_file} is not passphrase-protected; add one with --change-passphrase")

    events: queue.Queue[object] = queue.Queue()
    relay_label = args.server or os.environ.get(LOCAL_RELAY_ENV, DEFAULT_RELAY)
    try:
        trust = TrustStore.open(trust_path(), key_of=name_key)
    except TrustStoreError as exc:
        print(f"susurro-cli: {exc}", file=sys.stderr)
        return 2
    try:
        history, mailbox, counters = open_local_state(
            identity, name, trust, keep_history=not args.no_history, notice=output.notice
        )
    except (HistoryError, CryptoError, OSError, UnsafeFile) as exc:
        print(f"susurro-cli: {exc}", file=sys.stderr)
        return 2
    session = ClientSession(
        identity, name, relay=relay_label, trust=trust, strict=args.strict, history=history, mailbox=mailbox,
        replay=counters.replay, counters=counters.counters, unconfirmed=counters.unconfirmed,
        save_state=lambda now, force: counters.save(now, force=force),
        # The one-command demo lands everyone on this machine in one open room (decision 30).
        lobby=Lobby() if uses_demo_relay(args, tls) else None,
        remembered_rooms=counters.rooms.get(relay_label, ()),
    )  # fmt: skip
    counters.room_source = (relay_label, session.rooms.remember)  # label pins and heads outlive the process
    session.rooms.restore_invitations(  # and invitations not answered, and rooms still to check
        counters.invitations.get(relay_label, ()), counters.checks.get(relay_label, ())
    )
    counters.invitation_source = (relay_label, session.rooms.invites.saved)
    counters.check_source = (relay_label, session.rooms.saved_checks)
    for warning in counters.load_warnings():  # a saved entry left out is said, drawn like any warning
        events.put(warning)
    try:
        connection, stop_relay = connect(args, session, events, output, tls)
    except (ConnectFailed, ValueError) as exc:
        print(f"susurro-cli: {exc}", file=sys.stderr)
        return 1
    try:
        if not tty:
            return run(connection, events, output, args.room, plain=tls is None)
        prompt = terminal.Prompt(
            f"{name}> ",
            terminal.ChatCompleter(COMMANDS, lambda: [m.name for m in connection.members()]),
            on_line=lambda line: events.put(TypedLine(line)),
            on_end=lambda: events.put(EndOfInput()),
        )
        return prompt.run(
            lambda: run(connection, events, output, args.room, start_input=prompt.joined, plain=tls is None)
        )
    except KeyboardInterrupt:
        return 0
    finally:
        connection.close()
        if stop_relay is not None:
            stop_relay()


def _input_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):
        return None


#: Said once when a plain connection is closed before the relay said anything: what a TLS relay does.
TLS_HINT = "the relay closed the connection before greeting us; if it serves TLS, start with --tls (or --cafile FILE)"


def run(
    connection: RelayConnection,
    events: queue.Queue[object],
    output: Output,
    room: str | None = None,
    start_input: Callable[[], None] | None = None,
    *,
    plain: bool = False,
) -> int:
    """The chat loop: events and typed lines from one queue. ``start_input`` replaces the stdin reader.

    Lines are read once the room is joined: from stdin by a thread (scripts),
    or by the terminal UI, which ``start_input`` tells to show its prompt.
    """
    # 20 s for the relay to answer, started again by each cluster_down refusal (``JoinWait``).
    wait = JoinWait(time.monotonic(), JOIN_TIMEOUT)
    joined = hinted = False
    compared: dict[str, str] = {}
    rooms = RoomCommands(trust=connection.session.trust)
    while True:
        timeout = None if joined else wait.left(time.monotonic())
        try:
            item = events.get(timeout=timeout)
        except queue.Empty:
            output.event(ev.Disconnected(reason=wait.gave_up()))
            if plain and not hinted:
                output.notice(TLS_HINT)
            return 1
        if isinstance(item, ev.Event):
            if not joined:
                wait.seen(item, time.monotonic())
            output.event(item)
            try:
                rooms.seen(item, connection)
            except SendError as exc:
                send_failed(output, str(exc))
            if plain and not joined and not hinted and isinstance(item, ev.Reconnecting | ev.Disconnected):
                if "closed the connection" in (item.reason or ""):
                    hinted = True
                    output.notice(TLS_HINT)
            if isinstance(item, ev.Connected) and not joined:  # again after a reconnect: one reader is enough
                joined = True
                if room is not None:
                    handle_line(f"/join {room}", connection, output, compared, rooms)
                if start_input is not None:
                    start_input()
                else:
                    threading.Thread(target=_read_stdin, args=(events,), name="stdin", daemon=True).start()
            elif isinstance(item, ev.Disconnected):
                return 1
        elif isinstance(item, TypedLine):
            if not handle_line(item.text, connection, output, compared, rooms):
                return _leave(connection, events, output)
        elif isinstance(item, EndOfInput):
            return _leave(connection, events, output)


def _leave(connection: RelayConnection, events: queue.Queue[object], output: Output) -> int:
    """Before closing: each message no receipt has confirmed yet is said (the state file keeps it to send
    again next time), after a short wait for receipts still on their way."""
    deadline = time.monotonic() + QUIT_GRACE
    while connection.outstanding() and (left := deadline - time.monotonic()) > 0:
        try:
            item = events.get(timeout=min(left, 0.1))
        except queue.Empty:
            continue
        if isinstance(item, ev.Event):
            output.event(item)
    for event in connection.outstanding():
        output.event(event)
    return 0


if __name__ == "__main__":
    sys.exit(main())
