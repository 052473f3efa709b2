"""A raw-socket protocol client for adversarial tests (not a test module).

It speaks the wire protocol byte by byte, so a test can send anything: bytes
that are not frames, frames the ``protocol`` package would refuse to build, or
a perfectly valid join. Reads go through ``FrameDecoder`` and ``decode_frame``
with ``RELAY_FRAMES``, so everything the relay sends back is validated too.

Every wait is bounded: a read that gets nothing within ``timeout`` seconds
raises ``NoFrame``, because a hung test is a bug in itself.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
from susurro.protocol import (
    RELAY_FRAMES,
    Ack,
    Challenge,
    Deliver,
    Error,
    Frame,
    FrameDecoder,
    Hello,
    Ping,
    Pong,
    Send,
    Welcome,
    decode_frame,
    encode,
)
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME

#: Upper bound on any single wait for the relay, in seconds.
DEFAULT_TIMEOUT = 5.0
#: Frames every member sees when others come and go; tests may skip them.
ROSTER_NOISE = ("joined", "left")


class NoFrame(AssertionError):
    """The relay sent nothing (or closed) where a frame was expected."""


class Closed(NoFrame):
    """The relay closed the connection where a frame was expected."""


def length_prefix(length: int) -> bytes:
    return struct.pack(">I", length)


def raw_frame(obj: Any) -> bytes:
    """Length-prefix any msgpack-able object, bypassing every local check.

    msgpack itself, not ``pack_payload``: that takes only a map (and, compiled, checks it does)."""
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return raw_payload_frame(packed)


def raw_payload_frame(payload: bytes) -> bytes:
    return length_prefix(len(payload)) + payload


def unique_name(prefix: str = "m") -> str:
    """A fresh valid member name, so helpers never collide with a test's names."""
    return f"{prefix}{secrets.token_hex(6)}"


class HostileClient:
    """One TCP connection to a relay, driven frame by frame by a test."""

    def __init__(self, address: tuple[str, int], timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None) -> None:
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:  # before connect, so the TCP window starts small
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise
        self._decoder = FrameDecoder(ABSOLUTE_MAX_FRAME)
        self._frames: deque[Frame] = deque()
        self._eof = False
        self._challenge: Challenge | None = None
        self.name: str | None = None
        self.identity: IdentityKey | None = None
        self.session: SessionKey | None = None

    # --- context manager ------------------------------------------------------

    def __enter__(self) -> HostileClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self) -> None:
        """Close with a TCP RST instead of a FIN (SO_LINGER on, zero timeout)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    # --- sending --------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, frame: Frame) -> None:
        self.sock.sendall(encode(frame, max_frame=ABSOLUTE_MAX_FRAME))

    def send_map(self, obj: Any) -> None:
        """Send any object as one frame, with no validation at all."""
        self.sock.sendall(raw_frame(obj))

    def send_message(self, msg_id: str, to: Mapping[str, bytes]) -> None:
        self.send_frame(Send(id=msg_id, to=dict(to)))

    # --- receiving ------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Read once from the socket; False on EOF or reset. Raises NoFrame on timeout."""
        if self._eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoFrame(f"nothing from the relay within {self.timeout:g} s")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise NoFrame(f"nothing from the relay within {self.timeout:g} s") from None
        except ConnectionResetError:
            self._eof = True
            return False
        if not data:
            self._eof = True
            return False
        self._decoder.feed(data)
        while (payload := self._decoder.next_payload()) is not None:
            self._frames.append(decode_frame(payload, RELAY_FRAMES, max_bin_len=ABSOLUTE_MAX_FRAME))
        return True

    def recv_frame(self, timeout: float | None = None) -> Frame:
        """The next frame from the relay; raises ``Closed`` or ``NoFrame``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._frames:
            if not self._fill(deadline):
                if self._frames:
                    break
                raise Closed(f"the relay closed the connection (buffered {self._decoder.buffered} bytes)")
        return self._frames.popleft()

    def expect_frame(self, kind: type[Frame] | str, skip: Iterable[str] = ()) -> Frame:
        """The next frame must be of ``kind``; frames whose type is in ``skip`` are passed over."""
        wanted = kind if isinstance(kind, str) else kind.TYPE
        skipped = set(skip)
        while True:
            frame = self.recv_frame()
            if frame.TYPE == wanted:
                return frame
            if frame.TYPE not in skipped:
                raise AssertionError(f"expected a {wanted!r} frame, got {frame!r}")

    def expect_error(self, code: str, skip: Iterable[str] = ()) -> Error:
        frame = self.expect_frame(Error, skip)
        assert isinstance(frame, Error)
        assert frame.code == code, f"expected error {code!r}, got {frame.code!r} ({frame.detail})"
        return frame

    def expect_closed(self, timeout: float | None = None) -> None:
        """The relay must close (FIN or RST) within ``timeout`` without sending another frame."""
        if self._frames:
            raise AssertionError(f"expected the connection to close, got {self._frames[0]!r}")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while self._fill(deadline):
                if self._frames:
                    raise AssertionError(f"expected the connection to close, got {self._frames[0]!r}")
        except NoFrame:
            raise AssertionError(f"the relay kept the connection open for {self.timeout:g} s") from None
        assert self._decoder.buffered == 0, "the relay closed in the middle of a frame"

    def ping(self) -> None:
        """Round-trip a ping: proves the connection is open and in sync."""
        self.send_frame(Ping())
        assert isinstance(self.expect_frame(Pong, skip=ROSTER_NOISE), Pong)

    # --- joining --------------------------------------------------------------

    def challenge(self) -> Challenge:
        """The relay's first frame on this connection (read once, then cached)."""
        if self._challenge is None:
            frame = self.expect_frame(Challenge)
            assert isinstance(frame, Challenge)
            self._challenge = frame
        return self._challenge

    def make_hello(
        self,
        name: str,
        *,
        identity: IdentityKey | None = None,
        session: SessionKey | None = None,
        nonce: bytes | None = None,
        cert_identity: IdentityKey | None = None,
        cert_name: str | None = None,
        cert_session: bytes | None = None,
        cert_issued_at: int | None = None,
        proof_identity: IdentityKey | None = None,
        issued_at: int | None = None,
    ) -> Hello:
        """A hello for ``name``; each keyword replaces one honest ingredient with a hostile one."""
        identity = identity or IdentityKey.generate()
        session = session or SessionKey.generate()
        issued_at = int(time.time()) if issued_at is None else issued_at
        cert = SessionCertificate.issue(
            cert_identity or identity,
            name if cert_name is None else cert_name,
            session.public if cert_session is None else cert_session,
            issued_at if cert_issued_at is None else cert_issued_at,
        )
        challenge = self.challenge()  # always consumed, even when a hostile nonce is signed
        nonce = challenge.nonce if nonce is None else nonce
        proof = join_proof(proof_identity or identity, nonce, name, session.public)
        self.identity, self.session = identity, session
        return Hello(
            name=name,
            ik=identity.public,
            sk=session.public,
            cert=cert.signature,
            issued_at=issued_at,
            proof=proof,
        )

    def join(self, name: str, skip: Iterable[str] = ()) -> Welcome:
        """A real join: fresh identity and session keys, certificate, proof over the nonce."""
        self.send_frame(self.make_hello(name))
        frame = self.expect_frame(Welcome, skip)
        assert isinstance(frame, Welcome)
        assert frame.name == name
        self.name = name
        return frame


