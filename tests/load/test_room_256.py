"""A 256-member room (the default limit) on a real relay with default flags.

256 raw clients join a real relay over loopback; the creator adds the other
255 to the signed log (the relay verifies every entry); one member sends a
room message sealed at the log's head to the 255 others in one ``send``,
and every one of them opens it. With the old signed list of every
recipient, each copy carried 255 names and fingerprints and the frame was
over the default 1 MiB limit; with the signed head each copy is the same
size at any room size.
"""

from __future__ import annotations

from susurro.crypto import (
    BoxCache,
    EntryKind,
    IdentityKey,
    Recipient,
    RoomPolicy,
    SessionKey,
    SignedHead,
    create_entry,
    open_message,
    seal_message,
    verify_log,
)
from susurro.protocol import Ack, Deliver, RoomAppend, RoomCreate, RoomLog, RoomUpdate, Send, encode
from susurro.protocol.limits import DEFAULT_MAX_FRAME
from susurro.relay import RelayServer
from tests.helpers.hostile_client import ROSTER_NOISE, HostileClient, connect

MEMBERS = 256
T = 1_764_000_000
NOISE = (*ROSTER_NOISE, RoomUpdate.TYPE)
#: At most this many bytes in each copy of a short room message (tests/unit/test_client_rooms.py).
ROOM_COPY_BYTES = 312


def test_a_256_member_room_sends_with_default_flags(relay_server: RelayServer) -> None:
    clients: list[HostileClient] = []
    keys: list[tuple[str, IdentityKey, SessionKey]] = []
    try:
        for i in range(MEMBERS):
            client = connect(relay_server, timeout=30)
            clients.append(client)
            name = f"m{i:03d}"
            identity, session = IdentityKey.generate(), SessionKey.generate()
            client.send_frame(client.make_hello(name, identity=identity, session=session))
            client.expect_frame("welcome", NOISE)
            keys.append((name, identity, session))
        admin = clients[0]
        create = create_entry(keys[0][1], name="m000", label="aula", policy=RoomPolicy.INVITE, time=T).to_bytes()
        admin.send_frame(RoomCreate(id="c", entry=create))
        assert isinstance(admin.expect_frame(RoomLog, NOISE), RoomLog)
        state = verify_log([create])
        pending: list[bytes] = []
        for name, identity, _ in keys[1:]:
            entry = state.next_entry(
                keys[0][1], kind=EntryKind.ADD, subject_name=name, subject_ik=identity.public, time=T
            )
            state = state.extend([entry.to_bytes()])
            pending.append(entry.to_bytes())
        for start in range(0, len(pending), 64):
            admin.send_frame(RoomAppend(id=f"a{start}", room=state.room_id, entries=tuple(pending[start : start + 64])))
            answer = admin.expect_frame(RoomLog, NOISE)
            assert isinstance(answer, RoomLog) and answer.head_seq == start + len(pending[start : start + 64])
        assert len(state.members) == MEMBERS
        # m001 sends to everyone else in the room, sealed at the head.
        sender_name, sender_key, sender_session = keys[1]
        recipients = [
            Recipient(name=name, identity_key=identity.public, session_key=session.public, counter=1)
            for name, identity, session in keys
            if name != sender_name
        ]
        head = SignedHead(state.room_id, state.head.seq, state.head.hash)
        sealed = seal_message(
            identity=sender_key,
            boxes=BoxCache(sender_session),
            sender=sender_name,
            recipients=recipients,
            body="hola, aula",
            msg_id="room256",
            sent_at=T * 1000,
            room="aula",
            head=head,
        )
        (copy_bytes,) = {len(ct) for ct in sealed.values()}  # one size for every copy
        assert copy_bytes <= ROOM_COPY_BYTES
        frame = encode(Send(id="room256", to=sealed), max_frame=DEFAULT_MAX_FRAME)
        assert len(frame) < DEFAULT_MAX_FRAME // 10
        clients[1].send_raw(frame)
        ack = clients[1].expect_frame(Ack, NOISE)
        assert isinstance(ack, Ack) and len(ack.delivered) == MEMBERS - 1 and ack.missing == ()
        for client, (name, identity, session) in zip(clients, keys, strict=True):
            if name == sender_name:
                continue
            deliver = client.expect_frame(Deliver, NOISE)
            assert isinstance(deliver, Deliver)
            opened = open_message(
                boxes=BoxCache(session),
                ciphertext=deliver.ct,
                relay_sender=deliver.sender,
                sender_identity_key=sender_key.public,
                sender_session_key=sender_session.public,
                own_name=name,
                own_identity_key=identity.public,
            )
            assert opened.inner.body == "hola, aula" and opened.inner.head == head
    finally:
        for client in clients:
            client.close()
