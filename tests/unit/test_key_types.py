"""Identity and session public keys are distinct types: mypy refuses one for the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from susurro.crypto import IdentityKey, SessionKey

api = pytest.importorskip("mypy.api")

SNIPPET = """
from susurro.crypto import IdentityKey, SessionKey, fingerprint, make_box
from susurro.crypto.safety import safety_number

identity = IdentityKey.generate()
session = SessionKey.generate()
fingerprint(session.public)  # a session key where an identity key belongs
make_box(session, identity.public)  # an identity key where a session key belongs
safety_number(identity.public, b"raw bytes from the network")  # unchecked bytes
fingerprint(identity.public)  # fine
make_box(session, SessionKey.generate().public)  # fine
"""


def test_passing_one_kind_of_public_key_for_the_other_is_a_type_error(tmp_path: Path) -> None:
    source = tmp_path / "mixup.py"
    source.write_text(SNIPPET, encoding="utf-8")
    stdout, _stderr, status = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(source)])
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 1
    assert [int(line.split(":")[1]) for line in errors] == [7, 8, 9], stdout
    assert '"SessionPublicKey"; expected "IdentityPublicKey"' in errors[0]
    assert '"IdentityPublicKey"; expected "SessionPublicKey"' in errors[1]


def test_the_key_types_are_plain_bytes_at_run_time() -> None:
    identity, session = IdentityKey.generate(), SessionKey.generate()
    assert type(identity.public) is bytes and type(session.public) is bytes
    assert len(identity.public) == len(session.public) == 32
