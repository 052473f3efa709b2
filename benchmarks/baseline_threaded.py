"""Baseline: the simplest threaded broadcast server, for comparison only.

One thread per connection; a frame is a 4-byte big-endian length and the
payload, with no msgpack, no validation, no limits. Every complete frame read
from one client is written to every other client with a blocking ``sendall``
from the reader's thread. On connect the server sends one greeting frame
(``hi``), so a client knows it is in the room.

Run: ``python -m benchmarks.baseline_threaded --port 21001``.
"""

from __future__ import annotations

import argparse
import socket
import threading

GREETING = b"\x00\x00\x00\x02hi"


class Room:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: dict[socket.socket, threading.Lock] = {}

    def others(self, sock: socket.socket) -> list[tuple[socket.socket, threading.Lock]]:
        with self.lock:
            return [(s, lock) for s, lock in self.members.items() if s is not sock]


def serve_client(room: Room, sock: socket.socket) -> None:
    send_lock = threading.Lock()
    with room.lock:
        room.members[sock] = send_lock
    buffer = b""
    try:
        with send_lock:
            sock.sendall(GREETING)
        while data := sock.recv(65536):
            buffer += data
            end = 0
            while len(buffer) - end >= 4:
                length = int.from_bytes(buffer[end : end + 4], "big")
                if len(buffer) - end - 4 < length:
                    break
                end += 4 + length
            if not end:
                continue
            frames, buffer = buffer[:end], buffer[end:]
            for other, lock in room.others(sock):
                try:
                    with lock:
                        other.sendall(frames)
                except OSError:
                    pass
    except OSError:
        pass
    finally:
        with room.lock:
            room.members.pop(sock, None)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    threading.stack_size(256 * 1024)
    room = Room()
    listener = socket.create_server((args.host, args.port), backlog=512, reuse_port=False)
    print(f"listening on {args.host}:{args.port}", flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_client, args=(room, sock), daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(main())
