"""The files sealed under an identity key are that key's, not the name's: real relays and
``susurro-cli --json`` processes sharing one ``$SUSURRO_HOME``.

alice chats once; her files are then put back where a client from before kept them
(one per name). A new key made for the name alice signs in (it used to stop at "the prekey
file does not open under this identity"): it is told, in words, that the old files are left
as they are and starts its own. The old key, used again with ``--identity``, takes its files
back and finds its history.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess, alice_then_bob


def named_layout(home: Path) -> dict[Path, bytes]:
    """Rename this home's per-key files to the per-name names of before; returns each file's bytes."""
    moved = {}
    for folder in ("history", "prekeys", "state"):
        for path in sorted((home / folder).glob("key@*")):
            if path.name.endswith(("-wal", "-shm")):
                continue
            old = path.with_name("alice" + path.name[path.name.index(".") :])
            path.rename(old)
            moved[old] = old.read_bytes()
    return moved


def run(tmp: Path, home: Path, *extra: str) -> tuple[CliProcess, RelayProcess]:
    relay = RelayProcess(tmp)  # a relay of its own each time: without a registry a name may change key
    alice = CliProcess("alice", home, relay.address, extra=extra)
    alice.expect_event("connected")
    return alice, relay


def test_a_second_key_for_a_name_signs_in_and_the_first_takes_its_files_back(
    tmp_path: Path, cli_clients: list[CliProcess]
) -> None:
    home = tmp_path / "home"
    first = tmp_path / "one"
    first.mkdir()
    relay = RelayProcess(first)
    try:
        alice, bob = alice_then_bob((home, tmp_path / "bob"), relay, cli_clients)
        bob.expect_event("roster")
        bob.type("hola alice")
        alice.expect_event("message", text="hola alice")
        for person in (alice, bob):
            person.type("/quit")
            assert person.wait() == 0
    finally:
        relay.stop()
    before = named_layout(home)
    assert {p.suffix for p in before} == {".sqlite3", ".ring", ".state", ".mail"}, before
    (home / "identities" / "alice.key").rename(tmp_path / "first.key")

    second = tmp_path / "two"
    second.mkdir()
    alice, relay = run(second, home)
    cli_clients.append(alice)
    try:
        alice.type("/history")
        assert alice.expect_event("history", conversation="room:main")["messages"] == []  # nothing of the other key
        alice.type("/quit")
        assert alice.wait() == 0
    finally:
        relay.stop()
    told = alice.stderr()
    assert "created a new identity key for alice" in told
    for path in before:
        assert f"{path} was kept for the name alice by another identity key" in told, told
        assert path.read_bytes() == before[path]  # left exactly as it was
    assert len(list((home / "prekeys").glob("key@*.ring"))) == 1  # the new key's own

    third = tmp_path / "three"
    third.mkdir()
    alice, relay = run(third, home, "--identity", str(tmp_path / "first.key"))
    cli_clients.append(alice)
    try:
        alice.type("/history")
        history = alice.expect_event("history", conversation="room:main")
        assert [(m["from"], m["text"]) for m in history["messages"]] == [("bob", "hola alice")]
        alice.type("/quit")
        assert alice.wait() == 0
    finally:
        relay.stop()
    assert "was kept for the name" not in alice.stderr()
    assert not [path for path in before if path.exists()]  # each moved to the first key's own name
    assert len(list((home / "prekeys").glob("key@*.ring"))) == 2
