"""Fixtures of the TLS tests."""

from __future__ import annotations

import pytest

from tests.helpers.certs import TlsFiles, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for localhost, shared by one test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))
