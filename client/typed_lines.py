"""What each line typed in the terminal does: send it, or run the command it names.

``handle_line`` is the terminal's one entry for a typed line; the slash
commands are parsed by ``commands.parse``, as in the window, and the
terminal's own (local history, rooms) are answered here too. Results go to
``render.Output``, as JSON records and as lines for people.
"""

from __future__ import annotations

import time

from susurro.crypto import IdentityPublicKey, fingerprint
from susurro.crypto.safety import safety_number_rows

from . import commands
from . import events as ev
from .connection import RelayConnection
from .errors import SendError, TrustError
from .events import WarningKind
from .history import history_conversation
from .printable import printable
from .render import Output, history_marks
from .room_commands import ROOM_HELP, RoomCommands

HELP_LINES = [
    "a plain line goes to the current room (/join, /create), or to everyone present before you pick one",
    *(f"{usage:<16} {what}" for name, (usage, what) in commands.USAGE.items() if name is not commands.Name.HELP),
    "/history [NAME] [N]  the last N (20) messages of the room, or of your direct messages with NAME",
    "/forget [NAME]   delete the room's (or NAME's) history from this computer",
]


def handle_line(
    line: str,
    connection: RelayConnection,
    output: Output,
    compared: dict[str, str] | None = None,
    rooms: RoomCommands | None = None,
) -> bool:
    """Act on one typed line (parsed by ``commands.parse``, as the window does); False when leaving.

    ``compared`` remembers the safety number last shown for each name, so
    ``/verified`` marks exactly the key whose number the user compared.
    """
    command = commands.parse(line)
    if command is None:
        return True
    if line.startswith("/") and not line.startswith("//"):
        word, _, rest = line[1:].partition(" ")
        if word.lower() in ("history", "forget"):  # the terminal's own (local history), not in the shared parser
            room_id = rooms.current_room_id(connection.rooms()) if rooms is not None else None
            _history_command(word.lower(), rest.split(), connection, output, room_id)
            return True
    if isinstance(command, commands.RoomCommand):
        rooms = rooms if rooms is not None else RoomCommands(trust=connection.session.trust)
        try:
            for record, text in rooms.run(command, connection):
                output.record(record, text)
        except SendError as exc:
            send_failed(output, str(exc))
    elif isinstance(command, commands.Say):
        if rooms is not None and rooms.current is not None:
            _send(connection, output, command.text, None, rooms.current)
        else:
            _send(connection, output, command.text, None)
    elif isinstance(command, commands.Direct):
        _send(connection, output, command.text, [command.name])
    elif isinstance(command, commands.OnMember):
        _trust_command(str(command.command), command.name, connection, output, {} if compared is None else compared)
    elif isinstance(command, commands.Strict):
        if command.on is not None:
            connection.set_strict(command.on)
        state = "on: sending only to verified members" if connection.session.strict else "off"
        output.record({"event": "strict", "on": connection.session.strict}, f"* strict mode {state}")
    elif isinstance(command, commands.Usage):
        show_usage(output, command.usage)
    elif isinstance(command, commands.Unknown):
        send_failed(
            output,
            f"unknown command /{command.word.lower()}; type /help",
            f"! there is no /{printable(command.word)} command; /help lists them",
        )
    elif command.command is commands.Name.QUIT:
        return False
    elif command.command is commands.Name.WHO:
        output.event(ev.Roster(members=tuple(connection.members())))
    else:  # /help
        for text in [*HELP_LINES, *ROOM_HELP]:
            output.record({"event": "help", "text": text}, text)
    return True


#: Messages ``/history`` shows without a count, and at most.
HISTORY_LINES = 20
MAX_HISTORY_LINES = 1_000


