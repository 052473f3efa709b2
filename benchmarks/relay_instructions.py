"""The relay process's instructions per message: ``python -m benchmarks.relay_instructions``.

Wall-clock rates on a shared machine move with whatever else runs; the
number of instructions the relay executes per message does not. This runs the
real ``susurro-relay`` process (its defaults: INFO lines to a ``--log-file``
and to stderr, the log thread, keepalive, flood control off as in
``relay_load``) under ``valgrind --tool=cachegrind --cache-sim=no``, joins N
real members from a ``loadgen`` worker (outside valgrind), sends
``--rate`` messages a second (each to the N - 1 others) for a short and a
long step, stops the relay with SIGTERM and reads cachegrind's total. The
two runs differ only in the number of messages, so their difference over
the difference of messages is what one message costs the whole process at
that rate: start-up, imports, joins and shutdown cancel out. At 100 messages
a second each send is read on its own (no run of sends per read), the way a
relay below saturation sees them.

Each row is one Python and its checkout: this tree compiled (``this``),
this tree with ``SUSURRO_PURE_PYTHON=1`` (``this-pure``), and with
``--baseline DIR`` the checkout at DIR run by ``DIR/.venv/bin/python`` (and
its pure build with ``--baseline-pure``), in the same sitting. The build each
row ran is its relay's ``--version``. Ratios between rows are the result;
the absolute count depends on the Python and valgrind versions.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from . import loadgen, servers
from .relay_load import Generators

#: valgrind runs the relay some 50 times slower: room to start, join and stop.
START_TIMEOUT = 180.0
JOIN_TIMEOUT = 120.0
STOP_TIMEOUT = 120.0
#: The short and the long run, in messages sent one after the other (``--rate 0``, the default).
DEFAULT_MESSAGES = (100, 500)
#: How long one message's copies may take to arrive (lockstep).
LOCKSTEP_WAIT = 30.0
_SUMMARY = re.compile(rb"^summary:\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Row:
    """One build to measure: its name, the Python that runs it, where it runs, what it sets."""

    name: str
    python: str
    tree: Path
    pure: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((servers.HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _version(row: Row) -> str:
    """What the row's relay says it runs (``--version``), and where its ``susurro`` comes from."""
    env = {**os.environ, "SUSURRO_PURE_PYTHON": "1" if row.pure else "0"}
    said = []
    for argv in (["-m", "susurro.relay", "--version"], ["-c", "import susurro; print(susurro.__path__[0])"]):
        done = subprocess.run(
            [row.python, *argv], cwd=row.tree, env=env, capture_output=True, text=True, timeout=60, check=True
        )
        said.append(done.stdout.strip())
    return f"{said[0]}, susurro from {said[1]}"


