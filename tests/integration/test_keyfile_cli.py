"""``susurro-cli`` with passphrase-protected key files, against a real relay.

Prompts are answered on a real pseudo-terminal (the client's controlling
terminal, which ``getpass`` opens as ``/dev/tty``); scripts use
``--passphrase-file``. These runs pay the real argon2id cost (MODERATE).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import stat
import subprocess
import termios
import time
from pathlib import Path

import pytest

from susurro.client.passphrase import PASSPHRASE_TRIES
from susurro.crypto import is_protected, load_identity
from tests.helpers.processes import WAIT, console_script

CLI = console_script("susurro-cli")


def passphrase_file(tmp_path: Path, text: str, name: str = "pass.txt") -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def run_cli(args: list[str], home: Path, stdin: str = "/quit\n") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUSURRO_HOME": str(home)}
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, timeout=WAIT * 2, env=env, check=False
    )


def events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _take_terminal() -> None:  # runs in the child between fork and exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # A user's terminal delivers ctrl-c as SIGINT. A suite started in the background without job
    # control inherits SIGINT ignored, and so would the CLI (Python keeps an ignored SIGINT ignored):
    # the ctrl-c test then waited for an exit that never came. Give the child the terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TerminalCli:
    """``susurro-cli`` whose stdin and controlling terminal are a pty we type on."""

    def __init__(self, args: list[str], home: Path) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "SUSURRO_HOME": str(home)}
        self.proc = subprocess.Popen(  # preexec_fn: the child must own the terminal
            [*CLI, *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.screen = ""
        self.out = b""

    def expect(self, text: str, timeout: float = WAIT * 2) -> None:
        """Wait until ``text`` has appeared on the terminal."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} on the terminal within {timeout} s; saw {self.screen!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {text!r}; saw {self.screen!r}")
                self.screen += chunk.decode("utf-8", "replace")

    def first_event(self, timeout: float = WAIT * 2) -> dict[str, object]:
        """The first JSON line on stdout (getpass drops typed-ahead input, so wait for it)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event within {timeout} s; terminal: {self.screen!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError(f"stdout closed; terminal: {self.screen!r}")
                self.out += chunk
        return json.loads(self.out.split(b"\n", 1)[0])

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode("utf-8"))

    def finish(self) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=WAIT * 2)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
            os.close(self.master)
        out = self.out + out
        return self.proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def test_passphrase_file_creates_a_protected_key_and_opens_it_again(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    secret = passphrase_file(tmp_path, "tinned peaches at dawn")
    key_file = tmp_path / "home" / "identities" / "fern.key"
    base = ["--name", "fern", "--json", "--server", f"{host}:{port}"]

    first = run_cli([*base, "--passphrase-file", str(secret)], tmp_path / "home")
    assert first.returncode == 0, first.stderr
    assert f"created a new identity key for fern in {key_file}" in first.stderr
    fingerprint = events(first.stdout)[0]["fingerprint"]
    assert is_protected(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text("utf-8"))["memlimit"] == 256 * 1024 * 1024  # the real default

    again = run_cli([*base, "--passphrase-file", str(secret)], tmp_path / "home")
    assert again.returncode == 0, again.stderr
    assert events(again.stdout)[0] == {
        "event": "connected",
        "name": "fern",
        "fingerprint": fingerprint,
        "relay": f"{host}:{port}",
    }
    assert "created" not in again.stderr


def test_wrong_or_missing_passphrase_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    right = passphrase_file(tmp_path, "right one")
    wrong = passphrase_file(tmp_path, "wrong one", "wrong.txt")
    key_file = home / "identities" / "gus.key"
    # An unreachable relay: the key file is opened (or refused) before connecting.
    base = ["--name", "gus", "--server", "127.0.0.1:1"]
    created = run_cli([*base, "--passphrase-file", str(right)], home)
    assert "created a new identity key" in created.stdout
    before = key_file.read_bytes()

    refused = run_cli([*base, "--passphrase-file", str(wrong)], home)
    assert refused.returncode == 2
    assert refused.stderr == f"susurro-cli: wrong passphrase for {key_file} (or the file was altered)\n"

    missing = run_cli(base, home)
    assert missing.returncode == 2
    assert "is protected by a passphrase" in missing.stderr and "--passphrase-file" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert key_file.read_bytes() == before


def test_readable_key_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = passphrase_file(tmp_path, "p")
    base = ["--name", "hal", "--server", "127.0.0.1:1", "--passphrase-file", str(secret)]
    run_cli(base, home)
    key_file = home / "identities" / "hal.key"
    key_file.chmod(0o644)
    refused = run_cli(base, home)
    assert refused.returncode == 2
    assert f"run 'chmod 600 {key_file}'" in refused.stderr


def test_loose_passphrase_file_is_refused(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path, "p")
    secret.chmod(0o644)
    refused = run_cli(["--name", "ivy", "--server", "127.0.0.1:1", "--passphrase-file", str(secret)], tmp_path)
    assert refused.returncode == 2
    assert "passphrase file" in refused.stderr and "chmod 600" in refused.stderr
    assert not (tmp_path / "identities" / "ivy.key").exists()


def test_prompts_on_the_terminal_create_open_and_change_the_passphrase(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    home = tmp_path / "home"
    key_file = home / "identities" / "jo.key"
    base = ["--name", "jo", "--json", "--server", f"{host}:{port}"]

    # Two different answers: nothing is created.
    term = TerminalCli([*base, "--passphrase"], home)
    term.expect("New passphrase: ")
    term.type("first try")
    term.expect("Repeat the passphrase: ")
    term.type("first tyr")
    code, _, err = term.finish()
    assert code == 2 and "the two passphrases differ" in err
    assert not key_file.exists()

    # Matching answers: created protected, and the passphrase never echoes.
    term = TerminalCli([*base, "--passphrase"], home)
    term.expect("New passphrase: ")
    term.type("sea shanty")
    term.expect("Repeat the passphrase: ")
    term.type("sea shanty")
    assert term.first_event()["event"] == "connected"
    term.type("/quit")
    code, _, err = term.finish()
    assert code == 0, err
    assert "sea shanty" not in term.screen
    assert is_protected(key_file)

    # A protected file is asked for on a terminal even without --passphrase.
    term = TerminalCli(base, home)
    term.expect(f"Passphrase for {key_file}: ")
    term.type("sea shanty")
    assert term.first_event()["event"] == "connected"
    term.type("/quit")
    code, _, err = term.finish()
    assert code == 0, err

    # Change it, then remove it.
    term = TerminalCli([*base, "--change-passphrase"], home)
    term.expect(f"Current passphrase for {key_file}: ")
    term.type("sea shanty")
    term.expect("New passphrase (empty for none): ")
    term.type("land ho")
    term.expect("Repeat the passphrase: ")
    term.type("land ho")
    code, _, err = term.finish()
    assert code == 0 and "is now protected by a passphrase" in err
    public = load_identity(key_file, "land ho").public

    term = TerminalCli([*base, "--change-passphrase"], home)
    term.expect("Current passphrase")
    term.type("land ho")
    term.expect("New passphrase (empty for none): ")
    term.type("")
    code, _, err = term.finish()
    assert code == 0 and "is now not protected" in err
    assert not is_protected(key_file)
    assert load_identity(key_file).public == public


@pytest.mark.parametrize("answer", ["wrong", ""])
def test_wrong_answer_on_the_terminal_is_one_clear_error(tmp_path: Path, answer: str) -> None:
    home = tmp_path / "home"
    secret = passphrase_file(tmp_path, "the right one")
    base = ["--name", "kim", "--server", "127.0.0.1:1"]
    run_cli([*base, "--passphrase-file", str(secret)], home)
    key_file = home / "identities" / "kim.key"
    term = TerminalCli(base, home)
    for _ in range(PASSPHRASE_TRIES):  # three tries, then one clear error
        term.expect("Passphrase for")
        term.screen = ""  # the next try's prompt is new output
        term.type(answer)
    code, out, err = term.finish()
    assert code == 2
    assert err == f"susurro-cli: wrong passphrase for {key_file} (or the file was altered)\n"
    assert out.count("* unlocking key…") == PASSPHRASE_TRIES and "try again (1 try left)" in out


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_cancelling_the_prompt_is_a_clean_exit(tmp_path: Path, key: str) -> None:
    home = tmp_path / "home"
    term = TerminalCli(["--name", "lee", "--server", "127.0.0.1:1", "--passphrase"], home)
    term.expect("New passphrase: ")
    os.write(term.master, key.encode())
    code, _, err = term.finish()
    assert code == 2
    assert err == "susurro-cli: no passphrase given (cancelled)\n"
    assert not (home / "identities" / "lee.key").exists()


def test_change_passphrase_needs_a_terminal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = passphrase_file(tmp_path, "p")
    base = ["--name", "max", "--server", "127.0.0.1:1", "--passphrase-file", str(secret)]
    run_cli(base, home)
    before = (home / "identities" / "max.key").read_bytes()
    result = run_cli([*base, "--change-passphrase"], home, stdin="new\nnew\n")
    assert result.returncode == 2
    assert "asks for the new passphrase on a terminal" in result.stderr
    assert (home / "identities" / "max.key").read_bytes() == before
