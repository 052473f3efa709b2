"""Two relay nodes' room services over one store (a shared Redis; or one SQLite file, as two
relays on one --data-dir): what rooms do across nodes; what the --cluster wiring had to fix is
fixed since: a node serves the head another node appended (its cached state is continued from the store)."""

from __future__ import annotations

from dataclasses import dataclass, field

from susurro.crypto import EntryKind, IdentityKey, LogRules, RoomPolicy, RoomState, create_entry, verify_log
from susurro.protocol import RoomAppend, RoomCreate, RoomError, RoomFetch, RoomFind, RoomLog, name_key
from susurro.relay import RelayConfig
from susurro.relay.rooms import RoomService, valid_name
from tests.helpers.memory import MemoryOutbox
from tests.helpers.stores import StoreBackend

T = 1_764_000_000
RULES = LogRules(name_key=name_key, name_ok=valid_name)


@dataclass(eq=False)
class Peer:
    """What RoomService needs of a connection (``relay.peer.Peer``)."""

    name: str
    identity: IdentityKey = field(default_factory=IdentityKey.generate)
    outbox: MemoryOutbox = field(default_factory=MemoryOutbox)
    node: str | None = None  # connected here

    @property
    def ik(self) -> bytes:
        return self.identity.public


class Node:
    """One relay node's RoomService on the shared store, with its own connected peers."""

    def __init__(self, backend: StoreBackend) -> None:
        self.peers: list[Peer] = []
        self.rooms = RoomService(backend.rooms(), RelayConfig(), lambda: self.peers)

    def join(self, name: str) -> Peer:
        self.peers.append(Peer(name))
        return self.peers[-1]

    def ask(self, peer: Peer, frame: RoomCreate | RoomAppend | RoomFetch | RoomFind) -> RoomLog | RoomError:
        peer.outbox.new_frames()
        self.rooms.handle(peer, frame)
        answers = [f for f in peer.outbox.new_frames() if isinstance(f, (RoomLog, RoomError))]
        assert len(answers) == 1, answers
        return answers[0]


def create(node: Node, peer: Peer, label: str) -> RoomState:
    entry = create_entry(peer.identity, name=peer.name, label=label, policy=RoomPolicy.INVITE, time=T).to_bytes()
    assert isinstance(node.ask(peer, RoomCreate(id="c", entry=entry)), RoomLog)
    return verify_log([entry], RULES)


def add(node: Node, admin: Peer, state: RoomState, who: Peer) -> RoomState:
    entry = state.next_entry(admin.identity, kind=EntryKind.ADD, subject_name=who.name, subject_ik=who.ik, time=T)
    answer = node.ask(admin, RoomAppend(id="a", room=state.room_id, entries=(entry.to_bytes(),)))
    assert isinstance(answer, RoomLog), answer
    return state.extend([entry.to_bytes()])


def test_a_room_created_on_one_node_is_found_and_its_label_held_on_another(store_backend: StoreBackend) -> None:
    node1, node2 = Node(store_backend), Node(store_backend)
    alice, bob, carol = node1.join("alice"), node2.join("bob"), node2.join("carol")
    state = create(node1, alice, "ops")
    add(node1, alice, state, bob)
    found = node2.ask(bob, RoomFind(id="f", label="OPS"))
    assert isinstance(found, RoomLog) and found.room == state.room_id and found.head_seq == 1
    entry = create_entry(carol.identity, name="carol", label="Ops", policy=RoomPolicy.OPEN, time=T).to_bytes()
    refused = node2.ask(carol, RoomCreate(id="c", entry=entry))
    assert isinstance(refused, RoomError) and refused.code == "label_taken"


def test_two_nodes_appending_on_one_head_conflict_and_the_log_stays_one_chain(store_backend: StoreBackend) -> None:
    node1, node2 = Node(store_backend), Node(store_backend)
    alice = node1.join("alice")
    state = create(node1, alice, "ops")
    alice_there = Peer("alice", alice.identity)  # alice's second device, on node 2
    node2.peers.append(alice_there)
    bob, carol = Peer("bob"), Peer("carol")
    assert isinstance(node2.ask(alice_there, RoomFetch(id="f", room=state.room_id, from_seq=0)), RoomLog)
    add(node1, alice, state, bob)
    fork = state.next_entry(alice.identity, kind=EntryKind.ADD, subject_name="carol", subject_ik=carol.ik, time=T)
    answer = node2.ask(alice_there, RoomAppend(id="a", room=state.room_id, entries=(fork.to_bytes(),)))
    assert isinstance(answer, RoomError) and answer.code == "room_conflict"  # the store's head check, across nodes
    log = node1.ask(alice, RoomFetch(id="f", room=state.room_id, from_seq=0))
    assert isinstance(log, RoomLog) and log.head_seq == 1 and verify_log(list(log.entries), RULES).head.seq == 1


def test_a_node_serves_the_head_another_node_appended(store_backend: StoreBackend) -> None:
    node1, node2 = Node(store_backend), Node(store_backend)
    alice = node1.join("alice")
    state = create(node1, alice, "ops")
    alice_there = Peer("alice", alice.identity)
    node2.peers.append(alice_there)
    first = node2.ask(alice_there, RoomFetch(id="f", room=state.room_id, from_seq=0))
    assert isinstance(first, RoomLog) and first.head_seq == 0  # node 2 now holds the room's state
    add(node1, alice, state, Peer("bob"))
    again = node2.ask(alice_there, RoomFetch(id="f", room=state.room_id, from_seq=0))
    assert isinstance(again, RoomLog) and again.head_seq == 1
