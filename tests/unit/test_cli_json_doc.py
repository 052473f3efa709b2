"""docs/cli-json.md is the ``susurro-cli --json`` format: one of each of the
client's events renders to exactly what the doc says, the checker that
tests/conftest.py runs on every line the integration tests' clients print
catches what the doc does not say, and every warning kind and trust state
the code can produce is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.render import event_to_json
from susurro.crypto.trust import TrustState
from susurro.protocol import ErrorCode
from tests.helpers.cli_json import problems, schema

ROOT = Path(__file__).resolve().parents[2]
FP = "0093 3367 0399 3109 1260 9948 8904 8826"
MEMBER = ev.MemberInfo(name="bob", fingerprint=FP, identity_key=bytes(32), trust=TrustState.PINNED)

#: One of each event the core emits, as the CLI renders it.
SAMPLES: list[ev.Event] = [
    ev.Connected(name="alice", fingerprint=FP, relay="127.0.0.1:12345"),
    ev.Roster(members=(MEMBER,)),
    ev.Roster(members=()),
    ev.Joined(member=MEMBER),
    ev.Left(name="bob"),
    ev.TrustUpdated(member=MEMBER),
    ev.Message(
        sender="bob",
        text="hola",
        to=("alice",),
        direct=True,
        msg_id="0123456789abcdef",
        sent_at=1,
        trust=TrustState.NEW,
        waited=True,
    ),
    ev.Delivery(msg_id="0123456789abcdef", delivered=("bob",), missing=(), skipped=("carol",)),
    ev.Delivery(
        msg_id="0123456789abcdef", delivered=(), missing=(), waiting=("dana",), not_delivered=(("erin", "no prekey"),)
    ),
    ev.Warning(kind=ev.WarningKind.GAP, detail="1 message from bob did not arrive", sender="bob"),
    ev.Warning(kind=ev.WarningKind.DELIVERY_UNKNOWN, detail="no delivery report"),
    ev.KeyChanged(
        kind=ev.WarningKind.KEY_CHANGED,
        detail="changed",
        sender="bob",
        name="bob",
        old_fingerprint=FP,
        new_fingerprint=FP,
    ),
    ev.Receipt(sender="bob", msg_ids=("0123456789abcdef",)),
    ev.Disconnected(reason="the relay shut down", code=None),
    ev.Disconnected(reason="name taken", code=ErrorCode.NAME_TAKEN),
    ev.Reconnecting(delay=1.5, attempt=1, reason="connection reset"),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_renders_as_the_doc_says(event: ev.Event) -> None:
    assert problems(event_to_json(event)) == []


def all_event_classes() -> set[type]:
    found: set[type] = set()
    pending = [ev.Event]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


def test_every_event_class_has_a_sample_here() -> None:
    # A new event needs a sample above, and so a section in docs/cli-json.md.
    # (``dataclass(slots=True)`` replaces each class, so keep only the ones the module exports.)
    exported = {c for c in all_event_classes() if getattr(ev, c.__name__, None) is c}
    assert {type(e) for e in SAMPLES} >= exported


def test_the_checker_catches_what_the_doc_does_not_say() -> None:
    good = event_to_json(ev.Left(name="bob"))
    assert problems(good) == []
    assert problems({**good, "extra": 1}) == ["left: field 'extra' is not in docs/cli-json.md"]
    assert problems({"event": "left"}) == ["left: documented field 'name' is missing"]
    assert problems({"event": "levitated"}) == ["event 'levitated' is not in docs/cli-json.md"]
    assert problems({"event": "left", "name": 3}) == ["left.name: 3 is not string"]
    joined = event_to_json(ev.Joined(member=MEMBER))
    assert problems({**joined, "trust": "trusted"}) == ["joined.trust: 'trusted' is not trust"]
    warning = event_to_json(ev.Warning(kind=ev.WarningKind.GAP, detail="x"))
    assert problems({**warning, "kind": "gremlins"}) == ["warning.kind: 'gremlins' is not kind"]
    roster = {"event": "roster", "members": [{"name": "bob", "fingerprint": FP}]}
    assert problems(roster) == ["roster.members[0]: documented field 'trust' is missing"]


def test_the_doc_lists_every_event_the_cli_prints_by_itself() -> None:
    # Besides the core's events, the CLI answers typed lines with these.
    assert {"sent", "safety_number", "strict", "help", "warning"} <= set(schema().events)


def test_every_trust_state_is_documented() -> None:
    assert schema().trust_states == {state.value for state in TrustState}


def warning_kinds_in_the_code() -> set[str]:
    """The core's ``WarningKind`` values, and the kinds the CLI writes itself (``send_failed``...)."""
    kinds = {kind.value for kind in ev.WarningKind}
    for path in (ROOT / "client").glob("*.py"):
        kinds |= set(re.findall(r'"kind": "([a-z_]+)"', path.read_text(encoding="utf-8")))
    return kinds


def test_every_warning_kind_the_code_can_emit_is_documented() -> None:
    kinds = warning_kinds_in_the_code()
    assert len(kinds) > 20
    assert kinds <= schema().warning_kinds, sorted(kinds - schema().warning_kinds)
