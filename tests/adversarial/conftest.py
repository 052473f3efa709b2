"""Fixtures of the hostile-relay tests: a tampering proxy between real clients and a real relay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.hostile_relay import HostileRoom


@pytest.fixture
def hostile() -> Iterator[HostileRoom]:
    """A real relay behind a tampering proxy; at teardown it fails if a hook broke or a thread died."""
    room = HostileRoom()
    try:
        yield room
        room.check()
    finally:
        room.close()
