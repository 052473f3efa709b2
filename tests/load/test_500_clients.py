"""500 members on one relay: all join, each sends 5 room messages, every one of
the 500 × 5 × 499 deliveries arrives (counted), all leave, and the relay's
threads and descriptors return to their baseline.

The relay is a real ``susurro-relay`` subprocess, so it has a core of its own
and its threads and descriptors can be counted from ``/proc``. The 500 members
are raw protocol clients driven by one selector loop in this process: each
joins for real (its own identity key, certificate and proof over the relay's
nonce), but the ciphertexts are one pre-made 296-byte blob (the size of a
padded short message) reused for every recipient, since the relay never looks
inside them and sealing 1.2 million copies would only measure PyNaCl. A
delivery is recognised from its frame header without a full msgpack decode.

Limits the test needs are set explicitly rather than relying on defaults:
500 recipients per send (default 256), 32 MiB outboxes (one member receives
~1 MB while the single load thread serves 499 others), a 60 s handshake
timeout, and the default flood limits written out (each member sends 6
frames after joining, well inside a burst of 20).
"""

from __future__ import annotations

import os
import secrets
import selectors
import socket
import struct
import time
from pathlib import Path

import msgpack
import pytest

from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
from susurro.protocol import Ack, Challenge, Hello, Keepalive, KeepaliveAck, Welcome, decode_frame, encode
from susurro.protocol.frames import RELAY_FRAMES
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from tests.helpers.system import wait_until

CLIENTS = 500
MESSAGES_EACH = 5
#: The target is 500 joins within 10 s; that is measured and printed on every
#: run (about 6 s on the shared two-core machine, while other suites ran). The
#: assertion is looser by default because a loaded CI machine must not turn a
#: slow minute into a red build; SUSURRO_LOAD_JOIN_SECONDS=10 makes it strict.
JOIN_SECONDS = float(os.environ.get("SUSURRO_LOAD_JOIN_SECONDS", "30"))
#: Bound on the whole message phase (1,247,500 deliveries) on a shared two-core machine.
DELIVERY_SECONDS = 300.0
#: Fail early if no delivery arrives for this long (something was lost, not slow).
STALL_SECONDS = 30.0
CT = secrets.token_bytes(296)
KEEPALIVE_ACK = encode(KeepaliveAck())
_LENGTH = struct.Struct(">I")
#: How every ``deliver`` payload begins: a 5-entry map, then "v": 1, "t": "deliver".
DELIVER_HEAD = b"\x85\xa1v\x01\xa1t\xa7deliver"
#: And every ``joined``: 125,000 of them while 500 members arrive; counted, not parsed.
JOINED_HEAD = b"\x83\xa1v\x01\xa1t\xa6joined"


def process_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def process_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class LoadClient:
    __slots__ = ("acks", "buffer", "cert", "delivers", "identity", "issued_at", "joined", "joins_seen", "missing")
    __slots__ += ("name", "out", "sent", "session", "sock", "writing")

    def __init__(self, name: str) -> None:
        """Keys and certificate are made here, before any clock starts."""
        self.name = name
        self.identity = IdentityKey.generate()
        self.session = SessionKey.generate()
        self.issued_at = int(time.time())
        self.cert = SessionCertificate.issue(self.identity, name, self.session.public, self.issued_at)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.buffer = bytearray()
        self.joins_seen = 0
        self.out = bytearray()
        self.joined = False
        self.delivers = 0
        self.acks = 0
        self.missing = 0
        self.sent = 0
        self.writing = False

    def hello(self, challenge: Challenge) -> bytes:
        return encode(
            Hello(
                name=self.name,
                ik=self.identity.public,
                sk=self.session.public,
                cert=self.cert.signature,
                issued_at=self.issued_at,
                proof=join_proof(self.identity, challenge.nonce, self.name, self.session.public),
            )
        )

    def frames(self) -> list[bytes]:
        """Complete payloads in the buffer; deliveries are only counted, not returned."""
        out: list[bytes] = []
        buf = self.buffer
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = _LENGTH.unpack_from(buf, pos)
            assert 0 < length <= ABSOLUTE_MAX_FRAME
            if end - pos - 4 < length:
                break
            start = pos + 4
            if buf[start : start + len(DELIVER_HEAD)] == DELIVER_HEAD:
                self.delivers += 1
            elif buf[start : start + len(JOINED_HEAD)] == JOINED_HEAD:
                self.joins_seen += 1
            else:
                out.append(bytes(buf[start : start + length]))
            pos = start + length
        del buf[:pos]
        return out


def send_frame(client: LoadClient, others: list[str], index: int) -> bytes:
    payload = msgpack.packb(
        {"v": 1, "t": "send", "id": f"{client.name}-{index}", "to": dict.fromkeys(others, CT)}, use_bin_type=True
    )
    return _LENGTH.pack(len(payload)) + payload


def pump(selector: selectors.BaseSelector, timeout: float) -> list[tuple[LoadClient, bytes]]:
    """One selector round: write what is pending, read what arrived; returns non-delivery payloads."""
    payloads: list[tuple[LoadClient, bytes]] = []
    for key, mask in selector.select(timeout):
        client: LoadClient = key.data
        if mask & selectors.EVENT_WRITE and client.out:
            try:
                sent = client.sock.send(client.out)
            except BlockingIOError:
                sent = 0
            del client.out[:sent]
        if mask & selectors.EVENT_READ:
            while True:
                try:
                    data = client.sock.recv(1 << 20)
                except BlockingIOError:
                    break
                if not data:
                    raise AssertionError(f"the relay closed {client.name}'s connection")
                client.buffer += data
                if len(data) < (1 << 20):
                    break
            payloads.extend((client, p) for p in client.frames())
    return payloads