def _history_command(
    command: str, words: list[str], connection: RelayConnection, output: Output, room_id: bytes | None = None
) -> None:
    """``/history [NAME] [N]``, ``/forget [NAME]``: NAME's direct messages, else the current room's (by id)."""
    history = connection.session.history
    count = HISTORY_LINES
    if words and words[-1].isdigit():
        count = max(1, min(int(words.pop()), MAX_HISTORY_LINES))
    if len(words) > 1:
        send_failed(output, f"usage: /{command} [NAME]" + (" [N]" if command == "history" else ""))
        return
    me = connection.session.name
    conversation = history_conversation(bool(words), me, tuple(words), me, None if words else room_id)
    if command == "forget":
        removed = history.forget(conversation)
        output.record(
            {"event": "forgotten", "conversation": conversation, "messages": removed},
            f"* forgot {removed} message(s) of {conversation}",
        )
        return
    page = history.page(conversation, limit=count)
    if not page.entries:
        output.record(
            {"event": "history", "conversation": conversation, "messages": []}, f"* no history for {conversation}"
        )
        return
    lines = [f"* history of {conversation}, oldest first:"]
    trust = connection.session.trust
    messages: list[dict[str, object]] = []
    for entry in page.entries:
        record = entry.record
        now = trust.state(record.sender, record.sender_key) if record.sender_key else None
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.sent_at / 1000))
        sender = "you" if record.outgoing else record.sender
        lines.append(f"  [{stamp}] <{sender}>{history_marks(record, now)} {printable(record.body)}")
        message: dict[str, object] = {
            "from": record.sender, "text": record.body, "sent_at": record.sent_at, "outgoing": record.outgoing,
            "warnings": list(record.warnings),
        }  # fmt: skip
        if record.trust is not None:
            message["trust"] = record.trust.value
        if now is not None:
            message["fingerprint"] = fingerprint(IdentityPublicKey(record.sender_key))
            message["key_now"] = now.value
        messages.append(message)
    if page.refused:
        lines.append(f"! {page.refused} stored message(s) did not open (damaged or moved) and are not shown")
    output.record({"event": "history", "conversation": conversation, "messages": messages}, "\n".join(lines))


def _send(
    connection: RelayConnection, output: Output, text: str, to: list[str] | None, room: str | bytes | None = None
) -> None:
    try:
        sent = connection.send(text, to, room=room)
    except SendError as exc:
        send_failed(output, str(exc))
        return
    except OSError as exc:
        send_failed(output, f"connection to the relay lost ({exc.strerror or exc})")
        return
    record: dict[str, object] = {
        "event": "sent",
        "msg_id": sent.msg_id,
        "to": list(sent.addressed),
        "skipped": list(sent.skipped),
        "direct": to is not None,
    }
    if room is not None:
        state = connection.rooms().state(room)
        record["room"] = (room if isinstance(room, str) else "") if state is None else state.label
        record["room_id"] = "" if state is None else state.room_id.hex()
    output.record(record, None)


def _trust_command(
    command: str, name: str, connection: RelayConnection, output: Output, compared: dict[str, str]
) -> None:
    if not name:
        show_usage(output, f"/{command} NAME")
        return
    try:
        if command == "verify":
            number = connection.safety_number(name)
            rows = safety_number_rows(number)
            text = "\n".join(
                [f"* safety number with {name} (compare it with theirs, in person or by phone):"]
                + [f"    {row}" for row in rows]
                + [f"* if every digit matches: /verified {name}"]
            )
            compared[name] = number
            output.record({"event": "safety_number", "name": name, "number": number}, text)
        elif command == "verified":
            if name not in compared:
                raise TrustError(f"first compare safety numbers with {name}: /verify {name}")
            connection.mark_verified(name, compared.pop(name))
        else:
            connection.accept_key(name)
    except TrustError as exc:
        record = {"event": "warning", "kind": WarningKind.TRUST_FAILED.value, "detail": str(exc), "from": None}
        output.record(record, f"! {exc}")


def send_failed(output: Output, detail: str, text: str | None = None) -> None:
    """A line that was not sent; ``text`` when the words for people differ from the detail for scripts."""
    if text is None:
        while detail.lower().startswith("not sent: "):  # the core's reason may say it already
            detail = detail[len("not sent: ") :]
        text = f"! not sent: {detail}"
    record = {"event": "warning", "kind": WarningKind.SEND_FAILED.value, "detail": detail, "from": None}
    output.record(record, text)


def show_usage(output: Output, usage: str) -> None:
    """A command typed wrong: nothing was sent, so the line says how to type it, not "not sent"."""
    send_failed(output, f"usage: {usage}", f"! usage: {usage}")
