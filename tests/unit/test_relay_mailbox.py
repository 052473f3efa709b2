"""The relay's mailbox frames without sockets: ``RelayCore`` with a real SQLite
database under a temporary ``--data-dir``, in-memory outboxes, every frame
read back with the client's own validation. "Restart" is a new ``RelayCore``
on the same data dir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from susurro.client.prekeyring import PrekeyRing
from susurro.client.prekeywire import bundle_from_wire, prekeys_frame
from susurro.crypto import IdentityKey
from susurro.crypto.prekeys import check_bundle, new_one_time_prekeys, seal_to_prekey
from susurro.crypto.seal import message_block, sign_message
from susurro.protocol import (
    BundleFetch,
    Bundles,
    Error,
    Frame,
    Joined,
    Left,
    Mail,
    MailAck,
    MailEnd,
    Post,
    Posted,
    Prekeys,
    PrekeysHeld,
    WireOneTimePrekey,
    encode,
)
from susurro.relay import Connection, RelayConfig, RelayCore
from susurro.relay.mailbox import (
    ADDRESS_SHARE_OF_A_MAILBOX,
    ONE_TIME_SHARES_PER_CONNECTION,
    POST_SHARES_PER_CONNECTION,
    WINDOW_BYTES,
)
from susurro.relay.store.mailbox import (
    DEFAULT_MAILBOX_ITEMS,
    DEFAULT_MAILBOX_PER_SENDER,
    DEFAULT_ONE_TIME_PER_FETCHER,
    RECEIPT_RESERVE_DIVISOR,
)
from tests.helpers.memory import MemoryOutbox
from tests.unit.test_relay_core import hello_for

NOW = time.time()
#: An identity key nobody published prekeys under.
NOBODY = b"N" * 32
ONE_TIME_PER_FETCHER_PER_DAY = DEFAULT_ONE_TIME_PER_FETCHER
ONE_TIME_PER_CONNECTION_PER_HOUR = ONE_TIME_SHARES_PER_CONNECTION * DEFAULT_ONE_TIME_PER_FETCHER
POSTS_PER_CONNECTION_PER_HOUR = POST_SHARES_PER_CONNECTION * DEFAULT_MAILBOX_PER_SENDER


class Member:
    """One identity with its prekey ring, joined to a core (again after each restart)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.identity = IdentityKey.generate()
        self.ring = PrekeyRing(self.identity)
        self.conn: Connection | None = None
        self.outbox = MemoryOutbox()

    @property
    def key(self) -> bytes:
        return self.identity.public

    def join(self, core: RelayCore, *, publish: bool = True, ip: str = "") -> list[Frame]:
        self.outbox = MemoryOutbox()
        conn = core.connect(self.outbox, "test:1", ip)
        assert conn is not None
        self.conn = conn
        assert core.receive(conn, encode(hello_for(self.name, conn.nonce, self.identity)))
        assert [f.TYPE for f in self.outbox.new_frames()] == ["challenge", "welcome"]
        if not publish:
            return self.outbox.new_frames()
        frames = self.send(core, prekeys_frame(self.ring.on_join(NOW)))
        held = next(f for f in frames if isinstance(f, PrekeysHeld))
        refill = self.ring.due(NOW, held.one_time)
        if refill is not None:
            frames += self.send(core, prekeys_frame(refill))
        return frames

    def send(self, core: RelayCore, frame: Frame) -> list[Frame]:
        """What the relay sent back (presence frames of others left out)."""
        assert self.conn is not None
        assert core.receive(self.conn, encode(frame, max_frame=16 << 20))
        return [f for f in self.outbox.new_frames() if not isinstance(f, (Joined, Left))]

    def leave(self, core: RelayCore) -> None:
        assert self.conn is not None
        core.disconnect(self.conn, "test")


def make_core(data_dir: Path, **overrides: Any) -> RelayCore:
    # A generous flood allowance: these tests send hundreds of frames at once on purpose.
    return RelayCore(RelayConfig(data_dir=str(data_dir), max_frame=4 << 20, rate_burst=10_000, **overrides))


