"""Signing in, without Tk: check the form, load the key, reach the relay.

``open_session`` runs on the GUI's worker thread (it blocks on the key file
and the network). Every way it can fail becomes a ``SignInError`` naming the
form field to fix and a sentence for the user; the dialog shows exactly that,
so nothing ends in a traceback. ``refusal`` does the same for a relay that
answers but will not let us in (name taken, bad name).
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from susurro import crypto
from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.demo import DEFAULT_RELAY, LOCAL_RELAY_ENV, start_local_relay
from susurro.client.history import History, HistoryError, SqliteHistory
from susurro.client.home import history_path, identity_path, trust_path
from susurro.client.lobby import Lobby
from susurro.client.localstate import open_local_state
from susurro.client.session import ClientSession
from susurro.client.sockets import ConnectFailed, parse_addresses
from susurro.client.tls import TLSSetupError, client_context
from susurro.crypto.files import UnsafeFile
from susurro.crypto.history import HistoryKey
from susurro.crypto.trust import TrustStore, TrustStoreError
from susurro.protocol import BadName, ErrorCode, name_key, normalize_name

from ..reconnect import JOIN_TIMEOUT as RECONNECT_JOIN_TIMEOUT
from .strings import Strings

#: How long the relay may take to answer an attempt with its welcome (``reconnect.JoinWait``).
JOIN_TIMEOUT = RECONNECT_JOIN_TIMEOUT
#: Fields of the sign-in form, as named in ``SignInError.field``.
FIELDS = ("name", "relay", "identity", "passphrase")


class SignInError(Exception):
    """A sign-in that failed, with the form field to highlight and the words to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInRequest:
    name: str
    relay: str
    identity: str = ""  # empty: the default key file for this name
    passphrase: str | None = None
    #: May a relay be started in this process if none answers? Only for the
    #: default local address, and never when the user named a server.
    allow_local_relay: bool = False
    #: TLS to the relay (``--tls``), trusting ``cafile`` or the system's CAs.
    tls: bool = False
    cafile: str = ""
    #: The trust store (pinned keys); empty: ``$SUSURRO_HOME/trust.json``.
    trust_file: str = ""


@dataclass(slots=True, kw_only=True)
class OpenedSession:
    connection: RelayConnection
    events: queue.Queue[object]
    name: str
    relay: str
    key_file: Path
    created_key: bool
    stop_relay: Callable[[], None] | None = None
    started_relay: bool = False
    #: A second, read-only use of the history file, for the worker thread to read pages from
    #: (the session writes through its own connection, on the reader thread).
    history: History | None = None
    #: The rooms an earlier run verified on this relay (their ids), asked for again at the start.
    remembered_rooms: tuple[bytes, ...] = ()
    #: What opening the local files has to tell the user (a file left to another key), in English.
    notices: tuple[str, ...] = ()


def default_relay() -> str:
    """The one-command demo's address (tests move it to a free port with the env variable)."""
    return os.environ.get(LOCAL_RELAY_ENV, DEFAULT_RELAY)


def key_file_for(name: str, identity: str) -> Path | None:
    """The key file the form points at: the given one, else the default for a valid name."""
    if identity.strip():
        return Path(identity.strip()).expanduser()
    try:
        return identity_path(normalize_name(name))
    except BadName:
        return None


def needs_passphrase(path: Path | None) -> bool:
    """Whether the key file exists and is protected (so the form shows the passphrase field)."""
    if path is None or not path.exists():
        return False
    try:
        return crypto.is_protected(path)
    except (crypto.CryptoError, OSError, ValueError):
        return False  # loading will report what is wrong with the file


def load_key(path: Path, passphrase: str | None, strings: Strings) -> tuple[crypto.IdentityKey, bool]:
    """Load or create the identity key; errors name the field to fix."""
    try:
        return crypto.load_or_create_identity(path, passphrase or None)
    except crypto.PassphraseRequired:
        raise SignInError("passphrase", strings("err_passphrase_required")) from None
    except crypto.WrongPassphrase:
        raise SignInError("passphrase", strings("err_wrong_passphrase")) from None
    except crypto.CryptoError as exc:
        raise SignInError("identity", strings("err_identity", detail=str(exc))) from None
    except OSError as exc:
        raise SignInError("identity", strings("err_identity", detail=exc.strerror or str(exc))) from None


def bad_name_message(name: str, detail: str, strings: Strings) -> str:
    """Why a name is refused, in words: spaces are the usual case; the rule's own words only in English."""
    if any(ch.isspace() for ch in name):
        return strings("err_name_space")
    if strings.language == "en":
        return strings("err_bad_name", detail=detail)
    return strings("err_name_rules")


def unreachable(relay: str, exc: Exception, strings: Strings) -> str:
    """ "Cannot reach the relay at HOST:PORT: why", saying where once (the core's text says it too)."""
    return strings("err_unreachable", relay=relay, detail=strings.reason(str(exc)))


