"""Review S4 finding 7: a mailbox item relabelled as a receipt must not use up its one-time prekey.

The hostile relay first hands bob alice's waiting message (sealed to one of
bob's one-time prekeys) labelled ``receipt``, then the same item as the message
it is. If the first delivery burned the one-time key and recorded the
envelope, the second would be a silent duplicate and the message lost. Real
sessions, a real relay core on a real SQLite data dir.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from susurro.crypto.prekeys import read_envelope
from susurro.protocol import Frame, Mail
from tests.adversarial.test_hostile_mailbox import come_back, kinds, texts, waiting_room


def test_a_message_relabelled_as_a_receipt_is_refused_without_using_its_key_then_shown_once(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["the code is 4711"])
    sealed: list[Mail] = []

    def relabel_first(frame: Frame) -> list[Frame]:
        if isinstance(frame, Mail) and frame.kind == "message" and not sealed:
            sealed.append(frame)
            return [dataclasses.replace(frame, kind="receipt"), frame]
        return [frame]

    events = come_back(room, bob, clock, relabel_first)
    assert sealed and read_envelope(sealed[0].ct).one_time_key_id != 0  # the case that can burn a key
    assert texts(events) == ["the code is 4711"]
    assert kinds(events) == ["malformed_message"]