def envelope_for(sender: Member, recipient: Member, core: RelayCore, body: str, n: int) -> bytes:
    (answer,) = sender.send(core, BundleFetch(id=f"f{n}", keys=(recipient.key,), one_time=True))
    assert isinstance(answer, Bundles) and len(answer.bundles) == 1
    checked = check_bundle(bundle_from_wire(answer.bundles[0]), recipient.identity.public)
    message = sign_message(
        identity=sender.identity,
        sender=sender.name,
        recipients=[(recipient.name, recipient.identity.public)],
        body=body,
        msg_id=f"m{n}",
        sent_at=n,
    )
    return seal_to_prekey(sender.identity, checked, message_block(message, n))


def post(sender: Member, core: RelayCore, msg_id: str, to: dict[bytes, bytes], kind: str = "message") -> Posted:
    (answer,) = sender.send(core, Post(id=msg_id, kind=kind, to=to))
    assert isinstance(answer, Posted)
    return answer


def open_all(member: Member, frames: list[Frame], sender: Member) -> list[str]:
    return [
        member.ring.open(
            f.ct, relay_sender=f.sender, sender_identity_key=sender.identity.public, own_name=member.name
        ).inner.body
        for f in frames
        if isinstance(f, Mail)
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_publishing_prekeys_opens_the_mailbox_and_an_old_client_sees_nothing(data_dir: Path) -> None:
    core = make_core(data_dir)
    bob = Member("bob")
    frames = bob.join(core)
    assert frames == [PrekeysHeld(one_time=0), MailEnd(), PrekeysHeld(one_time=100)]
    carol = Member("carol")
    assert carol.join(core, publish=False) == []  # a client that never publishes gets no mailbox frames


def test_mail_waits_across_a_relay_restart_and_comes_in_order(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, bob = Member("alice"), Member("bob")
    bob.join(core)
    bob.leave(core)
    alice.join(core)
    for n in range(1, 4):
        report = post(alice, core, f"m{n}", {bob.key: envelope_for(alice, bob, core, f"text {n}", n)})
        assert report.waiting == (bob.key,) and report.refused == {}
    restarted = make_core(data_dir)  # the relay restarts; the mail is in its database
    frames = bob.join(restarted)
    assert frames[0] == PrekeysHeld(one_time=97)  # three were used; 97 is above the refill mark
    mail = [f for f in frames if isinstance(f, Mail)]
    assert [m.id for m in mail] == ["m1", "m2", "m3"] and not any(isinstance(f, MailEnd) for f in frames)
    assert all(m.sender == "alice" and m.ik == alice.identity.public for m in mail)
    assert open_all(bob, frames, alice) == ["text 1", "text 2", "text 3"]
    assert bob.send(restarted, MailAck(items=tuple(m.item for m in mail))) == [MailEnd()]  # all confirmed
    bob.leave(restarted)
    assert [type(f) for f in bob.join(restarted)] == [PrekeysHeld, MailEnd]  # confirmed items are gone


def test_an_unconfirmed_item_is_sent_again_at_the_next_join(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, bob = Member("alice"), Member("bob")
    bob.join(core)
    bob.leave(core)
    alice.join(core)
    post(alice, core, "m1", {bob.key: envelope_for(alice, bob, core, "once", 1)})
    first = [f for f in bob.join(core) if isinstance(f, Mail)]
    bob.leave(core)  # gone before confirming
    again = [f for f in bob.join(core) if isinstance(f, Mail)]
    assert [m.item for m in again] == [m.item for m in first]


def test_an_online_member_gets_new_mail_at_once(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, bob = Member("alice"), Member("bob")
    bob.join(core)
    alice.join(core)
    post(alice, core, "m1", {bob.key: envelope_for(alice, bob, core, "live", 1)})
    live = [f for f in bob.outbox.new_frames() if isinstance(f, Mail)]
    assert [type(f) for f in live] == [Mail] and open_all(bob, live, alice) == ["live"]


def fetch_one_time(fetcher: Member, owner: Member, core: RelayCore, n: int) -> int | None:
    """The id of the one-time prekey of ``owner`` the relay hands ``fetcher`` (None: none)."""
    (answer,) = fetcher.send(core, BundleFetch(id=f"f{n}", keys=(owner.key,), one_time=True))
    assert isinstance(answer, Bundles) and len(answer.bundles) == 1
    opk = answer.bundles[0].opk
    return None if opk is None else opk.id


def test_each_one_time_prekey_is_handed_out_once_then_the_fetchers_get_none(data_dir: Path) -> None:
    core = make_core(data_dir)
    bob = Member("bob")
    bob.join(core)
    fetchers = [Member(f"f{i}") for i in range(100 // ONE_TIME_PER_FETCHER_PER_DAY + 1)]
    seen = []
    for i, fetcher in enumerate(fetchers[:-1]):
        fetcher.join(core)
        seen += [fetch_one_time(fetcher, bob, core, 100 * i + n) for n in range(ONE_TIME_PER_FETCHER_PER_DAY)]
    assert None not in seen and len(set(seen)) == 100
    fetchers[-1].join(core)
    assert fetch_one_time(fetchers[-1], bob, core, 9999) is None  # drained: the signed prekey alone
    lows = [f for f in bob.outbox.frames() if isinstance(f, PrekeysHeld)]
    assert lows and lows[-1].one_time == 0  # the owner is told, and refills


def test_one_sender_cannot_drain_someones_one_time_prekeys(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, mallory, bob = Member("alice"), Member("mallory"), Member("bob")
    bob.join(core)
    mallory.join(core)
    alice.join(core)
    taken = [fetch_one_time(mallory, bob, core, n) for n in range(ONE_TIME_PER_FETCHER_PER_DAY + 5)]
    assert None not in taken[:ONE_TIME_PER_FETCHER_PER_DAY]
    assert taken[ONE_TIME_PER_FETCHER_PER_DAY:] == [None] * 5  # her share is spent; her client says so
    assert fetch_one_time(alice, bob, core, 100) is not None  # and bob's keys are still there for others
    assert core.mailbox.prekeys.one_time_count(bob.key, now=time.time()) == 100 - ONE_TIME_PER_FETCHER_PER_DAY - 1


def test_one_connection_takes_at_most_its_hourly_share_of_everyones_one_time_prekeys(data_dir: Path) -> None:
    # Many throwaway identities to drain, one connection draining them all: bounded per connection.
    core = make_core(data_dir)
    owners = [Member(f"o{i}") for i in range(ONE_TIME_PER_CONNECTION_PER_HOUR // ONE_TIME_PER_FETCHER_PER_DAY + 1)]
    for owner in owners:
        owner.join(core)
    mallory = Member("mallory")
    mallory.join(core)
    taken = [
        fetch_one_time(mallory, owner, core, 100 * i + n)
        for i, owner in enumerate(owners)
        for n in range(ONE_TIME_PER_FETCHER_PER_DAY)
    ]
    assert None not in taken[:ONE_TIME_PER_CONNECTION_PER_HOUR]
    assert set(taken[ONE_TIME_PER_CONNECTION_PER_HOUR:]) == {None}


@pytest.mark.parametrize("kind", ["message", "receipt"])  # receipts have a share of their own
def test_one_connection_fills_mailboxes_at_most_its_hourly_share(data_dir: Path, kind: str) -> None:
    core = make_core(data_dir)
    owners = [Member(f"o{i}") for i in range(3)]
    for owner in owners:
        owner.join(core)
        owner.leave(core)
    mallory = Member("mallory")
    mallory.join(core)
    to = {owner.key: b"\x01" * 40 for owner in owners}
    reports = [post(mallory, core, f"x{n}", to, kind) for n in range(POSTS_PER_CONNECTION_PER_HOUR // 3 + 1)]
    stored = sum(len(r.waiting) for r in reports)
    assert stored == POSTS_PER_CONNECTION_PER_HOUR
    assert set(reports[-1].refused.values()) == {"sender_quota"}


def test_one_address_fills_at_most_a_quarter_of_a_mailbox_a_day(data_dir: Path) -> None:
    # Four throwaway identities from one host filled a 1,000-item mailbox at 250 each.
    core = make_core(data_dir, max_per_ip=16)
    bob = Member("bob")
    bob.join(core)
    bob.leave(core)
    senders = [Member(f"t{i}") for i in range(4)]
    for sender in senders:
        sender.join(core, ip="203.0.113.7")
    stored = 0
    for n, sender in enumerate(senders):
        for m in range(DEFAULT_MAILBOX_PER_SENDER // 25):
            batch = post(sender, core, f"x{n}-{m}", {bob.key: b"\x01" * 40})
            stored += len(batch.waiting)
    assert stored == 4 * (DEFAULT_MAILBOX_PER_SENDER // 25)  # far below the bound: all stored
    flood = [post(senders[n % 4], core, f"y{n}", {bob.key: b"\x01" * 40}) for n in range(400)]
    stored += sum(len(r.waiting) for r in flood)
    assert stored == DEFAULT_MAILBOX_ITEMS // ADDRESS_SHARE_OF_A_MAILBOX  # a quarter, whatever the identities
    assert set(flood[-1].refused.values()) == {"sender_quota"}
    other = Member("carol")
    other.join(core, ip="198.51.100.9")
    assert post(other, core, "z1", {bob.key: b"\x01" * 40}).waiting == (bob.key,)  # others still can


def test_messages_from_four_hosts_leave_room_for_the_owners_receipts(data_dir: Path) -> None:
    # Four identities on four hosts fill bob's mailbox with messages (250 each, a quarter per host): alice's
    # receipt to bob (bob wrote to her while she was away) still goes in. Without the reserve it was
    # mailbox_full (checked once).
    core = make_core(data_dir, max_per_ip=16)
    bob, alice = Member("bob"), Member("alice")
    bob.join(core)
    bob.leave(core)
    alice.join(core)
    senders = [Member(f"t{i}") for i in range(4)]
    for i, sender in enumerate(senders):
        sender.join(core, ip=f"203.0.113.{i + 1}")
    stored = 0
    for n in range(DEFAULT_MAILBOX_ITEMS // 25 + 4):
        for m in range(25):
            stored += len(post(senders[n % 4], core, f"y{n}-{m}", {bob.key: b"\x01" * 40}).waiting)
    reserve = DEFAULT_MAILBOX_ITEMS // RECEIPT_RESERVE_DIVISOR
    assert stored == DEFAULT_MAILBOX_ITEMS - reserve  # the messages' part is full
    assert post(alice, core, "late", {bob.key: b"\x01" * 40}).refused == {bob.key: "mailbox_full"}
    receipt = post(alice, core, "r1", {bob.key: b"\x02" * 40}, kind="receipt")
    assert receipt.waiting == (bob.key,)


def test_a_signed_prekey_only_fetch_leaves_the_one_time_keys_alone(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, bob = Member("alice"), Member("bob")
    bob.join(core)
    alice.join(core)
    (answer,) = alice.send(core, BundleFetch(id="r1", keys=(bob.key, NOBODY), one_time=False))
    assert isinstance(answer, Bundles) and answer.bundles[0].opk is None and answer.unknown == (NOBODY,)
    assert core.mailbox.prekeys.one_time_count(bob.identity.public, now=time.time()) == 100


def test_a_hostile_client_cannot_store_ten_thousand_prekeys(data_dir: Path) -> None:
    core = make_core(data_dir)
    mallory = Member("mallory")
    mallory.join(core)  # 100 published
    extra = new_one_time_prekeys(mallory.identity, 5000, 100, int(NOW) + 86_400)
    answer = mallory.send(
        core,
        Prekeys(
            spk=None,
            opks=tuple(
                WireOneTimePrekey(id=k.key_id, pk=k.public, exp=k.expires_at, sig=k.signature) for _, k in extra
            ),
        ),
    )
    assert isinstance(answer[0], Error) and answer[0].code == "too_many_prekeys"
    assert core.mailbox.prekeys.one_time_count(mallory.identity.public, now=time.time()) == 100
    assert mallory.conn is not None and not mallory.conn.closing  # one bad frame does not cost the room


def test_prekeys_signed_by_another_identity_are_refused(data_dir: Path) -> None:
    core = make_core(data_dir)
    mallory = Member("mallory")
    mallory.join(core, publish=False)
    forged = new_one_time_prekeys(IdentityKey.generate(), 1, 1, int(NOW) + 86_400)[0][1]
    answer = mallory.send(
        core,
        Prekeys(
            spk=None, opks=(WireOneTimePrekey(id=1, pk=forged.public, exp=forged.expires_at, sig=forged.signature),)
        ),
    )
    assert isinstance(answer[0], Error) and answer[0].code == "bad_prekey"


def test_one_time_prekeys_already_expired_are_refused_and_an_expiry_is_signed(data_dir: Path) -> None:
    core = make_core(data_dir)
    mallory = Member("mallory")
    mallory.join(core, publish=False)
    ((_, old),) = new_one_time_prekeys(mallory.identity, 1, 1, int(time.time()) - 1)
    expired = WireOneTimePrekey(id=1, pk=old.public, exp=old.expires_at, sig=old.signature)
    answer = mallory.send(core, Prekeys(spk=None, opks=(expired,)))
    # Refused with a reason (never "none held", which would have the owner publish again at once).
    assert isinstance(answer[0], Error) and answer[0].code == "bad_prekey" and "expired" in answer[0].detail
    ((_, key),) = new_one_time_prekeys(mallory.identity, 2, 1, int(NOW) + 86_400)
    stretched = WireOneTimePrekey(id=2, pk=key.public, exp=key.expires_at + 86_400, sig=key.signature)
    answer = mallory.send(core, Prekeys(spk=None, opks=(stretched,)))  # the relay cannot extend a key's life
    assert isinstance(answer[0], Error) and answer[0].code == "bad_prekey"


def test_a_full_mailbox_and_a_greedy_sender_are_refused_with_the_reason(data_dir: Path) -> None:
    core = make_core(data_dir, mailbox_messages=5, mailbox_per_sender=3)
    alice, mallory, bob = Member("alice"), Member("mallory"), Member("bob")
    bob.join(core)
    bob.leave(core)
    mallory.join(core)
    alice.join(core)
    reports = [post(mallory, core, f"x{n}", {bob.key: b"\x01" * 300}) for n in range(4)]
    assert [r.waiting for r in reports[:3]] == [(bob.key,)] * 3
    assert reports[3].refused == {bob.key: "sender_quota"}
    assert [post(alice, core, f"a{n}", {bob.key: b"\x02" * 300}).waiting for n in range(2)] == [(bob.key,)] * 2
    assert post(alice, core, "a2", {bob.key: b"\x02" * 300}).refused == {bob.key: "mailbox_full"}
    assert post(alice, core, "a3", {NOBODY: b"\x02" * 300}).refused == {NOBODY: "no_mailbox"}


def test_a_member_cannot_confirm_away_someone_elses_mail(data_dir: Path) -> None:
    core = make_core(data_dir)
    alice, bob, carol = Member("alice"), Member("bob"), Member("carol")
    bob.join(core)
    bob.leave(core)
    carol.join(core)
    alice.join(core)
    post(alice, core, "m1", {bob.key: b"\x03" * 300})
    item = core.mailbox.mailboxes.fetch(bob.identity.public, after=0, max_items=1, max_bytes=1 << 20, now=NOW)[0]
    carol.send(core, MailAck(items=(item.item,)))
    assert core.mailbox.mailboxes.usage(bob.identity.public)[0] == 1


def test_the_window_counts_the_bytes_in_flight_and_always_holds_one_item(data_dir: Path) -> None:
    """Review S5 finding 3: at most WINDOW_BYTES sent and unconfirmed, but never fewer than one item."""
    core = make_core(data_dir)
    alice, bob = Member("alice"), Member("bob")
    bob.join(core)
    bob.leave(core)
    alice.join(core)
    big, small = WINDOW_BYTES // 2 + 1, 1000  # two big ones do not fit in flight together
    for n, size in enumerate((small, big, big, WINDOW_BYTES + 1)):
        post(alice, core, f"m{n}", {bob.key: bytes([n + 1]) * size})
    first = [f for f in bob.join(core) if isinstance(f, Mail)]
    assert [len(m.ct) for m in first] == [small, big]
    # The small one confirmed, the big one still in flight: the next big one waits for it.
    assert not [f for f in bob.send(core, MailAck(items=(first[0].item,))) if isinstance(f, Mail)]
    second = [f for f in bob.send(core, MailAck(items=(first[1].item,))) if isinstance(f, Mail)]
    assert [len(m.ct) for m in second] == [big]
    third = [f for f in bob.send(core, MailAck(items=(second[0].item,))) if isinstance(f, Mail)]
    assert [len(m.ct) for m in third] == [WINDOW_BYTES + 1]  # alone and over the bytes: it still goes
    assert [type(f) for f in bob.send(core, MailAck(items=(third[0].item,)))] == [MailEnd]
