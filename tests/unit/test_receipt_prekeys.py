"""Review S4 finding 9: the signed prekey receipts are sealed to is fetched again when old.

alice rotates her signed prekey every 7 days and deletes a replaced one 30 days
later. bob stays connected for 40 days: his receipts must follow her current
prekey, or "delivered" silently stops for her. Real sessions, a real relay core
on a real SQLite data dir, one clock moved forward.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client import events as ev
from tests.helpers.offline import T0, joined

DAY = 24 * 3600


def test_receipts_still_reach_a_sender_after_she_rotated_her_prekey_twice_in_40_days(tmp_path: Path) -> None:
    room, (alice, _), clock = joined(tmp_path, "alice", "bob")
    first = room["alice"].send_message("day 0", room.now, to=["bob"])
    assert [r.msg_ids for r in room.pump()["alice"] if isinstance(r, ev.Receipt)] == [(first,)]

    # alice comes back on day 8 and day 40: each time her signed prekey rotates, and by day 40
    # the one bob fetched on day 0 (replaced on day 8) is deleted. bob stays connected throughout.
    for n, day in enumerate((8, 40)):
        room.hang_up("alice" if n == 0 else "alice1")
        room.pump()
        clock[0] = T0 + day * DAY
        room.add(f"alice{n + 1}", name="alice", **alice.session_options(clock))
        room.pump()
    later = room["alice2"].send_message("day 40", room.now, to=["bob"])
    events = room.pump()["alice2"]
    assert [r.msg_ids for r in events if isinstance(r, ev.Receipt)] == [(later,)]
    assert not [e for e in events if isinstance(e, ev.Warning)], events
