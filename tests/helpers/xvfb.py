"""Start a private Xvfb on a display number it picks itself (``-displayfd``), for tests and screenshots."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

XVFB_START_TIMEOUT = 30.0


def xvfb_binary() -> str | None:
    return shutil.which("Xvfb")


def start_xvfb(log: Path, size: str = "1280x800x24") -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb; returns (process, ``":N"``). Raises AssertionError if it does not come up in time."""
    xvfb = xvfb_binary()
    if xvfb is None:
        raise FileNotFoundError("Xvfb not installed")
    read_fd, write_fd = os.pipe()
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp"],
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
        stop_xvfb(proc)
        raise AssertionError(f"Xvfb did not report a display within {XVFB_START_TIMEOUT} s: {log.read_text()!r}")
    return proc, f":{number}"


def stop_xvfb(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
