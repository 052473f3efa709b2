"""The cluster's scenarios (docs/deploy.md, "Scaling out") through the real programs: two
``susurro-relay --cluster`` processes sharing one
real ``redis-server`` (with a password, read from a mode-600 file), and ``susurro-cli --json`` clients,
each with its own ``$SUSURRO_HOME``. Alice is on node 1, Bob and Carol on node 2.

Every wait is on an event, bounded; the bounds are generous (a member of the other node is seen at its
node's next presence refresh, every 3 s, on a machine whose 2 cores run other suites too)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from susurro.client.prekeyring import PrekeyRing
from susurro.client.prekeywire import prekeys_frame
from susurro.client.sockets import parse_address
from susurro.protocol import Joined, Mail, MailEnd, Post, Posted, PrekeysHeld
from tests.helpers.hostile_client import HostileClient
from tests.helpers.processes import CliProcess, RelayProcess
from tests.helpers.redis_server import RedisServer, redis_dump
from tests.helpers.system import wait_until

#: Seconds for anything that crosses nodes: a presence refresh, a report, a reconnect.
CROSS = 40.0


@pytest.fixture
def redis_with_password(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_factory(password=secrets.token_urlsafe(24), persist=True)


@pytest.fixture
def nodes(tmp_path: Path, redis_with_password: RedisServer) -> Iterator[Callable[[str], RelayProcess]]:
    password_file = tmp_path / "redis-password"
    password_file.write_text(f"{redis_with_password.password}\n")
    password_file.chmod(0o600)
    started: list[RelayProcess] = []

    def node(name: str) -> RelayProcess:
        (tmp_path / name).mkdir()
        relay = RelayProcess(
            tmp_path / name, "--cluster", redis_with_password.url, "--cluster-password-file", str(password_file)
        )
        started.append(relay)
        return relay

    try:
        yield node
    finally:
        for relay in started:
            relay.stop()


def client(clients: list[CliProcess], tmp_path: Path, name: str, relay: RelayProcess) -> CliProcess:
    cli = CliProcess(name, tmp_path / name, relay.address)
    clients.append(cli)
    cli.expect_event("connected", name=name)
    return cli


def sees(cli: CliProcess, name: str) -> None:
    """``cli`` learns of ``name``: in its roster when it joined, or as a join later (whichever came first)."""

    def shows(event: dict[str, Any]) -> bool:
        if event["event"] == "roster":
            return name in [m["name"] for m in event["members"]]
        return event["event"] == "joined" and event["name"] == name

    cli.expect(shows, f"{name} in the roster or joining", CROSS)


def report(cli: CliProcess, sent: dict[str, Any]) -> dict[str, Any]:
    """The ``delivery`` for the message ``sent`` announced (a report across nodes waits for the other one's)."""
    return cli.expect(lambda e: e["event"] == "delivery" and e["msg_id"] == sent["msg_id"], "its report", CROSS)


def test_three_members_on_two_relays_chat_with_exact_reports_and_redis_holds_no_plaintext(
    tmp_path: Path,
    cli_clients: list[CliProcess],
    nodes: Callable[[str], RelayProcess],
    redis_with_password: RedisServer,
) -> None:
    node1, node2 = nodes("n1"), nodes("n2")
    alice = client(cli_clients, tmp_path, "alice", node1)
    bob = client(cli_clients, tmp_path, "bob", node2)
    carol = client(cli_clients, tmp_path, "carol", node2)
    for name in ("bob", "carol"):
        sees(alice, name)
    sees(bob, "alice")

    room_text = f"room plaintext {secrets.token_hex(8)}"
    alice.type(room_text)
    sent = alice.expect_event("sent")
    assert sorted(sent["to"]) == ["bob", "carol"]
    for receiver in (bob, carol):
        message = receiver.expect(lambda e: e["event"] == "message" and e["text"] == room_text, "the room line", CROSS)
        assert message["from"] == "alice" and message["msg_id"] == sent["msg_id"]
    delivery = report(alice, sent)
    assert sorted(delivery["delivered"]) == ["bob", "carol"] and delivery["missing"] == []

    direct_text = f"direct plaintext {secrets.token_hex(8)}"
    carol.type(f"/msg alice {direct_text}")
    sent = carol.expect_event("sent")
    direct = alice.expect(lambda e: e["event"] == "message" and e["text"] == direct_text, "carol's line", CROSS)
    assert direct["direct"] is True and direct["from"] == "carol"
    delivery = report(carol, sent)
    assert delivery["delivered"] == ["alice"] and delivery["missing"] == []
    assert not [e for e in bob.events if e["event"] == "message" and e["text"] == direct_text]

    for cli in (alice, bob, carol):
        cli.type("/quit")
        cli.wait()
    stored = redis_dump(redis_with_password)
    assert b"susurro:" in stored  # the scan saw the cluster's keys
    for text in (room_text, direct_text):
        assert text.encode() not in stored
        assert text not in node1.all_output() and text not in node2.all_output()


def test_a_message_for_someone_away_waits_in_redis_and_reaches_them_on_the_other_relay(
    tmp_path: Path, cli_clients: list[CliProcess], nodes: Callable[[str], RelayProcess]
) -> None:
    node1, node2 = nodes("n1"), nodes("n2")
    alice = client(cli_clients, tmp_path, "alice", node1)
    bob = client(cli_clients, tmp_path, "bob", node2)  # publishes his prekeys, into Redis
    sees(alice, "bob")
    bob.type("/quit")
    bob.wait()
    alice.expect(lambda e: e["event"] == "left" and e["name"] == "bob", "bob left", CROSS)
    secret = f"waits for bob {secrets.token_hex(8)}"
    alice.type(f"/msg bob {secret}")
    delivery = alice.expect(lambda e: e["event"] == "delivery" and e.get("waiting"), "a waiting delivery", CROSS)
    assert delivery["waiting"] == ["bob"] and delivery["not_delivered"] == []
    bob = client(cli_clients, tmp_path, "bob", node1)  # later, and on the other relay
    message = bob.expect(lambda e: e["event"] == "message" and e["from"] == "alice", "the waiting message", CROSS)
    assert message["text"] == secret and message["direct"] and message["waited"]


def test_a_relay_killed_its_members_are_seen_leaving_and_move_to_the_other_relay_by_themselves(
    tmp_path: Path, cli_clients: list[CliProcess], nodes: Callable[[str], RelayProcess]
) -> None:
    node1, node2 = nodes("n1"), nodes("n2")
    alice = client(cli_clients, tmp_path, "alice", node1)
    both = f"{node2.address},{node1.address}"  # bob and carol know both nodes, and start on node 2
    bob = CliProcess("bob", tmp_path / "bob", both)
    carol = CliProcess("carol", tmp_path / "carol", both)
    cli_clients += [bob, carol]
    for cli in (bob, carol):
        connected = cli.expect_event("connected", name=cli.name)
        assert connected["relay"] == node2.address  # the node in use, not the whole list
        sees(alice, cli.name)
    node2.proc.kill()  # SIGKILL: no shutdown, no clean leave; presence and names expire in Redis
    for name in ("bob", "carol"):
        alice.expect(lambda e, name=name: e["event"] == "left" and e["name"] == name, f"{name} left", CROSS)
    for cli in (bob, carol):  # node 2 is dead: connected again means connected to node 1
        cli.expect_event("reconnecting")
        back = cli.expect(lambda e, cli=cli: e["event"] == "connected" and e["name"] == cli.name, "back", CROSS * 2)
        assert back["relay"] == node1.address
    assert "join name=bob" in node1.log_file.read_text() and "join name=carol" in node1.log_file.read_text()
    for name in ("bob", "carol"):
        alice.expect(lambda e, name=name: e["event"] == "joined" and e["name"] == name, f"{name} back", CROSS)
    text = f"after the failover {secrets.token_hex(8)}"
    alice.type(text)
    sent = alice.expect_event("sent")
    for cli in (bob, carol):
        cli.expect(lambda e: e["event"] == "message" and e["text"] == text, "the line after the failover", CROSS)
    delivery = report(alice, sent)
    assert sorted(delivery["delivered"]) == ["bob", "carol"]


def test_redis_stopped_and_restarted_mid_conversation_nothing_false_is_reported_and_chat_resumes(
    tmp_path: Path,
    cli_clients: list[CliProcess],
    nodes: Callable[[str], RelayProcess],
    redis_with_password: RedisServer,
) -> None:
    node1, node2 = nodes("n1"), nodes("n2")
    alice = client(cli_clients, tmp_path, "alice", node1)
    erin = client(cli_clients, tmp_path, "erin", node1)
    bob = client(cli_clients, tmp_path, "bob", node2)
    sees(alice, "bob")
    sees(alice, "erin")
    redis_with_password.stop()
    during = f"while redis is down {secrets.token_hex(8)}"
    alice.type(during)
    sent = alice.expect_event("sent")
    delivery = report(alice, sent)
    assert delivery["delivered"] == ["erin"]  # the member on alice's own relay is served
    assert "bob" not in delivery["delivered"] and "bob" not in delivery["waiting"]  # bob: not delivered
    assert delivery["not_delivered"] == [{"name": "bob", "reason": "cluster_down"}]  # and why
    erin.expect(lambda e: e["event"] == "message" and e["text"] == during, "the line on node 1", CROSS)
    redis_with_password.restart()
    after = f"after redis came back {secrets.token_hex(8)}"

    for relay in (node1, node2):  # each node says once that Redis is back
        wait_until(lambda relay=relay: "cluster-up" in relay.log_file.read_text(), "cluster-up in the log", CROSS)
    alice.type(f"/msg bob {after}")
    sent = alice.expect_event("sent")
    resumed = report(alice, sent)
    assert resumed["delivered"] == ["bob"]
    message = bob.expect(lambda e: e["event"] == "message" and e["from"] == "alice", "a line from alice", CROSS)
    assert message["text"] == after  # the first bob gets: the line reported not delivered never came
    assert node1.log_file.read_text().count("cluster-down") == 1  # the outage logged once, not per message


def test_an_invite_on_one_relay_reaches_the_member_on_the_other_live(
    tmp_path: Path, cli_clients: list[CliProcess], nodes: Callable[[str], RelayProcess]
) -> None:
    node1, node2 = nodes("n1"), nodes("n2")
    alice = client(cli_clients, tmp_path, "alice", node1)
    bob = client(cli_clients, tmp_path, "bob", node2)
    sees(alice, "bob")
    alice.type("/create ops")
    created = alice.expect_event("room_created", room="ops")
    alice.type("/invite bob")
    # Node 1 stores the add and pushes its room_update; bob's stand-in there hands it to node 2.
    offered = bob.expect(lambda e: e["event"] == "invitation" and e["room"] == "ops", "the invite, live", CROSS)
    assert offered["by"] == "alice" and offered["room_id"] == created["room_id"]
    bob.type("/accept-invite ops")  # his node fetches the log from the shared store
    invited = bob.expect(lambda e: e["event"] == "invited" and e["room"] == "ops", "the room followed", CROSS)
    assert invited["by"] == "alice" and invited["room_id"] == created["room_id"]
    alice.expect_event("member_added", room="ops", name="bob")
    text = f"ops line {secrets.token_hex(8)}"
    alice.type("/join ops")
    alice.expect_event("room", room="ops")
    alice.type(text)
    sent = alice.expect_event("sent", room="ops")
    assert sent["to"] == ["bob"]
    message = bob.expect(lambda e: e["event"] == "message" and e["text"] == text, "the ops line", CROSS)
    assert message["room"] == "ops"
    assert report(alice, sent)["delivered"] == ["bob"]


def raw_member(relay: RelayProcess, name: str) -> HostileClient:
    member = HostileClient(parse_address(relay.address), timeout=CROSS)
    member.join(name, skip=("joined", "left"))
    return member


def test_mail_posted_on_one_relay_for_a_member_online_on_the_other_reaches_them_now(
    nodes: Callable[[str], RelayProcess],
) -> None:
    """Raw protocol members, so the post is made while bob is online (a client posts only for someone
    it does not see; a relay's view of another node lags up to a presence refresh, when this happens)."""
    node1, node2 = nodes("n1"), nodes("n2")
    with raw_member(node2, "bob") as bob, HostileClient(parse_address(node1.address), timeout=CROSS) as alice:
        welcome = alice.join("alice", skip=("joined", "left"))
        ring = PrekeyRing(bob.identity)
        bob.send_frame(prekeys_frame(ring.on_join(time.time())))
        bob.expect_frame(PrekeysHeld, skip=("joined", "left"))
        bob.expect_frame(MailEnd, skip=("joined", "left"))  # drained: nothing waited for him
        # Node 1 knows bob is on node 2: in alice's welcome when its presence refresh came first
        # (under load it does), else announced to her after it.
        known = any(member.name == "bob" for member in welcome.roster)
        while not known:
            joined = alice.expect_frame(Joined)
            assert isinstance(joined, Joined)
            known = joined.member.name == "bob"
        envelope = secrets.token_bytes(64)  # opaque to the relays, as every mailbox item
        alice.send_frame(Post(id="p1", kind="message", to={bob.identity.public: envelope}))
        posted = alice.expect_frame(Posted, skip=("joined", "left"))
        assert isinstance(posted, Posted) and posted.waiting == (bob.identity.public,)
        # Stored in Redis by node 1; node 2 is told, and drains it to bob now, not at his next join.
        mail = bob.expect_frame(Mail, skip=("joined", "left"))
        assert isinstance(mail, Mail) and mail.ct == envelope and mail.sender == "alice"
