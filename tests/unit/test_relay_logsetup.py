"""The relay's logging (relay/logsetup.py): a queue between the routing threads
and the handlers, a file that follows rotation, and a full disk said once."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.relay.logsetup import LOGGER_NAME, ROTATION_CHECK_INTERVAL, LogSetup, info_line

WAIT = 15.0
log = logging.getLogger(LOGGER_NAME)


@pytest.fixture
def started() -> Iterator[list[LogSetup]]:
    """LogSetups a test starts; each is stopped at teardown, so the logger is left clean."""
    setups: list[LogSetup] = []
    try:
        yield setups
    finally:
        for setup in setups:
            setup.stop()


class Clock:
    """A monotonic clock the test moves by hand: the file's looks for a rotation are paced by it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def start(
    started: list[LogSetup], log_file: Path | str | None, stderr: io.StringIO, clock: Clock | None = None
) -> LogSetup:
    setup = LogSetup("INFO", str(log_file) if log_file is not None else None, stderr, clock or Clock())
    started.append(setup)
    return setup


def test_a_routing_thread_never_waits_for_the_file_handler(started: list[LogSetup], tmp_path: Path) -> None:
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    assert setup.file_handler is not None
    assert setup.file_handler not in log.handlers  # only the queue is on the logger
    setup.file_handler.acquire()  # as if the disk stalled in the middle of a write
    try:
        reader = threading.Thread(target=lambda: [log.info("deliver n=%d", n) for n in range(100)])
        reader.start()
        reader.join(WAIT)
        assert not reader.is_alive(), "a logging call waited for the file handler's lock"
    finally:
        setup.file_handler.release()
    setup.stop()
    lines = (tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == [f"deliver n={n}" for n in range(100)]


def test_lines_keep_the_relays_format_on_stderr_and_in_the_file(started: list[LogSetup], tmp_path: Path) -> None:
    stderr = io.StringIO()
    setup = start(started, tmp_path / "relay.log", stderr)
    log.info("join name=%s fp=%s addr=%s members=%d", "alice", "48076095", "127.0.0.1:5", 1)
    setup.stop()
    for text in (stderr.getvalue(), (tmp_path / "relay.log").read_text(encoding="utf-8")):
        (line,) = text.splitlines()
        date, clock, rest = line.split(" ", 2)
        assert len(date) == 10 and len(clock) == 12  # 2026-11-24 10:27:18,569
        assert rest == "INFO join name=alice fp=48076095 addr=127.0.0.1:5 members=1"


@pytest.mark.parametrize("emit", [log.info, info_line], ids=["log.info", "info_line"])
def test_a_full_disk_is_said_once_and_never_as_a_traceback(
    started: list[LogSetup], capsys: pytest.CaptureFixture[str], emit: Callable[..., None]
) -> None:
    stderr = io.StringIO()
    setup = start(started, "/dev/full", stderr)  # every write fails with ENOSPC
    for n in range(30):
        emit("deliver n=%d", n)
    setup.stop()
    said = stderr.getvalue().splitlines()
    complaints = [line for line in said if line.startswith("susurro-relay: cannot write the log file /dev/full")]
    assert len(complaints) == 1, said
    assert "No space left on device" in complaints[0]
    assert sum(" INFO deliver n=" in line for line in said) == 30  # stderr still got every line
    assert "Logging error" not in capsys.readouterr().err + stderr.getvalue()


def test_the_file_follows_a_rotation_by_rename(started: list[LogSetup], tmp_path: Path) -> None:
    path = tmp_path / "relay.log"
    clock = Clock()
    setup = start(started, path, io.StringIO(), clock)
    log.info("before")
    setup.drain()
    path.rename(tmp_path / "relay.log.1")  # logrotate without copytruncate
    clock.now += ROTATION_CHECK_INTERVAL
    log.info("after")
    setup.stop()
    assert (tmp_path / "relay.log.1").read_text(encoding="utf-8").endswith("INFO before\n")
    assert path.read_text(encoding="utf-8").endswith("INFO after\n")


def test_the_file_looks_for_a_rotation_once_a_second_not_every_burst(started: list[LogSetup], tmp_path: Path) -> None:
    # A stat of the path per burst (a line per message below saturation) cost about 5,500 of a
    # message's 215,000 instructions: within ROTATION_CHECK_INTERVAL of the last look, the lines go on
    # to the file renamed away (kept by logrotate's delaycompress), then to a new one.
    path = tmp_path / "relay.log"
    clock = Clock()
    setup = start(started, path, io.StringIO(), clock)
    log.info("first")
    setup.drain()
    path.rename(tmp_path / "relay.log.1")
    clock.now += ROTATION_CHECK_INTERVAL / 2
    log.info("within the second")
    setup.drain()
    assert not path.exists()
    clock.now += ROTATION_CHECK_INTERVAL / 2
    log.info("after the second")
    setup.stop()
    assert [
        line.split(" INFO ")[1] for line in (tmp_path / "relay.log.1").read_text(encoding="utf-8").splitlines()
    ] == [
        "first",
        "within the second",
    ]
    assert path.read_text(encoding="utf-8").endswith("INFO after the second\n")


def test_reopen_opens_the_file_at_the_path_again(started: list[LogSetup], tmp_path: Path) -> None:
    path = tmp_path / "relay.log"
    setup = start(started, path, io.StringIO())
    log.info("first")
    setup.drain()
    assert setup.file_handler is not None
    first_stream = setup.file_handler.stream
    setup.reopen()
    log.info("second")
    setup.drain()
    assert setup.file_handler.stream is not first_stream
    setup.stop()
    assert path.read_text(encoding="utf-8").splitlines()[1].endswith("INFO logs reopened")


def test_stop_writes_out_every_queued_line(started: list[LogSetup], tmp_path: Path) -> None:
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    for n in range(2000):
        log.info("line %d", n)
    setup.stop()
    setup.stop()  # twice is harmless
    assert len((tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()) == 2000


#: Runs in a child with a 4 KiB file-size limit (RLIMIT_FSIZE; SIGXFSZ ignored,
#: so a write past it fails with EFBIG as a full disk fails with ENOSPC), then
#: lifts the limit: the disk has room again.
RECOVERY = textwrap.dedent(
    """
    import logging, resource, signal, sys
    from susurro.relay.logsetup import LOGGER_NAME, LogSetup, info_line
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    setup = LogSetup("INFO", sys.argv[1])
    log = logging.getLogger(LOGGER_NAME)
    emit = info_line if sys.argv[2] == "info_line" else log.info
    for n in range(200):
        emit("deliver n=%d %s", n, sys.argv[3] * 40)
    setup.drain()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    for n in range(5):
        log.info("after n=%d", n)
    setup.stop()
    """
)


@pytest.mark.parametrize(
    ("emit", "fill"),
    [("log.info", "x"), ("info_line", "x"), ("info_line", "\u00e9")],
    ids=["log.info", "info_line", "info_line-utf8"],
)
def test_logging_recovers_when_the_disk_has_room_again(tmp_path: Path, emit: str, fill: str) -> None:
    # info_line's Lines are written a run at a time (emit_lines): the lines of a run the
    # disk refused are counted one by one, from their sizes in UTF-8, as single lines are.
    path = tmp_path / "relay.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", RECOVERY, str(path), emit, fill],
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stderr.splitlines()
    assert sum(line.startswith("susurro-relay: cannot write the log file") for line in said) == 1, said[-5:]
    again = [line for line in said if line.startswith("susurro-relay: writing the log file")]
    assert len(again) == 1 and "line(s) were lost" in again[0]
    assert "Logging error" not in done.stderr
    assert sum(" INFO deliver n=" in line for line in said) == 200  # stderr had them all
    written = path.read_text(encoding="utf-8", errors="replace")
    lost = int(again[0].split("again; ", 1)[1].split(" ", 1)[0])
    assert f"WARNING log-gap lost={lost}" in written
    assert [line.split(" INFO ", 1)[1] for line in written.splitlines() if " INFO after" in line] == [
        f"after n={n}" for n in range(5)
    ]
    assert 0 < lost < 200
    # Every line is in the file or counted lost: a line the limit cut is both (ended, then counted).
    kept = sum(" INFO deliver n=" in line for line in written.splitlines())
    assert 200 - lost <= kept <= 200 - lost + 1, (kept, lost)


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_burst_of_lines_is_written_at_once_not_line_by_line(started: list[LogSetup], tmp_path: Path) -> None:
    stderr = CountingStream()
    setup = start(started, tmp_path / "relay.log", stderr)
    handler = setup.listener.handlers[0]
    handler.acquire()  # the listener stops at its first line's write while the burst queues up
    try:
        for n in range(200):
            log.info("deliver n=%d", n)
    finally:
        handler.release()
    setup.stop()
    assert sum(" INFO deliver n=" in line for line in stderr.getvalue().splitlines()) == 200
    assert stderr.writes <= 10, f"{stderr.writes} writes for 200 queued lines"
    lines = (tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == [f"deliver n={n}" for n in range(200)]


def test_a_run_of_hot_path_lines_reaches_each_handler_at_once(started: list[LogSetup], tmp_path: Path) -> None:
    stderr = CountingStream()
    setup = start(started, tmp_path / "relay.log", stderr)
    runs: list[int] = []
    for handler in setup.listener.handlers:
        emit_lines = handler.emit_lines
        handler.emit_lines = lambda lines, emit_lines=emit_lines: (runs.append(len(lines)), emit_lines(lines))[1]  # type: ignore[method-assign]
    # info_line hands Lines over only while the queue is the logger's one handler (pytest's
    # capture handlers join it in a test run): as in the relay, for this test.
    others = [handler for handler in log.handlers if handler is not setup.queue_handler]
    for handler in others:
        log.removeHandler(handler)
    stalled = setup.listener.handlers[0]
    stalled.acquire()  # the listener stops at its first write while the run queues up
    try:
        log.info("first")
        for n in range(600):
            info_line("deliver n=%d id=%s", n, "x")
    finally:
        stalled.release()
        setup.stop()
        for handler in others:
            log.addHandler(handler)
    expected = ["first"] + [f"deliver n={n} id=x" for n in range(600)]
    for text in (stderr.getvalue(), (tmp_path / "relay.log").read_text(encoding="utf-8")):
        assert [line.split(" INFO ", 1)[1] for line in text.splitlines()] == expected
    # Two handlers, each handed the 600 lines in runs of at most MAX_BATCHED_LINES (256): a
    # handful of calls, not one per line.
    assert sum(runs) == 1200 and len(runs) <= 12, runs
    assert stderr.writes <= 10, f"{stderr.writes} writes for 601 queued lines"


def test_a_run_of_lines_follows_a_rotation_and_a_reopen_by_itself(tmp_path: Path) -> None:
    # On a busy relay only deliver lines flow: emit_lines must look for a rotation and
    # take a reopen request itself, with no record before it to do so.
    from susurro.relay.logsetup import ReopeningFileHandler

    path = tmp_path / "relay.log"
    clock = Clock()
    handler = ReopeningFileHandler(str(path), io.StringIO(), clock=clock)
    try:
        handler.emit_lines(["first", "second"])
        path.rename(tmp_path / "relay.log.1")  # logrotate without copytruncate
        clock.now += ROTATION_CHECK_INTERVAL
        handler.emit_lines(["a", "b"])
        path.rename(tmp_path / "relay.log.2")
        handler.request_reopen()  # SIGHUP, with the file moved away by a postrotate step
        handler.emit_lines(["c", "d"])
    finally:
        handler.close()
    assert (tmp_path / "relay.log.1").read_text(encoding="utf-8").splitlines() == ["first", "second"]
    assert (tmp_path / "relay.log.2").read_text(encoding="utf-8").splitlines() == ["a", "b"]
    assert path.read_text(encoding="utf-8").splitlines() == ["c", "d"]


def test_a_run_of_lines_keeps_a_burst_within_its_bound(tmp_path: Path) -> None:
    from susurro.relay.logsetup import MAX_BATCHED_LINES, ReopeningFileHandler, _StderrHandler

    stream = CountingStream()
    held = _StderrHandler(stream, lambda: True)  # more always waiting: only the bound writes
    handler = ReopeningFileHandler(str(tmp_path / "relay.log"), io.StringIO(), lambda: True)
    try:
        for target in (held, handler):
            for n in range(MAX_BATCHED_LINES - 1):
                target.emit_line(f"line {n}")
            target.emit_lines(["x", "y", "z"])
        # The 255 lines held went out before the run joined them, not 258 at once; the run waits.
        assert len(handler._burst) == 3 and held._held == 3
        assert stream.writes == 1 and stream.getvalue().count("\n") == MAX_BATCHED_LINES - 1
        assert len((tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()) == MAX_BATCHED_LINES - 1
    finally:
        handler.close()
        held.close()
    assert len((tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()) == MAX_BATCHED_LINES + 2


@pytest.mark.parametrize("bad", ["\ud800", "\udc80"], ids=["high-surrogate", "low-surrogate"])
def test_a_line_that_cannot_be_encoded_in_a_run_is_lost_alone(
    started: list[LogSetup], tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    # A lone surrogate in a line's arguments (nothing from the wire makes one today): the
    # file refuses that line alone, as line by line, and the log thread goes on.
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    stalled = setup.listener.handlers[0]
    stalled.acquire()
    try:
        log.info("first")
        for n in range(10):
            name = f"bob{bad}" if n == 5 else "bob"
            setup.queue_handler.emit((time.time(), logging.INFO, "deliver to=%s n=%d", (name, n)))
    finally:
        stalled.release()
    assert setup.drain(), "the log thread stopped"
    assert setup.listener.alive
    log.info("after")
    setup.stop()
    lines = (tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == (
        ["first"] + [f"deliver to=bob n={n}" for n in range(10) if n != 5] + ["after"]
    )
    assert "Logging error" in capsys.readouterr().err  # said as a bad record is said (handleError)


@pytest.mark.parametrize("bad", ["\ud800", "\udc80"], ids=["high-surrogate", "low-surrogate"])
def test_a_run_holding_a_line_the_file_refuses_counts_only_the_lines_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    # Such a run goes line by line (not ASCII); the refused line reached no file, so it
    # is not one of the burst's lines: it neither brings MAX_BATCHED_LINES nearer nor,
    # at a full disk, stands for bytes the file holds (the lines after it were then
    # counted lost though written). Before, its UTF-8 size was counted first.
    from susurro.relay.logsetup import MAX_BATCHED_LINES, ReopeningFileHandler

    path = tmp_path / "relay.log"
    handler = ReopeningFileHandler(str(path), io.StringIO(), lambda: True)  # more always waiting
    try:
        handler.emit_lines(["a", f"b{bad}", "c"])
        assert handler._burst == [2, 2], "the refused line is counted in the burst"
        for n in range(MAX_BATCHED_LINES - 4):
            handler.emit_line(f"line {n}")
        handler.emit_line(f"x{bad}")
        handler.emit_line("y")  # one short of the bound: the burst waits for more
        assert len(handler._burst) == MAX_BATCHED_LINES - 1, "the burst was written out one line early"
    finally:
        handler.close()
    assert len(path.read_text(encoding="utf-8").splitlines()) == MAX_BATCHED_LINES - 1
    assert capsys.readouterr().err.count("Logging error") == 2  # each refused line said, alone


def test_a_line_that_cannot_be_formatted_in_a_run_leaves_the_others_in_order(
    started: list[LogSetup], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    stalled = setup.listener.handlers[0]
    stalled.acquire()
    try:
        log.info("first")
        for n in range(100):
            bad = n == 50  # a caller's bug in the middle of a run
            setup.queue_handler.emit((time.time(), logging.INFO, "deliver n=%d", ("oops",) if bad else (n,)))
    finally:
        stalled.release()
    setup.stop()
    lines = (tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == ["first"] + [
        f"deliver n={n}" for n in range(100) if n != 50
    ]
    assert capsys.readouterr().err.count("Logging error") == 2  # the bad line, to each handler's handleError


@given(
    burst=st.lists(
        st.tuples(st.floats(0, 4e9), levels := st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING])),
        max_size=20,
    )
)
def test_a_run_of_lines_is_each_line_as_line_makes_it(burst: list[tuple[float, int]]) -> None:
    from susurro.relay.logsetup import _LineFormatter

    items = [(when, level, "deliver n=%d", (n,)) for n, (when, level) in enumerate(burst)]
    assert _LineFormatter().lines(items) == [_LineFormatter().line(*item) for item in items]


@given(created=st.lists(st.floats(min_value=0, max_value=4_000_000_000), min_size=1, max_size=20))
def test_the_cached_time_stamp_is_the_stdlib_formatters(created: list[float]) -> None:
    from susurro.relay.logsetup import LINE_FORMAT, _LineFormatter

    ours, stdlib = _LineFormatter(), logging.Formatter(LINE_FORMAT)
    for when in sorted(created) + created:  # in order and out of order: a cache keyed by the second
        record = logging.LogRecord(LOGGER_NAME, logging.INFO, __file__, 0, "deliver n=%d", (1,), None)
        record.created, record.msecs = when, int((when - int(when)) * 1000) + 0.0
        assert ours.format(record) == stdlib.format(record)


@pytest.mark.parametrize("emit", [log.info, info_line], ids=["log.info", "info_line"])
def test_past_the_queue_bound_lines_are_dropped_and_said_once(
    started: list[LogSetup], monkeypatch: pytest.MonkeyPatch, emit: Callable[..., None]
) -> None:
    import time

    from susurro.relay import logsetup

    monkeypatch.setattr(logsetup, "MAX_QUEUED_RECORDS", 10)
    stderr = io.StringIO()
    setup = start(started, None, stderr)
    handler = setup.listener.handlers[0]
    handler.acquire()  # a stalled stderr: the listener stops at the first line's write
    try:
        log.info("first")
        deadline = time.monotonic() + WAIT
        while setup._records.more_waiting() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not setup._records.more_waiting(), "the listener never took the first line"
        for n in range(50):
            emit("deliver n=%d", n)
    finally:
        handler.release()
    setup.stop()
    said = stderr.getvalue().splitlines()
    assert sum(" INFO deliver n=" in line for line in said) == 10  # the bound, not all 50
    assert sum("cannot write to the log queue" in line for line in said) == 1, said


levels = st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(level=levels, args=st.lists(st.one_of(texts, st.integers()), max_size=4), when=st.floats(0, 4e9))
def test_a_line_is_the_stdlib_formatters_line(level: int, args: list[object], when: float) -> None:
    from susurro.relay.logsetup import LINE_FORMAT, _LineFormatter

    ours, stdlib = _LineFormatter(), logging.Formatter(LINE_FORMAT)
    message = " ".join(["x=%r"] * len(args)) or "plain"
    record = logging.LogRecord(LOGGER_NAME, level, __file__, 0, message, tuple(args), None)
    record.created, record.msecs = when, int((when - int(when)) * 1000) + 0.0
    assert ours.format(record) == stdlib.format(record)
    assert ours.format(record) == stdlib.format(record)  # the second handler gets the line made once


def test_a_traceback_is_written_as_the_stdlib_writes_it() -> None:
    from susurro.relay.logsetup import LINE_FORMAT, _LineFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        import sys as _sys

        info = _sys.exc_info()
    record = logging.LogRecord(LOGGER_NAME, logging.ERROR, __file__, 0, "loop failed", (), info)
    expected = logging.Formatter(LINE_FORMAT).format(record)
    record.exc_text = None
    assert _LineFormatter().format(record) == expected
    assert "ValueError: boom" in expected


@given(level=levels, args=st.lists(st.one_of(texts, st.integers()), max_size=4), when=st.floats(0, 4e9))
def test_a_line_made_without_a_record_is_the_stdlib_formatters_line(
    level: int, args: list[object], when: float
) -> None:
    from susurro.relay.logsetup import LINE_FORMAT, _LineFormatter

    message = " ".join(["x=%r"] * len(args)) or "plain"
    record = logging.LogRecord(LOGGER_NAME, level, __file__, 0, message, tuple(args), None)
    record.created, record.msecs = when, int((when - int(when)) * 1000) + 0.0
    assert _LineFormatter().line(when, level, message, tuple(args)) == logging.Formatter(LINE_FORMAT).format(record)


def test_hot_path_lines_keep_their_place_among_the_others(started: list[LogSetup], tmp_path: Path) -> None:
    stderr = io.StringIO()
    setup = start(started, tmp_path / "relay.log", stderr)
    for n in range(300):
        (info_line if n % 3 else log.info)("deliver n=%d id=%s", n, "x")
    setup.stop()
    expected = [f"deliver n={n} id=x" for n in range(300)]
    for text in (stderr.getvalue(), (tmp_path / "relay.log").read_text(encoding="utf-8")):
        assert [line.split(" INFO ", 1)[1] for line in text.splitlines()] == expected


def test_a_hot_path_line_that_cannot_be_formatted_leaves_the_log_running(
    started: list[LogSetup], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    # As info_line hands a line over on the hot path, whatever else is on the logger in a test run.
    setup.queue_handler.emit((time.time(), logging.INFO, "deliver n=%d", ("not a number",)))  # a caller's bug
    setup.queue_handler.emit((time.time(), logging.INFO, "deliver n=%d", (7,)))
    log.info("after the bad line")
    setup.stop()
    lines = (tmp_path / "relay.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == ["deliver n=7", "after the bad line"]
    assert "Logging error" in capsys.readouterr().err  # said as the stdlib says a bad record (handleError)


def test_a_hot_path_line_reaches_any_other_handler_as_a_record(
    started: list[LogSetup], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):  # no LogSetup: the logger's own handlers
        info_line("deliver from=%s", "alice")
    assert [r.getMessage() for r in caplog.records] == ["deliver from=alice"]
    setup = start(started, tmp_path / "relay.log", io.StringIO())
    seen: list[str] = []
    extra = logging.Handler()
    extra.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(extra)  # beside the queue: an embedding program's own handler
    try:
        info_line("deliver from=%s", "bob")
    finally:
        log.removeHandler(extra)
    setup.stop()
    assert seen == ["deliver from=bob"]
    assert (tmp_path / "relay.log").read_text(encoding="utf-8").endswith("INFO deliver from=bob\n")


def test_the_files_looks_are_paced_by_the_monotonic_clock_unless_told_otherwise(
    started: list[LogSetup], tmp_path: Path
) -> None:
    # Every other test here hands in its own clock; the relay's must be the monotonic one (a wall
    # clock stepped back would stop the looks for a rotation), and LogSetup must pass a given one on.
    from susurro.relay.logsetup import ReopeningFileHandler

    handler = ReopeningFileHandler(str(tmp_path / "default.log"), io.StringIO())
    try:
        assert handler._clock is time.monotonic
    finally:
        handler.close()
    clock = Clock()
    setup = start(started, tmp_path / "relay.log", io.StringIO(), clock)
    assert setup.file_handler is not None and setup.file_handler._clock is clock
