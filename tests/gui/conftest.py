"""GUI test fixtures: a real X display (Xvfb when none is set) and a real Tk root.

All GUI tests in one process share one Xvfb, started on a free display number
that Xvfb picks itself (``-displayfd``), so parallel runs never collide.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

XVFB_START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``$DISPLAY`` if set, else a private Xvfb for this test session."""
    existing = os.environ.get("DISPLAY")
    if existing:
        yield existing
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not installed")
    log: Path = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read_fd, write_fd = os.pipe()
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    os.close(write_fd)
    # Xvfb writes the number, then a newline in a second write: read up to the
    # newline before closing, or the second write fails and Xvfb exits.
    received = b""
    deadline = time.monotonic() + XVFB_START_TIMEOUT
    try:
        while not received.endswith(b"\n") and (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([read_fd], [], [], remaining)
            chunk = os.read(read_fd, 64) if ready else b""
            if not chunk:
                break
            received += chunk
    finally:
        os.close(read_fd)
    number = received.decode().strip()
    if not number.isdigit():
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"Xvfb did not report a display within {XVFB_START_TIMEOUT} s: {log.read_text()!r}")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key files, trust store and GUI settings of the code under test stay in the test's directory."""
    monkeypatch.setenv("SUSURRO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def _session_root(display: str) -> Iterator[object]:
    """One Tk interpreter for the whole session.

    Tk keeps per-display state (focus, grabs) in process-wide structures; a
    second ``Tk()`` after destroying the first can crash in ``focus -force``
    on stale entries. So all GUI tests share one hidden root, and each test
    opens and closes its own Toplevel windows in it.
    """
    import tkinter

    root = tkinter.Tk(className="SusurroTest")
    root.withdraw()
    try:
        yield root
    finally:
        root.destroy()


@pytest.fixture
def tk_root(_session_root: object) -> Iterator[object]:
    """The shared root, with every window a test left open destroyed afterwards."""
    root = _session_root
    try:
        yield root
    finally:
        for child in list(root.winfo_children()):  # type: ignore[attr-defined]
            child.destroy()
        root.update()  # type: ignore[attr-defined]