def watch(selector: selectors.BaseSelector, client: LoadClient) -> None:
    """Ask for writability only while there is something to write."""
    want = bool(client.out)
    if want != client.writing:
        selector.modify(client.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0), client)
        client.writing = want


@pytest.mark.timeout(DELIVERY_SECONDS + 200)
def test_500_members_5_messages_each_every_delivery_arrives_and_the_relay_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers.processes import RelayProcess

    relay = RelayProcess(
        tmp_path,
        "--log-level", "WARNING",
        "--max-clients", str(CLIENTS + 50),
        "--max-recipients", str(CLIENTS),
        "--outbox-bytes", str(32 * 1024 * 1024),
        "--handshake-timeout", "60",
        "--rate-burst", "20",
        "--rate-per-second", "10",
        "--max-per-ip", "16",  # loopback is exempt (the default), as every member here is on 127.0.0.1
    )  # fmt: skip
    selector = selectors.DefaultSelector()
    clients: list[LoadClient] = []
    try:
        host, port = relay.address.rsplit(":", 1)
        pid = relay.proc.pid
        wait_until(lambda: process_threads(pid) > 0, "the relay is up")
        baseline_threads, baseline_fds = process_threads(pid), process_fds(pid)

        # --- join -------------------------------------------------------------------
        names = [f"u{i:03d}" for i in range(CLIENTS)]
        clients += [LoadClient(name) for name in names]
        started = time.monotonic()
        for client in clients:
            client.sock.connect_ex((host, int(port)))
            selector.register(client.sock, selectors.EVENT_READ, client)
        joined = 0
        deadline = started + 60
        while joined < CLIENTS:
            assert time.monotonic() < deadline, f"only {joined} of {CLIENTS} joined"
            for client, payload in pump(selector, 1.0):
                frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=ABSOLUTE_MAX_FRAME)
                if isinstance(frame, Challenge):
                    client.out += client.hello(frame)
                elif isinstance(frame, Welcome):
                    client.joined = True
                    joined += 1
                elif isinstance(frame, Keepalive):  # answered as a real client does
                    client.out += KEEPALIVE_ACK
                else:
                    raise AssertionError(f"unexpected {frame!r}")
            for client in clients:
                watch(selector, client)
        join_seconds = time.monotonic() - started
        peak_threads, peak_fds = process_threads(pid), process_fds(pid)

        # --- 5 room messages each, every delivery counted -------------------------------------
        started = time.monotonic()
        expected_each = MESSAGES_EACH * (CLIENTS - 1)
        deadline = started + DELIVERY_SECONDS
        done = 0
        progress, last_progress = -1, time.monotonic()
        while done < CLIENTS:
            assert time.monotonic() < deadline, f"{done} of {CLIENTS} members got everything in time"
            arrived = sum(c.delivers for c in clients)
            if arrived != progress:
                progress, last_progress = arrived, time.monotonic()
            # A lost delivery would otherwise only show at the deadline: fail as soon as nothing moves.
            assert time.monotonic() - last_progress < STALL_SECONDS, (
                f"no delivery for {STALL_SECONDS:g} s: {arrived:,} of {CLIENTS * expected_each:,} arrived"
            )
            for client in clients:  # top up: one send frame in flight per member at a time
                if not client.out and client.sent < MESSAGES_EACH:
                    client.out += send_frame(client, [n for n in names if n != client.name], client.sent)
                    client.sent += 1
                watch(selector, client)
            for client, payload in pump(selector, 0.5):
                frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=ABSOLUTE_MAX_FRAME)
                if isinstance(frame, Keepalive):  # a member quiet for 60 s while it receives
                    client.out += KEEPALIVE_ACK
                    continue
                assert isinstance(frame, Ack), frame
                client.acks += 1
                client.missing += len(frame.missing)
            done = sum(c.delivers >= expected_each and c.acks == MESSAGES_EACH for c in clients)
        delivery_seconds = time.monotonic() - started
        total = sum(c.delivers for c in clients)
        assert total == CLIENTS * MESSAGES_EACH * (CLIENTS - 1) == 1_247_500
        assert all(c.delivers == expected_each for c in clients)
        assert sum(c.missing for c in clients) == 0
        # Everyone heard of everyone who joined after them: 0 + 1 + ... + 499 announcements.
        assert sum(c.joins_seen for c in clients) == CLIENTS * (CLIENTS - 1) // 2

        # --- everyone leaves; the relay's threads and descriptors go back to baseline -----------
        bye = encode_bye()
        for client in clients:
            selector.unregister(client.sock)
            client.sock.setblocking(True)
            client.sock.settimeout(10)
            client.sock.sendall(bye)
            client.sock.close()
        wait_until(lambda: process_threads(pid) == baseline_threads, "relay threads back to baseline", timeout=60)
        wait_until(lambda: process_fds(pid) == baseline_fds, "relay descriptors back to baseline", timeout=60)
        with capsys.disabled():
            print(
                f"\n[load] {CLIENTS} joined in {join_seconds:.2f} s; {total:,} deliveries in {delivery_seconds:.1f} s "
                f"({total / delivery_seconds:,.0f}/s); relay threads {baseline_threads} -> {peak_threads} -> "
                f"{process_threads(pid)}, descriptors {baseline_fds} -> {peak_fds} -> {process_fds(pid)}"
            )
        assert join_seconds <= JOIN_SECONDS, f"{CLIENTS} joins took {join_seconds:.1f} s (bound {JOIN_SECONDS:g} s)"
    finally:
        selector.close()
        for client in clients:
            client.sock.close()
        relay.stop()


def encode_bye() -> bytes:
    payload = msgpack.packb({"v": 1, "t": "bye"}, use_bin_type=True)
    return _LENGTH.pack(len(payload)) + payload