def validate(request: SignInRequest, strings: Strings) -> tuple[str, list[tuple[str, int]]]:
    """Check the form before touching files or the network: (name, the relay's addresses).

    Several addresses, ``a:12345,b:12345`` as for ``susurro-cli --server``, are the nodes of one relay:
    the first that answers is used, and a reconnect goes to the next one (``client.reconnect.Addresses``).
    """
    if not request.name.strip():
        raise SignInError("name", strings("err_name_empty"))
    try:
        name = normalize_name(request.name.strip())
    except BadName as exc:
        raise SignInError("name", bad_name_message(request.name.strip(), exc.detail, strings)) from None
    try:
        addresses = parse_addresses(request.relay)
    except ValueError as exc:
        raise SignInError("relay", strings("err_bad_address", detail=str(exc))) from None
    return name, addresses


def open_session(request: SignInRequest, strings: Strings) -> OpenedSession:
    """Validate, load the key and connect (blocking: run it off the Tk thread).

    With ``allow_local_relay`` and nobody listening, start the same in-process
    demo relay ``susurro-cli`` starts (``client.demo.start_local_relay``).
    """
    name, addresses = validate(request, strings)
    (host, port), *others = addresses
    key_file = key_file_for(name, request.identity)
    assert key_file is not None  # the name is valid
    identity, created = load_key(key_file, request.passphrase, strings)
    relay_label = request.relay.strip()
    try:
        trust = TrustStore.open(Path(request.trust_file) if request.trust_file else trust_path(), key_of=name_key)
    except (TrustStoreError, OSError) as exc:
        raise SignInError("", strings("err_trust_store", detail=str(exc))) from None
    tls = None
    if request.tls or request.cafile:
        try:
            tls = client_context(request.cafile or None)
        except TLSSetupError as exc:
            raise SignInError("relay", strings("err_tls", detail=str(exc))) from None
    try:
        # What the terminal client keeps too: history, prekeys (so others can write while we are
        # away, and so we send receipts), counters. All sealed under keys derived from the identity key.
        notices: list[str] = []
        history, mailbox, counters = open_local_state(identity, name, trust, notice=notices.append)
        reader: History = SqliteHistory(history_path(identity.public), HistoryKey.derive(identity))
    except (HistoryError, crypto.CryptoError, OSError, UnsafeFile) as exc:
        raise SignInError("", strings("err_local_state", detail=str(exc))) from None
    session = ClientSession(
        identity, name, relay=relay_label, trust=trust, history=history, mailbox=mailbox,
        replay=counters.replay, counters=counters.counters, unconfirmed=counters.unconfirmed,
        save_state=lambda now, force: counters.save(now, force=force),
        # The one-command demo: everyone who starts it lands in its open room, with no invite step.
        lobby=Lobby() if request.allow_local_relay and not request.tls and not request.cafile else None,
        remembered_rooms=counters.rooms.get(relay_label, ()),
    )  # fmt: skip
    # As the terminal does: each room's label pin and verified head outlive the window, per relay, so a
    # relay that rolls a room back or puts another room under its label is caught after a restart too.
    counters.room_source = (relay_label, session.rooms.remember)
    session.rooms.restore_invitations(  # and invitations not answered, and rooms still to check
        counters.invitations.get(relay_label, ()), counters.checks.get(relay_label, ())
    )
    counters.invitation_source = (relay_label, session.rooms.invites.saved)
    counters.check_source = (relay_label, session.rooms.saved_checks)
    events: queue.Queue[object] = queue.Queue()
    for warning in counters.load_warnings():  # a saved entry left out is said, drawn like any warning
        events.put(warning)
    stop_relay: Callable[[], None] | None = None
    try:
        connection = RelayConnection.open(session, host, port, events, tls=tls, others=others)
    except ConnectFailed as exc:
        if not request.allow_local_relay or tls is not None or others:
            raise SignInError("relay", unreachable(relay_label, exc, strings)) from None
        stop_relay = start_local_relay(host, port, lambda _text: None)  # the window says it in its own words
        if stop_relay is None:  # another demo won the race for the port: join it
            time.sleep(0.2)
        try:
            connection = RelayConnection.open(session, host, port, events)
        except ConnectFailed as again:
            if stop_relay is not None:
                stop_relay()
            raise SignInError("relay", unreachable(relay_label, again, strings)) from None
    return OpenedSession(
        connection=connection,
        events=events,
        name=name,
        relay=relay_label,
        key_file=key_file,
        created_key=created,
        stop_relay=stop_relay,
        started_relay=stop_relay is not None,
        history=reader,
        remembered_rooms=tuple(room.room_id for room in counters.rooms.get(relay_label, ())),
        notices=tuple(notices),
    )


def refusal(event: ev.Disconnected, name: str, strings: Strings) -> SignInError:
    """The relay ended the session before welcoming us: which field, which words."""
    if event.code == ErrorCode.NAME_TAKEN:
        return SignInError("name", strings("err_name_taken", name=name))
    if event.code == ErrorCode.BAD_NAME:
        return SignInError("name", bad_name_message(name, event.reason, strings))
    return SignInError("relay", strings("err_refused", detail=event.reason))
