"""Operating-system limits: the open-file limit at start, and the send timeout."""

from __future__ import annotations

import logging
import resource
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from susurro.protocol import Ack
from susurro.relay import RelayServer
from susurro.relay.fdlimit import FD_HEADROOM
from tests.helpers.hostile_client import assert_pair_can_chat, connect, joined_client
from tests.helpers.system import WAIT, log_lines, wait_until

Factory = Callable[..., RelayServer]

RELAY = [sys.executable, "-m", "susurro.relay", "--port", "0", "--log-level", "WARNING"]


def limit_nofile(soft: int, hard: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def test_the_relay_refuses_to_start_when_the_hard_fd_limit_is_too_low() -> None:
    done = subprocess.run(
        [*RELAY, "--max-clients", "1000"],
        preexec_fn=limit_nofile(256, 256),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 1
    assert f"{1000 + FD_HEADROOM} descriptors are needed" in done.stderr
    assert "ulimit -n" in done.stderr and "Traceback" not in done.stderr


def test_the_relay_raises_its_soft_fd_limit_to_what_max_clients_needs(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*RELAY, "--max-clients", "500"],
        preexec_fn=limit_nofile(128, 4096),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("listening on ")
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
            assert line.split()[3:5] == [str(500 + FD_HEADROOM), "4096"], line
        finally:
            proc.terminate()
            proc.wait(WAIT)


def test_a_member_whose_socket_stays_full_is_cut_at_the_send_timeout(
    relay_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """With a huge outbox the slow-consumer rule never fires; the send timeout does."""
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(outbox_bytes=256 * 1024 * 1024, send_timeout=1.0, rate_per_second=0)
    sloth = connect(server, rcvbuf=4096)
    try:
        sloth.join("sloth")
        with joined_client(server, "sender") as sender:
            ct = secrets.token_bytes(64 * 1024)
            for i in range(400):  # at most 25 MiB: far more than loopback buffers hold
                sender.send_message(f"m{i}", {"sloth": ct})
                # The cut comes on the relay's clock, between any two sends: the ``dropped`` for
                # sloth's queued copies may come before this ack (under load it did); the next
                # ack then names sloth missing.
                ack = sender.expect_frame(Ack, skip=("joined", "left", "dropped"))
                assert isinstance(ack, Ack)
                if ack.missing:
                    break
            wait_until(lambda: bool(log_lines(caplog.records, "leave name=sloth ")), "sloth dropped", timeout=WAIT)
        leave = log_lines(caplog.records, "leave name=sloth ")[0]
        assert leave.split()[3:5] == ["reason=write", "failed"], leave  # the send timed out, not slow_consumer
        assert_pair_can_chat(server)
    finally:
        sloth.close()
