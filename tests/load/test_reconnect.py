"""Clients that ride through faults: a relay killed and restarted, a relay that
sends garbage, a relay that never acknowledges.

Real relays (a ``susurro-relay`` subprocess, so it can be SIGKILLed) and real
``RelayConnection`` clients; every wait bounded, loopback only.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.reconnect import Backoff
from susurro.client.session import ClientSession, SendError
from susurro.crypto import IdentityKey
from susurro.crypto.trust import TrustStore
from susurro.protocol import Ack, Challenge, Frame, Hello, encode, name_key
from susurro.relay import RelayServer
from tests.helpers.system import WAIT, arrivals, free_port, wait_until

Factory = Callable[..., RelayServer]
#: Fast retries for tests: 0.1 s doubling to 1 s.
FAST = {"initial": 0.1, "cap": 1.0}


class Member:
    """A real client core over a real socket, with its event log."""

    def __init__(self, name: str, host: str, port: int, home: Path, **options: object) -> None:
        self.name = name
        self.trust_file = home / f"{name}-trust.json"
        self.events: queue.Queue[object] = queue.Queue()
        self.log: list[ev.Event] = []
        home.mkdir(parents=True, exist_ok=True)
        trust = TrustStore.open(self.trust_file, key_of=name_key)
        session = ClientSession(IdentityKey.generate(), name, relay=f"{host}:{port}", trust=trust)
        options.setdefault("backoff", Backoff(**FAST))
        self.connection = RelayConnection.open(session, host, port, self.events, **options)  # type: ignore[arg-type]

    def wait_for(self, match: Callable[[ev.Event], bool], what: str, timeout: float = WAIT) -> ev.Event:
        for event in self.log:
            if match(event):
                self.log.remove(event)
                return event
        for event in arrivals(self.events, timeout):
            assert isinstance(event, ev.Event)
            if match(event):
                return event
            self.log.append(event)
        raise AssertionError(f"{self.name}: no {what} within {timeout:g} s; got {self.log!r}")

    def wait(self, kind: type[ev.Event], timeout: float = WAIT) -> ev.Event:
        return self.wait_for(lambda e: isinstance(e, kind), kind.__name__, timeout)

    def message(self, text: str) -> ev.Message:
        event = self.wait_for(lambda e: isinstance(e, ev.Message) and e.text == text, f"message {text!r}")
        assert isinstance(event, ev.Message)
        return event

    def warning(self, kind: str) -> ev.Warning:
        event = self.wait_for(lambda e: isinstance(e, ev.Warning) and e.kind == kind, f"{kind} warning")
        assert isinstance(event, ev.Warning)
        return event


@pytest.fixture
def members() -> Iterator[list[Member]]:
    opened: list[Member] = []
    try:
        yield opened
    finally:
        for member in opened:
            member.connection.close()


# --- a relay killed and restarted ---------------------------------------------------


def test_relay_killed_and_restarted_clients_come_back_chat_and_keep_their_pins(
    tmp_path: Path, members: list[Member], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers.processes import RelayProcess

    port = free_port()
    relay = RelayProcess(tmp_path, "--port", str(port))
    try:
        names = ["alice", "bob", "carol"]
        for name in names:
            # alice, who types during the outage, retries more slowly than the others, so
            # that they are usually back when her held message goes out (if not, the
            # delivery report says who missed it, which the test accepts too).
            backoff = {"initial": 1.0, "cap": 2.0} if name == "alice" else FAST
            members.append(Member(name, "127.0.0.1", port, tmp_path, backoff=Backoff(**backoff)))
            members[-1].wait(ev.Roster)
        alice, bob, carol = members
        for member in members:  # everyone has seen everyone: first sight pins the keys
            for other in names:
                if other != member.name and other not in {m.name for m in member.connection.members()}:
                    member.wait_for(lambda e, o=other: isinstance(e, ev.Joined) and e.member.name == o, f"{other}")
        alice.connection.send_message("before the crash")
        assert bob.message("before the crash").sender == "alice"
        carol.message("before the crash")

        relay.proc.kill()  # SIGKILL: no shutdown frame, sockets reset by the kernel
        relay.proc.wait(WAIT)
        relay.stop()
        for member in members:
            member.log.clear()  # from here on, only events of the outage and the comeback count
        for member in members:
            reconnecting = member.wait(ev.Reconnecting)
            assert isinstance(reconnecting, ev.Reconnecting) and reconnecting.attempt == 1
        held_id = alice.connection.send_message("typed while the relay was down")
        alice.warning("message_held")

        restarted = time.monotonic()
        relay = RelayProcess(tmp_path, "--port", str(port))
        for member in members:
            member.wait(ev.Connected)
        took = time.monotonic() - restarted
        for member in members:  # and everyone is back in everyone's roster before chatting again
            wait_until(lambda m=member: len(m.connection.members()) == len(names) - 1, f"{member.name} sees everyone")
        with capsys.disabled():
            print(f"\n[reconnect] 3 clients back in the room {took:.2f} s after the relay restarted")

        # The message typed during the outage went out after the reconnect; the report
        # accounts for both people it was typed for, and whoever it names as delivered has it.
        delivery = alice.wait_for(lambda e: isinstance(e, ev.Delivery) and e.msg_id == held_id, "held delivery")
        assert isinstance(delivery, ev.Delivery)
        assert sorted((*delivery.delivered, *delivery.missing)) == ["bob", "carol"]
        for member in (bob, carol):
            if member.name in delivery.delivered:
                member.message("typed while the relay was down")
        assert not any(isinstance(e, ev.Warning) and e.kind == "not_sent" for e in alice.log)
        with capsys.disabled():
            print(f"[reconnect] the held message reached {list(delivery.delivered)}, missed {list(delivery.missing)}")

        # Chat works again, in every direction.
        bob.connection.send_message("after the restart")
        alice.message("after the restart")
        carol.message("after the restart")
        carol.connection.send_message("me too", to=["alice"])
        assert alice.message("me too").direct

        # Pinned keys persisted: the same keys came back, as pinned, not new; and they are on disk.
        for member in members:
            others = {m.name: m for m in member.connection.members()}
            assert set(others) == set(names) - {member.name}
            assert all(info.trust == "pinned" for info in others.values()), others
            pinned = json.loads(member.trust_file.read_text("utf-8"))
            assert set(names) - {member.name} <= set(json.dumps(pinned).split('"')), pinned
    finally:
        relay.stop()


def test_messages_typed_during_an_outage_are_bounded_and_reported_if_never_sent(
    tmp_path: Path, members: list[Member]
) -> None:
    from tests.helpers.processes import RelayProcess

    relay = RelayProcess(tmp_path)
    port = int(relay.address.rsplit(":", 1)[1])
    try:
        alice = Member("alice", "127.0.0.1", port, tmp_path, max_held=2)
        members.append(alice)
        alice.wait(ev.Roster)
        bob = Member("bob", "127.0.0.1", port, tmp_path)
        members.append(bob)
        alice.wait(ev.Joined)
        relay.proc.kill()
        relay.proc.wait(WAIT)
        alice.wait(ev.Reconnecting)
        first = alice.connection.send_message("one")
        second = alice.connection.send_message("two", to=["bob"])
        with pytest.raises(SendError, match="2 messages are already waiting"):
            alice.connection.send_message("three")
        alice.connection.close()  # the user gives up: nothing is dropped silently
        for msg_id in (first, second):
            report = alice.wait_for(lambda e, i=msg_id: isinstance(e, ev.Delivery) and e.msg_id == i, "report")
            assert isinstance(report, ev.Delivery) and report.delivered == () and report.missing == ("bob",)
        assert not any(isinstance(e, ev.Disconnected) for e in alice.log)
    finally:
        relay.stop()


# --- a relay that sends garbage -------------------------------------------------------------


class ScriptedRelay:
    """A fake relay on a loopback port: connection n gets ``scripts[n](sock)``, then is closed."""

    def __init__(self, scripts: list[Callable[[socket.socket], None]]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.scripts = scripts
        self.served = 0
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _serve(self) -> None:
        for script in self.scripts:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with sock:
                sock.settimeout(WAIT)
                try:
                    script(sock)
                except OSError:
                    pass  # the client hung up first: fine
                except BaseException as exc:  # a bug in the script fails the test
                    self.errors.append(exc)
            self.served += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not on Linux
        self.listener.close()
        self.thread.join(WAIT)


def challenge_and_hello(sock: socket.socket) -> None:
    sock.sendall(encode(Challenge(nonce=b"\x07" * 32, max_frame=1 << 20, max_recipients=8)))
    data = sock.recv(65536)
    assert data, "the client answered the challenge"


SIG = b"\x04" * 64


def raw(obj: object) -> bytes:
    # msgpack itself: some of these are not maps, which pack_payload (compiled: its argument's
    # type is checked) refuses.
    payload: bytes = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def test_garbage_from_the_relay_is_a_warning_and_a_reconnect_never_a_crash(
    members: list[Member], tmp_path: Path
) -> None:
    def wrong_types_then_huge(sock: socket.socket) -> None:
        challenge_and_hello(sock)
        sock.sendall(
            encode(Hello(name="x", ik=b"\x01" * 32, sk=b"\x02" * 32, cert=b"\x03" * 64, issued_at=1, proof=SIG))
            + raw({"v": 1, "t": "welcome", "name": 7, "roster": "nope"})
            + raw({"v": 1, "t": "ack", "id": "x", "delivered": [b"\xff"], "missing": {}})
            + raw([1, 2, 3])
            + raw({"v": 99, "t": "deliver"})
            + struct.pack(">I", 0xFFFFFFFF)  # a 4 GiB frame: the stream cannot be trusted further
        )
        sock.recv(65536)  # until the client hangs up

    def bytes_that_are_not_msgpack(sock: socket.socket) -> None:
        sock.sendall(struct.pack(">I", 8) + b"\xc1" * 8 + struct.pack(">I", 0))  # never-used byte, then length 0

    def stays_silent(sock: socket.socket) -> None:
        sock.recv(65536)  # the test closes the client

    fake = ScriptedRelay([wrong_types_then_huge, bytes_that_are_not_msgpack, stays_silent])
    try:
        member = Member("victim", "127.0.0.1", fake.port, tmp_path, reconnect=True)
    except BaseException:
        fake.close()
        raise
    members.append(member)
    try:
        # Five bad frames, each a warning, then the 4 GiB length prefix: a warning, and the stream is dropped.
        warnings = [member.warning("protocol_error") for _ in range(6)]
        assert all("bad frame" in w.detail for w in warnings[:5]), warnings
        assert "frame length 4294967295 exceeds" in warnings[5].detail
        first = member.wait(ev.Reconnecting)
        assert isinstance(first, ev.Reconnecting) and first.attempt == 1
        member.warning("protocol_error")  # the bytes that are not msgpack
        member.warning("protocol_error")  # the zero-length frame ends that stream too
        second = member.wait(ev.Reconnecting)
        assert isinstance(second, ev.Reconnecting) and second.attempt == 2
        deadline = time.monotonic() + WAIT
        while fake.served < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not any(isinstance(e, ev.Disconnected) for e in member.log)
        assert member.connection._reader.is_alive()  # still working, never crashed
    finally:
        member.connection.close()
        fake.close()
    assert not fake.errors, fake.errors
    assert not member.connection._reader.is_alive()


# --- a relay that never acknowledges --------------------------------------------------------


def test_a_missing_ack_is_reported_as_delivery_unknown(
    relay_factory: Factory, members: list[Member], tmp_path: Path
) -> None:
    from tests.helpers.hostile_relay import TamperingProxy

    relay = relay_factory()
    proxy = TamperingProxy(relay.address)
    try:
        host, port = proxy.address
        proxy.expect("alice")
        alice = Member("alice", host, port, tmp_path, reconnect=False, ack_timeout=0.5)
        members.append(alice)
        proxy.expect("bob")
        bob = Member("bob", host, port, tmp_path, reconnect=False)
        members.append(bob)
        wait_until(lambda: [m.name for m in alice.connection.members()] == ["bob"], "alice sees bob")

        def drop_acks(label: str, frame: Frame) -> list[object]:
            return [] if isinstance(frame, Ack) else [frame]

        proxy.set_hook("alice", drop_acks)
        msg_id = alice.connection.send_message("did it arrive?")
        bob.message("did it arrive?")
        warning = alice.warning("delivery_unknown")
        assert msg_id in warning.detail and "no delivery report" in warning.detail
        assert not any(isinstance(e, ev.Delivery) for e in alice.log)
    finally:
        for member in members:
            member.connection.close()
        proxy.close()


def test_a_refusal_of_our_name_is_final_not_retried(
    relay_factory: Factory, members: list[Member], tmp_path: Path
) -> None:
    relay = relay_factory()
    host, port = relay.address
    first = Member("dora", host, port, tmp_path)
    members.append(first)
    first.wait(ev.Connected)
    second = Member("Dora", host, port, tmp_path / "second")
    members.append(second)
    gone = second.wait(ev.Disconnected)
    assert isinstance(gone, ev.Disconnected) and gone.code == "name_taken"
    assert not any(isinstance(e, ev.Reconnecting) for e in second.log)


def test_an_announced_shutdown_is_ridden_through_like_a_crash(
    relay_factory: Factory, members: list[Member], tmp_path: Path
) -> None:
    """``systemctl restart``: the relay says ``shutdown``, then is back on its port; the member comes back."""
    relay = relay_factory()
    host, port = relay.address
    member = Member("erin", host, port, tmp_path)
    members.append(member)
    member.wait(ev.Connected)
    relay.stop("maintenance")
    again = member.wait(ev.Reconnecting)
    assert isinstance(again, ev.Reconnecting) and "maintenance" in again.reason
    relay_factory(port=port)
    member.wait(ev.Connected)
    assert not any(isinstance(e, ev.Disconnected) for e in member.log)
