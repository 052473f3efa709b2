"""Baseline: the simplest asyncio broadcast server, for comparison only.

Same wire as ``baseline_threaded`` (4-byte length, payload, no validation,
a greeting frame on connect), one event loop, ``asyncio.Protocol`` callbacks:
the complete frames of each read are written to every other client's
transport, which buffers without limit.

Run: ``python -m benchmarks.baseline_asyncio --port 21002``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import ClassVar

GREETING = b"\x00\x00\x00\x02hi"


class Broadcast(asyncio.Protocol):
    members: ClassVar[set[Broadcast]] = set()

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.members.add(self)
        transport.write(GREETING)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        end = 0
        while len(buffer) - end >= 4:
            length = int.from_bytes(buffer[end : end + 4], "big")
            if len(buffer) - end - 4 < length:
                break
            end += 4 + length
        if not end:
            self.buffer = buffer
            return
        frames, self.buffer = buffer[:end], buffer[end:]
        for member in self.members:
            if member is not self and member.transport is not None:
                member.transport.write(frames)

    def connection_lost(self, exc: Exception | None) -> None:
        self.members.discard(self)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Broadcast, host, port, backlog=512, reuse_address=True)
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
