"""Test certificates made with the ``openssl`` command, so no Python package is added.

``make_pki(directory)`` writes a private certificate authority and a relay
certificate signed by it for ``localhost`` and ``127.0.0.1``, plus a second
relay certificate from the same authority for another host name only.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed to make test certificates")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the authority's certificate: what clients pass with --cafile
    cert: Path  # relay certificate for localhost and 127.0.0.1
    key: Path
    other_host_cert: Path  # valid, same authority, but only for relay.example.org
    other_host_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _leaf(directory: Path, stem: str, subject_alt_names: str) -> tuple[Path, Path]:
    (directory / f"{stem}.ext").write_text(
        f"subjectAltName={subject_alt_names}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", *ec, "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={stem}", cwd=directory)
    _openssl(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", f"{stem}.ext", "-out", f"{stem}.pem", cwd=directory,
    )  # fmt: skip
    return directory / f"{stem}.pem", directory / f"{stem}.key"


def make_pki(directory: Path) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Susurro test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    cert, key = _leaf(directory, "relay", "DNS:localhost,IP:127.0.0.1")
    other_cert, other_key = _leaf(directory, "elsewhere", "DNS:relay.example.org")
    return TlsFiles(ca=directory / "ca.pem", cert=cert, key=key, other_host_cert=other_cert, other_host_key=other_key)