def connect(server: Any, timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None) -> HostileClient:
    """Open a raw connection to a running ``RelayServer`` (IPv4 loopback in these tests)."""
    return HostileClient(server.address, timeout, rcvbuf)


def joined_client(server: Any, name: str | None = None) -> HostileClient:
    client = connect(server)
    try:
        client.join(name or unique_name())
    except BaseException:
        client.close()
        raise
    return client


def assert_pair_can_chat(server: Any) -> None:
    """The relay is up and routing: two fresh members exchange one opaque ciphertext."""
    with joined_client(server, unique_name("a")) as receiver, joined_client(server, unique_name("s")) as sender:
        assert_can_chat(receiver, sender)


def assert_can_chat(receiver: HostileClient, sender: HostileClient) -> None:
    """``sender`` sends ``receiver`` one opaque ciphertext; it arrives intact and the ack says delivered."""
    assert receiver.name is not None and sender.name is not None
    ct = secrets.token_bytes(300)
    msg_id = secrets.token_hex(8)
    sender.send_message(msg_id, {receiver.name: ct})
    deliver = receiver.expect_frame(Deliver, skip=ROSTER_NOISE)
    assert isinstance(deliver, Deliver)
    assert (deliver.sender, deliver.id, deliver.ct) == (sender.name, msg_id, ct)
    ack = sender.expect_frame(Ack, skip=ROSTER_NOISE)
    assert isinstance(ack, Ack)
    assert ack == Ack(id=msg_id, delivered=(receiver.name,), missing=())


__all__ = [
    "DEFAULT_TIMEOUT",
    "ROSTER_NOISE",
    "Closed",
    "HostileClient",
    "NoFrame",
    "assert_can_chat",
    "assert_pair_can_chat",
    "connect",
    "joined_client",
    "length_prefix",
    "raw_frame",
    "raw_payload_frame",
    "unique_name",
]
