"""Real ``susurro-relay`` and ``susurro-cli --json`` subprocesses, driven with bounded waits."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WAIT = 15.0  # seconds: the bound on every wait for an event
#: Every JSON object any ``susurro-cli --json`` of these tests printed, in order;
#: tests/conftest.py checks each test's against docs/cli-json.md.
PRINTED: list[dict[str, Any]] = []


#: Runs ``susurro-cli`` with its clock shifted (followed by the seconds, then the client's arguments).
LATER_CLOCK = [sys.executable, "-m", "tests.helpers.later_clock"]
ROOT = Path(__file__).resolve().parents[2]

SCRIPT_MODULES = {"susurro-relay": "susurro.relay", "susurro-cli": "susurro.client", "susurro": "susurro.client.gui"}


def console_script(name: str, module: str | None = None) -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    sibling = Path(sys.executable).with_name(name)
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", module or SCRIPT_MODULES[name]]


class RelayProcess:
    def __init__(self, tmp: Path, *extra: str) -> None:
        self.log_file = tmp / "relay.log"
        self.stderr_file = tmp / "relay.stderr"
        self._stderr = self.stderr_file.open("wb")
        self.proc = subprocess.Popen(
            [*console_script("susurro-relay"), "--port", "0", "--log-file", str(self.log_file), *extra],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        self.stdout_lines: list[str] = []
        line = _readline_with_timeout(self.proc.stdout, WAIT)
        self.stdout_lines.append(line)
        if not line.startswith("listening on "):
            self.stop()
            raise AssertionError(f"relay did not start: {line!r}")
        self.address = line.removeprefix("listening on ").strip()

    def stop(self) -> int:
        """SIGTERM, wait, collect output; returns the exit code. Safe to call twice."""
        if self.proc.stdout is None or self.proc.stdout.closed:
            return self.proc.wait(WAIT)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(WAIT)
        assert self.proc.stdout is not None
        self.stdout_lines.extend(self.proc.stdout.read().decode("utf-8", "replace").splitlines())
        self.proc.stdout.close()
        self._stderr.close()
        return code

    def all_output(self) -> str:
        """Everything the relay wrote: log file, stdout and stderr."""
        parts = ["\n".join(self.stdout_lines), self.stderr_file.read_text("utf-8", "replace")]
        if self.log_file.exists():
            parts.append(self.log_file.read_text("utf-8", "replace"))
        return "\n".join(parts)


def _readline_with_timeout(stream: Any, timeout: float) -> str:
    result: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: result.put(stream.readline()), daemon=True).start()
    try:
        return result.get(timeout=timeout).decode("utf-8", "replace")
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


class CliProcess:
    """``susurro-cli --json``: lines in on stdin, parsed JSON events out."""

    def __init__(
        self,
        name: str,
        home: Path,
        server: str | None,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        *,
        later: float | None = None,
    ) -> None:
        """``later``: seconds the client's clock runs ahead of this machine's (``tests/helpers/later_clock.py``)."""
        self.name = name
        launcher = console_script("susurro-cli") if later is None else [*LATER_CLOCK, str(later)]
        args = [*launcher, "--name", name, "--json", *extra]
        if server is not None:
            args += ["--server", server]
        environment = {**os.environ, "SUSURRO_HOME": str(home), **(env or {})}
        if later is not None:  # the launcher is a test module: the checkout's root must be importable
            environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
        self.stderr_file = home / f"{name}.stderr"
        home.mkdir(parents=True, exist_ok=True)
        self._stderr = self.stderr_file.open("wb")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=environment
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            event = json.loads(raw)  # a non-JSON line on stdout fails the test loudly
            PRINTED.append(dict(event))  # as printed, before expect() marks it taken
            self._queue.put(event)
        self._queue.put(None)

    def expect(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT) -> dict[str, Any]:
        """Wait for an event matching ``predicate``; earlier events stay in ``events``."""
        for event in self.events:
            if predicate(event) and not event.get("_taken"):
                event["_taken"] = True
                return event
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: no {what} within {timeout} s; saw {self.events}; stderr: {self.stderr()}"
                )
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                self._queue.put(None)
                raise AssertionError(f"{self.name}: exited before {what}; saw {self.events}; stderr: {self.stderr()}")
            self.events.append(event)
            if predicate(event):
                event["_taken"] = True
                return event

    def printed(self) -> list[dict[str, Any]]:
        """Every event printed so far (whether or not ``expect`` took it), without waiting."""
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return self.events
            if event is None:
                self._queue.put(None)
                return self.events
            self.events.append(event)

    def expect_event(self, event_type: str, /, **fields: Any) -> dict[str, Any]:
        def matches(event: dict[str, Any]) -> bool:
            return event.get("event") == event_type and all(event.get(k) == v for k, v in fields.items())

        return self.expect(matches, f"{event_type} {fields}")

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_file.read_text("utf-8", "replace")

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()


def alice_then_bob(
    homes: tuple[Path, Path], relay: RelayProcess, clients: list[CliProcess]
) -> tuple[CliProcess, CliProcess]:
    """``alice`` and then ``bob`` connected to ``relay`` (each with its home), alice having seen bob join;
    both are added to ``clients`` (the fixture that stops them)."""
    alice = CliProcess("alice", homes[0], relay.address)
    clients.append(alice)
    alice.expect_event("connected")
    bob = CliProcess("bob", homes[1], relay.address)
    clients.append(bob)
    bob.expect_event("connected")
    alice.expect_event("joined", name="bob")
    return alice, bob
