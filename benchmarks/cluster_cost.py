"""What a delivery to a member on another relay node costs, against one on the same node.

One real ``redis-server`` (private, on a free loopback port, as the tests
start it; or ``--redis URL``), two ``ClusterNode`` facades in this process.
A cross-node send is the whole round trip the cluster adds: node 1 publishes
one stream entry for node 2's recipients, node 2 reads it and reports, node
1 reads the report. A local delivery is what the relay's core does per
recipient today: pack the ``deliver`` frame and offer it to an outbox.
Sends run one after another (latency, not saturation), so the figures are a
floor on the cost, not a throughput limit of Redis.

It also times what a join and a leave cost the I/O thread that handles them
(``ClusterNode.admit``: the name claim and the presence record; ``depart``),
and counts their Redis round trips (requests written to Redis, a pipeline
being one).

    python -m benchmarks.cluster_cost [--sends 2000] [--recipients 1,10,100] [--joins 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from susurro.protocol import DeliverEncoder
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from susurro.relay.cluster.connect import open_redis
from susurro.relay.cluster.node import Admission, ClusterNode, Inbound, Outcome

#: Bytes of one recipient's ciphertext (a short chat line, padded and sealed).
CT_BYTES = 400


def _identity(name: str) -> bytes:
    """A stand-in identity key per member: the node claims it beside the name."""
    return name.encode().ljust(32, b"\0")[:32]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def private_redis() -> Iterator[tuple[str, int | None]]:
    # The same private redis-server the cluster tests start (tests/helpers/redis_server.py).
    from tests.helpers.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory)).start()
        try:
            assert server.proc is not None
            yield server.url, server.proc.pid
        finally:
            server.stop()


def local_cost(recipients: int, sends: int) -> float:
    """Seconds per delivery: the core's per-recipient work for a local member."""
    outbox: list[bytes] = []
    cts = [os.urandom(CT_BYTES) for _ in range(recipients)]
    started = time.perf_counter()
    for ref in range(sends):
        encoder = DeliverEncoder("alice", f"m{ref}", max_frame=ABSOLUTE_MAX_FRAME)
        for ct in cts:
            outbox.append(encoder.frame(ct))
        outbox.clear()
    return (time.perf_counter() - started) / (sends * recipients)


def cross_node(url: str, redis_pid: int | None, recipients: int, sends: int) -> dict[str, float]:
    node1, node2 = ClusterNode(open_redis(url), "bench1"), ClusterNode(open_redis(url), "bench2")
    node1.start()
    node2.start()
    names = [f"m{i}" for i in range(recipients)]
    for name in names:
        assert node2.admit(f"bench-{name}", name, "t", b"m" * 300, _identity(name)) is Admission.ADMITTED
    node1.poll(now=0)
    node2.poll(now=0)
    cts = [os.urandom(CT_BYTES) for _ in names]
    delivered = 0
    redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
    started = time.perf_counter()
    for ref in range(sends):
        encoder = DeliverEncoder("alice", f"m{ref}", max_frame=ABSOLUTE_MAX_FRAME)
        frames = {name: encoder.frame(ct) for name, ct in zip(names, cts, strict=True)}
        assert node1.send(ref, frames, now=1) == {}
        for event in node2.poll(now=1):
            if isinstance(event, Inbound):
                node2.answer(event, [name for name, _ in event.frames], [])
        delivered += sum(len(e.delivered) for e in node1.poll(now=1) if isinstance(e, Outcome))
    elapsed = time.perf_counter() - started
    redis_cpu = (cpu_seconds(redis_pid) - redis_before) if redis_pid else float("nan")
    for name in names:
        node2.depart(f"bench-{name}", name)
    node1.close()
    node2.close()
    assert delivered == sends * recipients, f"{delivered} of {sends * recipients} reported delivered"
    return {
        "per_send": elapsed / sends,
        "per_delivery": elapsed / delivered,
        "deliveries_per_s": delivered / elapsed,
        "redis_cpu": redis_cpu / elapsed,
    }


class _Counted(redis.Connection):
    """A Redis connection that counts the requests it writes: one per command, one per pipeline."""

    writes = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        _Counted.writes += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def join_cost(url: str, joins: int) -> dict[str, float]:
    """Seconds and Redis round trips per join (``admit``) and per leave (``depart``), one after another."""
    client = redis.Redis.from_url(url, connection_class=_Counted)
    node = ClusterNode(client, "bench-joins")
    node.start()
    names = [f"j{i}" for i in range(joins)]
    record = b"m" * 300  # a member record's size
    writes = _Counted.writes
    started = time.perf_counter()
    for name in names:
        assert node.admit(f"bench-{name}", name, "t", record, _identity(name)) is Admission.ADMITTED
    admit = time.perf_counter() - started
    admit_trips = _Counted.writes - writes
    writes = _Counted.writes
    started = time.perf_counter()
    for name in names:
        node.depart(f"bench-{name}", name)
    depart = time.perf_counter() - started
    depart_trips = _Counted.writes - writes
    node.close()
    return {
        "admit": admit / joins,
        "admit_trips": admit_trips / joins,
        "depart": depart / joins,
        "depart_trips": depart_trips / joins,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--recipients", default="1,10,100", help="recipients on the other node per send")
    parser.add_argument("--joins", type=int, default=2000, help="joins (then leaves) to time, one after another")
    parser.add_argument("--redis", help="redis://HOST:PORT/DB to use instead of a private redis-server")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.recipients.split(",")]
    print(f"cross-node delivery through one Redis, {args.sends} sends one after another, {CT_BYTES}-byte copies")
    print(f"{'recipients':>10} {'ms/send':>8} {'µs/copy remote':>15} {'µs/copy local':>14} {'ratio':>6} "
          f"{'copies/s':>9} {'Redis CPU':>9}")  # fmt: skip

    def run(url: str, pid: int | None) -> None:
        for recipients in counts:
            remote = cross_node(url, pid, recipients, args.sends)
            local = local_cost(recipients, args.sends)
            print(
                f"{recipients:>10} {remote['per_send'] * 1e3:>8.2f} {remote['per_delivery'] * 1e6:>15.1f} "
                f"{local * 1e6:>14.2f} {remote['per_delivery'] / local:>5.0f}x "
                f"{remote['deliveries_per_s']:>9.0f} {remote['redis_cpu']:>8.0%}"
            )
        if args.joins:
            joins = join_cost(url, args.joins)
            print(
                f"joins then leaves on one node, {args.joins} one after another: "
                f"join {joins['admit'] * 1e6:.0f} µs ({joins['admit_trips']:.1f} Redis round trips), "
                f"leave {joins['depart'] * 1e6:.0f} µs ({joins['depart_trips']:.1f} round trips)"
            )

    if args.redis:
        run(args.redis, None)
    else:
        with private_redis() as (url, pid):
            run(url, pid)


if __name__ == "__main__":
    main()