def _wait_listening(proc: subprocess.Popen[bytes], port: int, stderr: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the relay exited at start: {stderr.read_text(errors='replace')[-600:]}")
        with contextlib.suppress(OSError), socket.create_connection((servers.HOST, port), timeout=1.0):
            return
        time.sleep(0.2)
    raise SystemExit(f"the relay did not listen within {START_TIMEOUT:.0f} s")


def _under_cachegrind(python: str) -> tuple[Path, Path, list[str]]:
    """A fresh work folder, the cachegrind output file in it, and the command's head that runs ``python``
    under cachegrind with the cache simulation off (instruction counts only: what load does not move)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    out = workdir / "cachegrind.out"
    return workdir, out, ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}", python]


def instructions(row: Row, members: int, seconds: float, rate: float) -> tuple[int, int]:
    """(instructions the relay process ran, deliveries counted) for one run of ``seconds`` at ``rate``."""
    workdir, out, head = _under_cachegrind(row.python)
    port = _free_port()
    argv = [
        *head,
        "-m",
        "susurro.relay",
        "--host",
        servers.HOST,
        "--port",
        str(port),
        "--rate-per-second",
        "0",
        "--max-recipients",
        "1024",
        "--log-file",
        str(workdir / "relay.log"),
    ]
    env = {**os.environ, "SUSURRO_PURE_PYTHON": "1" if row.pure else "0"}
    stderr = workdir / "stderr"
    gens: Generators | None = None
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            argv, cwd=row.tree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    ours, theirs = multiprocessing.Pipe()
    try:
        _wait_listening(proc, port, stderr)
        names = [f"m{i:04d}" for i in range(members)]
        if rate > 0:
            gens = Generators(1)
            command = ("connect", "susurro", servers.HOST, port, names, names, 10, JOIN_TIMEOUT)
            ready, problems, _ = gens.ask([command], JOIN_TIMEOUT + 30)[0][1:]
            if ready != members:
                raise SystemExit(f"{row.name}: {ready} of {members} joined ({problems})")
            gens.ask([("prepare",)], 60)
            t0 = time.monotonic_ns() + 500_000_000
            delivered = int(gens.ask([("step", t0, seconds, rate, 30.0)], seconds + 90)[0]["delivered"])
            gens.ask([("close",)], 30)
        else:
            delivered = _lockstep(ours, port, names, int(seconds))
        proc.send_signal(signal.SIGTERM)
        proc.wait(STOP_TIMEOUT)
        found = _SUMMARY.search(out.read_bytes())
        if found is None:
            raise SystemExit(f"{row.name}: no cachegrind summary in {out}")
        return int(found.group(1)), delivered
    finally:
        ours.close()
        theirs.close()
        if gens is not None:
            gens.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)


def _lockstep(pipe: Connection, port: int, names: list[str], messages: int) -> int:
    """Join ``names`` and send ``messages`` one at a time, each once all copies of the one
    before it arrived; returns the deliveries counted.

    Each send then reaches the relay alone, however slowly valgrind and the machine's other
    work let it run: the instructions it costs do not depend on the timing, as they do
    when a relay that falls behind a fixed rate reads runs of sends at once.
    """
    worker = loadgen.Worker(pipe)
    try:
        answer = worker.connect("susurro", servers.HOST, port, names, names, 10, JOIN_TIMEOUT)
        if answer[1] != len(names):
            raise SystemExit(f"{answer[1]} of {len(names)} joined ({answer[2]})")
        worker.prepare()
        worker.t0, worker.t1 = 0, 1 << 62
        worker.latencies = array("q")
        copies = len(names) - 1
        for k in range(messages):
            client = worker.clients[k % len(worker.clients)]
            stamp = b"x%020dz" % time.monotonic_ns()
            worker._write(client, b"".join(head + stamp + after for head, after in client.parts))
            deadline = time.monotonic() + LOCKSTEP_WAIT
            while len(worker.latencies) < (k + 1) * copies:
                if time.monotonic() > deadline:
                    raise SystemExit(f"message {k}: {len(worker.latencies) - k * copies} of {copies} copies arrived")
                worker._poll(0.05)
        return len(worker.latencies)
    finally:
        worker.close_all()


def core_instructions(row: Row, members: int, messages: int, run: int) -> int:
    """Instructions of ``relay_core_cost`` (no sockets: the core, its outboxes and the log thread) routing
    ``messages`` at N = ``members``, ``run`` sends per call, with this row's tree and build."""
    workdir, out, head = _under_cachegrind(sys.executable)
    argv = [
        *head,
        "-m",
        "benchmarks.relay_core_cost",
        "--clients",
        str(members),
        "--deliveries",
        str(messages * (members - 1)),
        "--run",
        str(run),
        "--tree",
        str(row.tree),
    ]
    env = {**os.environ, "SUSURRO_PURE_PYTHON": "1" if row.pure else "0"}
    try:
        subprocess.run(argv, cwd=servers.REPO_ROOT, env=env, capture_output=True, timeout=1800, check=True)
        found = _SUMMARY.search(out.read_bytes())
        if found is None:
            raise SystemExit(f"{row.name}: no cachegrind summary in {out}")
        return int(found.group(1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def per_message(
    row: Row, members: int, rate: float, lengths: tuple[float, float], core_run: int = 0
) -> tuple[float, str]:
    """Instructions per message (the long run less the short, over their difference in messages)."""
    if core_run:
        short_ir, long_ir = (core_instructions(row, members, int(m), core_run) for m in lengths)
        return (long_ir - short_ir) / (lengths[1] - lengths[0]), ""
    (short_ir, short_d), (long_ir, long_d) = (instructions(row, members, s, rate) for s in lengths)
    messages = (long_d - short_d) / (members - 1)
    expected = (lengths[1] - lengths[0]) * (rate if rate > 0 else 1)
    note = "" if abs(messages - expected) <= 1 else f" (messages {messages:.0f}, expected {expected:.0f})"
    return (long_ir - short_ir) / messages, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_instructions", description=__doc__)
    parser.add_argument("--clients", default="10,100", help="room sizes (default 10,100)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="messages a second from a loadgen worker, for --lengths seconds (default 0: one at a time, "
        "each after the copies of the one before, for --lengths messages)",
    )
    parser.add_argument(
        "--lengths",
        default=",".join(map(str, DEFAULT_MESSAGES)),
        help="the short and the long run: messages (seconds with --rate; default 100,500)",
    )
    parser.add_argument(
        "--core",
        type=int,
        default=0,
        metavar="RUN",
        help="instead of the relay process: relay_core_cost (no sockets) with RUN sends per call, "
        "--lengths messages (with a --baseline, the baseline's tree under this Python: --tree)",
    )
    parser.add_argument("--baseline", help="a checkout with its own .venv to measure in the same run")
    parser.add_argument("--baseline-pure", action="store_true", help="also the baseline with SUSURRO_PURE_PYTHON=1")
    parser.add_argument("--no-pure", action="store_true", help="skip this tree's pure build")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    short, long = (float(s) for s in args.lengths.split(","))
    rows = [Row("this", sys.executable, servers.REPO_ROOT, False)]
    if not args.no_pure:
        rows.append(Row("this-pure", sys.executable, servers.REPO_ROOT, True))
    if args.baseline:
        base = Path(args.baseline).resolve()
        # Its own venv if it has one; else this Python, run from DIR (which then imports DIR's susurro).
        python = str(base / ".venv" / "bin" / "python") if (base / ".venv").is_dir() else sys.executable
        rows.append(Row("baseline", python, base, False))
        if args.baseline_pure:
            rows.append(Row("baseline-pure", python, base, True))
    for row in rows:
        print(f"# {row.name}: {row.tree} ({_version(row)})", flush=True)
    for members in (int(n) for n in args.clients.split(",")):
        results: dict[str, float] = {}
        for row in rows:
            cost, note = per_message(row, members, args.rate, (short, long), args.core)
            results[row.name] = cost
            ratio = "" if row is rows[0] else f"  {cost / results[rows[0].name]:.3f}x of {rows[0].name}"
            print(f"N={members:<4} {row.name:<14} {cost:>12,.0f} instructions/message{ratio}{note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
