"""client/localstate.py: counters and streams saved sealed, so a restarted client neither resets nor sees false gaps."""

from __future__ import annotations

import stat
from pathlib import Path

from susurro.client.localstate import CounterState
from susurro.client.rooms import RememberedRoom
from susurro.crypto import IdentityKey

ALICE, BOB = IdentityKey.generate(), IdentityKey.generate()


def test_counters_and_streams_survive_a_restart_sealed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bob.state"
    state = CounterState(BOB, path)
    state.counters.advance("dm", [ALICE.public])
    state.counters.advance("dm", [ALICE.public])
    state.replay.check(b"session", "alice", "m1", 57, (ALICE.public, "dm"))
    state.save(100.0, force=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and ALICE.public not in path.read_bytes()
    again = CounterState(BOB, path)
    assert again.counters.next_for("dm", ALICE.public) == 3
    # alice's session goes on at 58 after bob restarted: no false gap, and 57 again is refused as a replay
    assert again.replay.check(b"session", "alice", "m2", 58, (ALICE.public, "dm")).missed == 0


def test_another_identitys_or_a_damaged_state_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bob.state"
    state = CounterState(BOB, path)
    state.counters.advance("dm", [ALICE.public])
    state.save(1.0, force=True)
    assert CounterState(ALICE, path).counters.next_for("dm", ALICE.public) == 1
    assert not path.exists(), "the file ALICE could not open was kept aside (bob.state.unreadable), not reused"
    path.write_bytes(b"garbage")
    path.chmod(0o600)
    assert CounterState(BOB, path).counters.next_for("dm", ALICE.public) == 1


def test_saves_are_rate_limited_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bob.state"
    state = CounterState(BOB, path, interval=5.0)
    state.save(10.0)
    first = path.stat().st_mtime_ns
    state.counters.advance("dm", [ALICE.public])
    state.save(12.0)
    assert path.stat().st_mtime_ns == first
    state.save(12.0, force=True)
    assert CounterState(BOB, path).counters.next_for("dm", ALICE.public) == 2


def test_the_rooms_a_session_verified_are_kept_per_relay_sealed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bob.state"
    state = CounterState(BOB, path)
    ops = RememberedRoom(room_id=bytes([7]) * 32, label="ops", seq=4, hash=bytes([9]) * 32)
    state.room_source = ("relay.example:7000", lambda: [ops])
    state.save(1.0, force=True)
    assert b"ops" not in path.read_bytes()  # sealed like the rest
    again = CounterState(BOB, path)
    assert again.rooms == {"relay.example:7000": [ops]}
