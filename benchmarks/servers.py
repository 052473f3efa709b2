"""Starting and stopping the servers under test, each as its own process.

Every server gets its own fixed loopback port below 32768 (so a leftover
client socket in the ephemeral range can never block the bind) and a private
temporary directory for its config and logs. A peer that is not installed is
skipped with a line saying how to install it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .procstat import cpu_seconds, rss_bytes

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
#: The checkout these benchmarks belong to: servers written in Python run from here.
REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerUnavailable(Exception):
    """The server is not installed or would not start; ``str()`` says how to fix it."""


@dataclass
class ServerProcess:
    name: str
    dialect: str  # "susurro", "frame" or "irc"
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int | None:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def port_for(self, worker: int) -> int:
        """The port load-generator ``worker`` connects to (one server: the same for all)."""
        return self.port

    def helper_cpu_seconds(self) -> float | None:
        """CPU of processes the server relies on (a cluster's Redis); None: it has none."""
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, workdir: Path, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = (workdir / "stderr").read_text(errors="replace")[-600:]
            raise ServerUnavailable(f"{name} exited at start (code {proc.returncode}): {err.strip()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
            return
        time.sleep(0.1)
    proc.kill()
    proc.wait(10)
    raise ServerUnavailable(f"{name} did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


def _spawn(
    name: str,
    dialect: str,
    port: int,
    argv: list[str],
    workdir: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    stderr = (workdir / "stderr").open("wb")
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=cwd or workdir,
        start_new_session=True,  # Ctrl-C in the terminal reaches the benchmark, which stops us
    )
    stderr.close()
    try:
        _wait_listening(proc, port, workdir, name)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return ServerProcess(name=name, dialect=dialect, port=port, proc=proc, workdir=workdir)


def start_susurro(port: int, extra: list[str] | None = None, *, pure: bool = False) -> ServerProcess:
    """The real relay with its defaults (INFO log lines to a file), except the limits the load must pass.

    ``pure``: with ``SUSURRO_PURE_PYTHON=1``, its hot path as pure Python even where it is compiled
    (the "susurro-pure" row: what the compiled build gains, measured in the same run)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-susurro-"))
    argv = [
        sys.executable,
        "-m",
        "susurro.relay",
        "--host",
        HOST,
        "--port",
        str(port),
        # Room for the 10,000 idle members and the 2,000-member sweep step.
        "--max-clients",
        "12000",
        # Flood control off: the default (10 frames/s per member) would cap a
        # 10-member room at 100 messages/s. ngircd runs with penalties off too.
        "--rate-per-second",
        "0",
        # A 500-member room sends to 499 at once; the default allows 256.
        "--max-recipients",
        "1024",
        *(extra or []),
    ]
    name, env = ("susurro-pure", {**os.environ, "SUSURRO_PURE_PYTHON": "1"}) if pure else ("susurro", None)
    return _spawn(name, "susurro", port, argv, workdir, cwd=REPO_ROOT, env=env)


def start_baseline(kind: str, port: int) -> ServerProcess:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    argv = [sys.executable, "-m", f"benchmarks.baseline_{kind}", "--host", HOST, "--port", str(port)]
    return _spawn(kind, "frame", port, argv, workdir, cwd=REPO_ROOT)


NGIRCD_CONF = """\
[Global]
Name = bench.invalid
Info = susurro benchmark peer
Listen = {host}
Ports = {port}
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
"""


def _find_ngircd() -> str | None:
    return shutil.which("ngircd") or next(
        (p for p in ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd") if os.access(p, os.X_OK)), None
    )


def start_ngircd(port: int) -> ServerProcess:
    binary = _find_ngircd()
    if binary is None:
        raise ServerUnavailable("ngircd is not installed (Debian/Ubuntu: sudo apt install ngircd)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ngircd-"))
    conf = workdir / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(host=HOST, port=port))
    os.chmod(workdir, 0o755)
    os.chmod(conf, 0o644)
    # -n: stay in the foreground; -f: our config, not /etc/ngircd.
    return _spawn("ngircd", "irc", port, [binary, "-n", "-f", str(conf)], workdir)


def _find_miniircd() -> str | None:
    sibling = Path(sys.executable).with_name("miniircd")
    if sibling.exists():
        return str(sibling)
    return shutil.which("miniircd")


def start_miniircd(port: int) -> ServerProcess:
    binary = _find_miniircd()
    if binary is None:
        raise ServerUnavailable("miniircd is not installed (pip install miniircd, or pip install -e '.[bench]')")
    workdir = Path(tempfile.mkdtemp(prefix="bench-miniircd-"))
    argv = [binary, "--listen", HOST, "--ports", str(port)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv += ["--setuid", "nobody"]  # miniircd refuses to run as root
    return _spawn("miniircd", "irc", port, argv, workdir)


def start(name: str, port: int, susurro_args: list[str] | None = None) -> ServerProcess:
    if name == "susurro":
        return start_susurro(port, susurro_args)
    if name == "susurro-pure":
        return start_susurro(port, susurro_args, pure=True)
    if name in ("threaded", "asyncio"):
        return start_baseline(name, port)
    if name == "ngircd":
        return start_ngircd(port)
    if name == "miniircd":
        return start_miniircd(port)
    raise ValueError(f"unknown server {name!r}")


#: The names ``start`` knows, in the order they are benchmarked.
SERVERS = ("susurro", "susurro-pure", "threaded", "asyncio", "ngircd", "miniircd")
