"""``TLSStream`` under the relay's and client's threading: one reader and one
writer thread per side, both directions busy at once, every byte checked."""

from __future__ import annotations

import hashlib
import socket
import threading
import time

from susurro.transport import TLSStream
from tests.helpers.certs import TlsFiles, make_pki, needs_openssl

pytestmark = needs_openssl

TOTAL = 4 * 1024 * 1024  # bytes each side sends
WAIT = 60.0


def _connected_pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=WAIT)
        server, _ = listener.accept()
    return client, server


def _pump(stream: TLSStream, seed: bytes, results: dict[str, object], side: str) -> None:
    """Write TOTAL pseudo-random bytes in uneven chunks while a second thread reads."""
    received = hashlib.sha256()
    count = 0

    def read() -> None:
        nonlocal count
        while count < TOTAL:
            data = stream.recv(65536)
            if not data:
                break
            received.update(data)
            count += len(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = hashlib.sha256()
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    offset, size = 0, 1
    while offset < TOTAL:
        chunk = block[: min(size, TOTAL - offset)]
        stream.sendall(chunk)
        sent.update(chunk)
        offset += len(chunk)
        size = size * 7 % 65521 + 1  # sizes from 1 byte to 64 KiB, in no order
    reader.join(WAIT)
    results[side] = (sent.hexdigest(), received.hexdigest(), count)


def test_full_duplex_from_two_threads_per_side(tmp_path: object) -> None:
    import ssl
    from pathlib import Path

    pki: TlsFiles = make_pki(Path(str(tmp_path)))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.cert, pki.key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca))
    raw_client, raw_server = _connected_pair()
    client = TLSStream.client(raw_client, client_ctx, "localhost")
    server = TLSStream.server(raw_server, server_ctx)
    shake = threading.Thread(target=server.handshake, args=(time.monotonic() + WAIT,), daemon=True)
    shake.start()
    client.handshake(time.monotonic() + WAIT)
    shake.join(WAIT)
    assert client.version == server.version and client.version in ("TLSv1.2", "TLSv1.3")
    for stream in (client, server):
        stream.settimeout(WAIT)
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=_pump, args=(client, b"client", results, "client"), daemon=True),
        threading.Thread(target=_pump, args=(server, b"server", results, "server"), daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert set(results) == {"client", "server"}, "a side did not finish (deadlock or error)"
    client_sent, client_received, client_count = results["client"]  # type: ignore[misc]
    server_sent, server_received, server_count = results["server"]  # type: ignore[misc]
    assert client_count == server_count == TOTAL
    assert client_sent == server_received and server_sent == client_received
    # A graceful close: close_notify, then the peer reads end of stream.
    client.shutdown(socket.SHUT_WR)
    assert server.recv(10) == b""
    client.close()
    server.close()
