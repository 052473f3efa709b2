"""A real terminal for tests: ``susurro-cli`` in a private tmux server, typed into and read off the screen.

tmux gives what a person sees (``capture-pane``: the screen after every
escape sequence was applied), so a test can say "the incoming line is above
the prompt, and the prompt still holds what I typed". Each ``Terminal`` has
its own tmux server socket, so tests never share one; every wait is bounded.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.processes import WAIT, CliProcess, console_script

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux is needed to drive a real terminal")


class Terminal:
    def __init__(self, tmp: Path, args: list[str], env: dict[str, str], *, width: int = 100, height: int = 30) -> None:
        assert TMUX is not None
        self.socket = f"susurro-{uuid.uuid4().hex[:12]}"
        config = tmp / f"{self.socket}.conf"
        # The pane stays after the program ends, so its last screen can be read.
        config.write_text("set -g remain-on-exit on\nset -g history-limit 2000\n")
        # The shell writes the exit status to a file: tmux may take its time to notice a pane's end.
        self.status_file = tmp / f"{self.socket}.status"
        command = " ".join(
            shlex.quote(part)
            for part in ["env", *(f"{k}={v}" for k, v in env.items()), *console_script("susurro-cli"), *args]
        )
        command += f"; echo $? > {shlex.quote(str(self.status_file))}"
        self._tmux("-f", str(config), "new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t", command)

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        result = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, timeout=WAIT, check=True
        )
        return result.stdout

    def keys(self, *keys: str) -> None:
        """tmux key names: ``Enter``, ``Left``, ``Up``, ``Tab``, ``C-c``, ``C-d``."""
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        """Literal text, as typed (no Enter)."""
        self._tmux("send-keys", "-t", "t", "-l", text)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-2000")

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """The screen once it shows ``text`` (tmux drops trailing spaces: wait for ``ana>``, not ``ana> ``)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {text!r} on the terminal; it shows:\n{screen}")
            time.sleep(0.05)

    def wait_until(self, check: Callable[[str], bool], what: str, timeout: float = WAIT) -> str:
        """The screen once ``check(screen)`` holds (a redraw can be caught half done: poll, do not peek once)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}; the terminal shows:\n{screen}")
            time.sleep(0.05)

    def wait_editing(self, timeout: float = WAIT) -> None:
        """Until the program reads keys one by one (raw mode, as a line editor does).

        Keys sent before that are cooked by the terminal driver: echoed twice,
        and Ctrl-C becomes a signal instead of a key the editor handles.
        """
        tty = self._tmux("display-message", "-p", "-t", "t", "#{pane_tty}").strip()

        def raw() -> bool:
            result = subprocess.run(["stty", "-a", "-F", tty], capture_output=True, text=True, timeout=WAIT)
            return "-icanon" in result.stdout.split()

        deadline = time.monotonic() + timeout
        while not raw():
            if time.monotonic() > deadline:
                raise AssertionError(f"no line editor on the terminal within {timeout} s:\n{self.screen()}")
            time.sleep(0.05)

    def exit_status(self, timeout: float = WAIT) -> int:
        """Wait for the program to end; its exit status."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.status_file.read_text() if self.status_file.exists() else ""
            if text.endswith("\n"):
                return int(text)
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; it shows:\n{self.screen()}")
            time.sleep(0.05)

    def close(self) -> None:
        assert TMUX is not None
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=WAIT, check=False)


def terminal_env(home: Path) -> dict[str, str]:
    """What the program under test needs: its own home, a UTF-8 locale, a terminal type."""
    return {
        "SUSURRO_HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "HOME": os.environ.get("HOME", str(home)),
    }


def open_terminal(terminals: list[Terminal], tmp_path: Path, *args: str) -> Terminal:
    """``susurro-cli ARGS`` on a new tmux terminal, with ana's home."""
    term = Terminal(tmp_path, list(args), terminal_env(tmp_path / "ana-home"))
    terminals.append(term)
    return term


def at_prompt(term: Terminal, prompt: str = "ana>") -> None:
    term.wait_for(prompt)
    term.wait_editing()


def watcher(tmp_path: Path, server: str, cli_clients: list[CliProcess]) -> CliProcess:
    """beto, a ``susurro-cli --json`` on the relay, who checks on his end what ana sent."""
    beto = CliProcess("beto", tmp_path / "beto", server)
    cli_clients.append(beto)
    beto.expect_event("connected", name="beto")
    return beto


@dataclass(frozen=True, slots=True)
class Chat:
    """ana on a real terminal and beto (``--json``) on one relay (the ``chat`` fixture)."""

    server: str
    term: Terminal
    beto: CliProcess
