"""``relay_load --nodes 2``: the same room load against 1 relay, and against 2 relays sharing one Redis.

Three layouts at each N, in one run, on one private ``redis-server`` (as the
cluster tests start it):

- ``1node``: one ``susurro-relay`` (no ``--cluster``), the reference;
- ``2n-one``: two ``--cluster`` relays, every member on the first (what the
  cluster costs when nothing crosses nodes: presence, name claims);
- ``2n-split``: two ``--cluster`` relays, each load-generator worker's share
  of the members on its own node, so about half of every message's copies
  cross to the other node as one stream entry.

Relay CPU is the two relays together; Redis's CPU is in the note. Before a
layout's first step the benchmark waits until each node's ``--status-port``
lists every member of the other node (presence is refreshed every 3 s), so
no step starts with members that cannot see each other yet.

    python -m benchmarks.relay_load --nodes 2 --clients 100,500
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from . import relay_load, servers
from .cluster_cost import private_redis
from .procstat import cpu_seconds

LAYOUTS = ("1node", "2n-one", "2n-split")
#: Seconds to wait for the nodes to see each other's members (refresh every 3 s; a loaded machine).
SETTLE_TIMEOUT = 60.0


@dataclass
class Cluster:
    """Relay nodes that serve like one server for ``relay_load`` (its ``ServerProcess`` calls)."""

    relays: list[servers.ServerProcess]
    status_ports: list[int]
    split: bool
    redis_pid: int | None
    name: str = "susurro"
    dialect: str = "susurro"

    @property
    def port(self) -> int:
        return self.relays[0].port

    @property
    def pid(self) -> int:
        return self.relays[0].pid

    def port_for(self, worker: int) -> int:
        return self.relays[worker % len(self.relays)].port if self.split else self.relays[0].port

    def cpu_seconds(self) -> float | None:
        values = [relay.cpu_seconds() for relay in self.relays]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def helper_cpu_seconds(self) -> float | None:
        return cpu_seconds(self.redis_pid) if self.redis_pid else None

    def rss_bytes(self) -> int | None:
        values = [relay.rss_bytes() for relay in self.relays]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    def alive(self) -> bool:
        return all(relay.alive() for relay in self.relays)

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()

    def settled(self, n: int) -> bool:
        """Every node lists all the members of the others (``remote_members``), within ``SETTLE_TIMEOUT``."""
        if len(self.relays) == 1:
            return True
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            sections = [status(port) for port in self.status_ports]
            members = [int(s.get("members", -1)) for s in sections]
            remote = [int(s.get("cluster", {}).get("remote_members", -1)) for s in sections]
            if sum(members) == n and all(members[i] + remote[i] == n for i in range(len(sections))):
                return True
            time.sleep(0.2)
        return False


def status(port: int) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"http://{servers.HOST}:{port}/status", timeout=5) as answer:
            body = json.loads(answer.read())
            if isinstance(body, dict):
                return body
    return {}


def launcher(layout: str, url: str, redis_pid: int | None, args: argparse.Namespace, ports: relay_load.Ports) -> Any:
    """What starts ``layout``'s relays (one plain relay for ``1node``), named for the table."""

    def launch() -> Cluster | servers.ServerProcess:
        if layout == "1node":
            return dataclasses.replace(servers.start("susurro", ports.take(), args.relay_arg), name=layout)
        relays: list[servers.ServerProcess] = []
        status_ports: list[int] = []
        try:
            for _ in range(2):
                status_ports.append(ports.take())
                extra = ["--cluster", url, "--status-port", str(status_ports[-1]), *args.relay_arg]
                relays.append(servers.start("susurro", ports.take(), extra))
        except BaseException:
            for relay in relays:
                relay.stop()
            raise
        return Cluster(relays, status_ports, split=layout == "2n-split", redis_pid=redis_pid, name=layout)

    return launch


def run(gens: relay_load.Generators, args: argparse.Namespace, ports: relay_load.Ports, results: list[Any]) -> int:
    with private_redis() as (url, redis_pid):
        for n in args.sweep:
            for layout in LAYOUTS:
                before = len(results)
                relay_load.sweep_one(
                    gens, "susurro", n, args, ports, results, launch=launcher(layout, url, redis_pid, args, ports)
                )
                for row in results[before:]:
                    row.server = layout
    for line in summary(results, args.sweep):
        print(line, flush=True)
    return 0


def summary(results: list[Any], sweep: list[int]) -> list[str]:
    best: dict[tuple[str, int], Any] = {}
    for r in results:
        key = (r.server, r.clients)
        if r.passed and (key not in best or r.deliveries > best[key].deliveries):
            best[key] = r
    lines = ["", "max deliveries/s with 100 % delivered and p99 <= 50 ms (relay CPU = both nodes):"]
    for n in sweep:
        cells = []
        for layout in LAYOUTS:
            r = best.get((layout, n))
            if r is None:
                cells.append(f"{layout}=-")
                continue
            helper = f", Redis {r.helper_cpu_pct:.0f} %" if r.helper_cpu_pct is not None else ""
            gen = f", generators {r.gen_cpu_pct:.0f} %" if r.gen_cpu_pct is not None else ""
            relay = f"relays {r.cpu_pct:.0f} %" if r.cpu_pct is not None else "relays ?"
            cells.append(f"{layout}={r.deliveries:,.0f} ({relay}{helper}{gen})")
        lines.append(f"  N={n:<4} " + "  ".join(cells))
        one, split = best.get(("1node", n)), best.get(("2n-split", n))
        if one and split:
            lines.append(f"  N={n}: 2 nodes split / 1 node = {split.deliveries / one.deliveries:.2f}")
            if one.cpu_pct and split.cpu_pct:
                local = one.cpu_pct / one.deliveries
                mixed = split.cpu_pct / split.deliveries
                crossing = (n // 2) / (n - 1)  # the share of a message's copies that go to the other node
                remote = (mixed - local * (1 - crossing)) / crossing
                lines.append(
                    f"  N={n}: relay CPU per delivery: local {local * 1e4:.1f} us, split {mixed * 1e4:.1f} us, "
                    f"so a cross-node copy costs {remote * 1e4:.1f} us ({remote / local:.1f}x a local one)"
                )
    return lines
