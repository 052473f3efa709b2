"""The relay's log: one line per event, metadata and ciphertext only."""

from __future__ import annotations

import logging

import pytest

from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
from susurro.protocol import RELAY_FRAMES, Challenge, Hello, Send, decode_frame, encode
from susurro.relay import RelayConfig, RelayCore
from tests.helpers.memory import MemoryOutbox


def joined(core: RelayCore, name: str) -> object:
    outbox = MemoryOutbox()
    conn = core.connect(outbox, f"test:{name}")
    assert conn is not None
    challenge = decode_frame(outbox.data[0][4:], RELAY_FRAMES)
    assert isinstance(challenge, Challenge)
    identity, session = IdentityKey.generate(), SessionKey.generate()
    cert = SessionCertificate.issue(identity, name, session.public, 1)
    hello = Hello(
        name=name,
        ik=identity.public,
        sk=session.public,
        cert=cert.signature,
        issued_at=1,
        proof=join_proof(identity, challenge.nonce, name, session.public),
    )
    assert core.receive(conn, encode(hello))
    return conn


@pytest.mark.parametrize("whole", [False, True], ids=["prefix", "log-ciphertext"])
def test_deliver_lines_show_a_prefix_or_the_whole_ciphertext(caplog: pytest.LogCaptureFixture, whole: bool) -> None:
    core = RelayCore(RelayConfig(log_ciphertext=whole))
    alice = joined(core, "alice")
    joined(core, "bob")
    ciphertext = bytes(range(256)) * 2
    with caplog.at_level(logging.INFO, logger="susurro.relay"):
        core.receive(alice, encode(Send(id="m1", to={"bob": ciphertext, "ghost": b"\x01"})))  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    deliver = [line for line in lines if line.startswith("deliver ")]
    assert deliver == [
        f"deliver from=alice to=bob id=m1 bytes=512 ct={ciphertext.hex() if whole else ciphertext[:16].hex() + '...'}"
    ]
    assert "undeliverable from=alice to='ghost' id=m1" in lines


def test_one_deliver_line_per_send_or_one_per_copy_when_auditing(caplog: pytest.LogCaptureFixture) -> None:
    for audit in (False, True):
        core = RelayCore(RelayConfig(log_ciphertext=audit))
        alice = joined(core, "alice")
        joined(core, "bob")
        joined(core, "carol")
        to = {"bob": b"\x01" * 300, "carol": b"\x02" * 300}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="susurro.relay"):
            core.receive(alice, encode(Send(id="m2", to=to)))  # type: ignore[arg-type]
        deliver = [r.getMessage() for r in caplog.records if r.getMessage().startswith("deliver ")]
        if audit:
            assert deliver == [f"deliver from=alice to={n} id=m2 bytes=300 ct={ct.hex()}" for n, ct in to.items()]
        else:
            assert deliver == [f"deliver from=alice to=bob,carol id=m2 bytes=600 ct={'01' * 16}..."]


def test_join_and_reject_lines(caplog: pytest.LogCaptureFixture) -> None:
    core = RelayCore(RelayConfig())
    with caplog.at_level(logging.INFO, logger="susurro.relay"):
        joined(core, "alice")
        stranger = core.connect(MemoryOutbox(), "test:stranger")
        assert stranger is not None
        core.receive(stranger, encode(Send(id="m1", to={"alice": b"x"})))
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("join name=alice fp=") and "members=1" in line for line in lines)
    assert any(line.startswith("reject conn=") and "code=not_joined" in line for line in lines)
