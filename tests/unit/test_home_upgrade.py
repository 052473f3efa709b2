"""Files named by name from before they were kept per key: moved only when they open under the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from susurro.client.history import SqliteHistory, history_opens_under
from susurro.client.home import LocalFile, local_path, named_path
from susurro.client.home_upgrade import Step, plan
from susurro.client.localstate import open_local_state
from susurro.crypto import IdentityKey
from susurro.crypto.history import HistoryKey, HistoryRecord
from susurro.crypto.trust import TrustStore
from susurro.protocol import name_key


def record(n: int) -> HistoryRecord:
    return HistoryRecord(conversation="room:main", msg_id=f"m{n}", sender="bob", sent_at=n, outgoing=False, body="hi")


@pytest.mark.parametrize(
    ("named", "keyed", "opens", "step"),
    [
        (False, False, True, Step.NOTHING),
        (True, True, True, Step.NOTHING),  # already per key: the named one may be another key's
        (True, False, True, Step.MOVE),
        (True, False, False, Step.LEAVE),
    ],
)
def test_plan(named: bool, keyed: bool, opens: bool, step: Step) -> None:
    assert plan(named, keyed, lambda: opens) is step


def test_a_history_opens_only_under_its_own_key_and_is_whole_without_its_wal(tmp_path: Path) -> None:
    mine, other = IdentityKey.generate(), IdentityKey.generate()
    path = tmp_path / "alice.sqlite3"
    history = SqliteHistory(path, HistoryKey.derive(mine))
    history.add_many(record(n) for n in range(5))
    history.close()
    assert not history_opens_under(path, HistoryKey.derive(other))
    assert history_opens_under(path, HistoryKey.derive(mine))
    assert not Path(f"{path}-wal").exists()  # folded in: the file alone holds everything
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all, not even close to one")
    assert not history_opens_under(tmp_path / "junk.sqlite3", HistoryKey.derive(mine))


def test_open_local_state_takes_its_own_named_files_and_leaves_another_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUSURRO_HOME", str(tmp_path))
    first, second = IdentityKey.generate(), IdentityKey.generate()
    history, _mailbox, counters = open_local_state(first, "alice", TrustStore(key_of=name_key))
    history.add(record(1))
    history.close()
    counters.save(0.0, force=True)
    for kind in (LocalFile.HISTORY, LocalFile.STATE):  # back to where a client from before kept them
        local_path(kind, first.public).rename(named_path(kind, "alice"))
    told: list[str] = []
    history, _mailbox, _counters = open_local_state(second, "alice", TrustStore(key_of=name_key), notice=told.append)
    history.close()
    assert len(told) == 2 and all("does not open under this one" in text for text in told)
    assert named_path(LocalFile.HISTORY, "alice").exists() and named_path(LocalFile.STATE, "alice").exists()
    told.clear()
    history, _mailbox, _counters = open_local_state(first, "alice", TrustStore(key_of=name_key), notice=told.append)
    assert told == [] and [e.record.msg_id for e in history.page("room:main").entries] == ["m1"]
    assert not named_path(LocalFile.HISTORY, "alice").exists() and not named_path(LocalFile.STATE, "alice").exists()
