"""The relay's logging: off the hot path, rotation-safe, and quiet about a full disk.

The I/O loops only put a record on a bounded queue (a deque, ``_Records``); one
listener thread (``_Listener``) formats it once and writes it to stderr and
the ``--log-file``. The per-send ``deliver`` line is not even a record: the
core hands it over as a tuple (``info_line``), and the listener makes the line.
So a thread routing messages never waits on a handler's lock or on the disk.
The listener writes the lines waiting at once (up to
``MAX_BATCHED_LINES`` per write and flush) and pauses ``LISTENER_PAUSE``
after each burst, so a busy relay costs it a few system calls per burst,
not three per line; a run of ``deliver`` tuples is made in one call and
handed to each handler as one run (``emit_lines``), not line by line
(docs/decisions.md, decision 65).

The file is reopened when it is renamed away (``WatchedFileHandler``: logrotate
without ``copytruncate``; looked for at the start of a burst, at most once every
``ROTATION_CHECK_INTERVAL``) and on ``SIGHUP`` (``LogSetup.reopen``), so a
``postrotate`` step can also signal the relay. A write that fails (a full
disk, a file-size limit) is said once on stderr, not as a traceback per
line; the file is reopened on the next line, and when a write works again the
relay says so and how many lines the file missed. stderr gets every line
throughout.
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

LOGGER_NAME = "susurro.relay"
LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
#: Records waiting for the listener. Past it a record is dropped (and counted)
#: rather than letting a stalled disk grow the relay's memory without end.
MAX_QUEUED_RECORDS = 65536
#: How long ``stop()`` waits for room to tell the listener to finish.
_STOP_TIMEOUT = 10.0
#: Lines a handler may hold before writing them out while more records wait.
#: The listener writes a burst of lines with one write (and one flush)
#: instead of a write, a flush and a ``stat`` per line: per-line system calls
#: were the listener's cost under load, and each one handed the GIL back and
#: forth with the I/O loop. Bounded, so a relay logging without pause still
#: writes every so many lines.
MAX_BATCHED_LINES = 256
#: Seconds between two looks for a log file renamed away (a ``stat`` of its path): at
#: the start of a burst, once this long has passed since the last look. SIGHUP reopens at once.
ROTATION_CHECK_INTERVAL = 1.0

#: How long the listener lets lines gather once it has written all it had.
#: Only the log lags by it, never a message. Each time the listener wakes it
#: waits for the GIL, and while it waits every ``recv`` and ``send`` of the I/O
#: loop (each lets go of the GIL) wakes it through a futex, to lose the race
#: again: at 5 ms, 7-8 % of the relay's CPU at N = 100 near saturation went to
#: those futex calls, at 50 ms 0.8-2.4 % (perf, session 14).
LISTENER_PAUSE = 0.05


#: A line from the routing hot path as the routing thread hands it over:
#: (created, levelno, format, args), formatted by the listener (``info_line``).
Line = tuple[float, int, str, tuple[object, ...]]


def _never_waiting() -> bool:
    return False


class _Trouble:
    """Says on stderr, once per episode, that log lines are being lost, and when they stop."""

    def __init__(self, what: str, stderr: TextIO) -> None:
        self.what = what
        self.stderr = stderr
        self.lost = 0
        self._lock = threading.Lock()

    def failed(self, reason: object, lines: int = 1) -> None:
        with self._lock:
            first = self.lost == 0
            self.lost += lines
        if first:
            self._say(f"cannot write {self.what} ({reason}); lines are lost until it works again")

    def worked(self) -> int:
        """Called after a line got through; returns how many were lost before it (0: none)."""
        if not self.lost:  # the common case, without the lock
            return 0
        with self._lock:
            lost, self.lost = self.lost, 0
        if lost:
            self._say(f"writing {self.what} again; {lost} line(s) were lost")
        return lost

    def _say(self, text: str) -> None:
        try:
            self.stderr.write(f"susurro-relay: {text}\n")
            self.stderr.flush()
        except (OSError, ValueError):  # stderr itself is gone: nothing left to tell
            pass


class _LineFormatter(logging.Formatter):
    """The relay's line format, with the date and time part made once per second.

    ``Formatter.formatTime`` runs ``localtime`` and ``strftime`` for every
    line; at thousands of ``deliver`` lines a second that was the listener's
    largest cost after the writes. The text is the same: only the
    milliseconds differ between the lines of one second.
    """

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)

    def line(self, created: float, levelno: int, fmt: str, args: tuple[object, ...]) -> str:
        """The line ``format`` makes of a record with these fields, without the record (``Line``)."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        # As LogRecord: msecs from the fraction of the second, the message as getMessage makes it.
        msecs = int((created - second) * 1000) + 0.0
        message = fmt % args if args else fmt
        return f"{self.default_msec_format % (self._stamp, msecs)} {logging.getLevelName(levelno)} {message}"

    def lines(self, burst: list[Line]) -> list[str]:
        """``[self.line(*item) for item in burst]`` with one Python call for the burst, not one per line.

        Raises what ``line`` raises for the first item that does not fit its format.
        """
        made: list[str] = []
        append = made.append
        msec_format = self.default_msec_format
        names: dict[int, str] = {}
        for created, levelno, fmt, args in burst:
            second = int(created)
            if second != self._second:
                self._stamp = time.strftime(self.default_time_format, self.converter(second))
                self._second = second
            level = names.get(levelno)
            if level is None:
                level = names[levelno] = logging.getLevelName(levelno)
            msecs = int((created - second) * 1000) + 0.0
            append(f"{msec_format % (self._stamp, msecs)} {level} {fmt % args if args else fmt}")
        return made

    def format(self, record: logging.LogRecord) -> str:
        # Made once per record, not once per handler: stderr and the file write
        # the same line, and ``Formatter.format`` (the ``%`` over the record's
        # whole ``__dict__``) was half the listener's cost per line. A record
        # with a traceback or a stack takes the stdlib's way, which adds them.
        line: str | None = getattr(record, "relay_line", None)
        if line is None:
            if record.exc_info or record.exc_text or record.stack_info:
                line = super().format(record)
            else:
                record.message = record.getMessage()
                line = f"{self.formatTime(record)} {record.levelname} {record.message}"
            record.__dict__["relay_line"] = line
        return line


class ReopeningFileHandler(logging.handlers.WatchedFileHandler):
    """``WatchedFileHandler`` that also reopens on request, survives write errors,
    and writes a burst of lines at once (``MAX_BATCHED_LINES``).

    ``more_waiting`` says whether the listener has further records queued:
    while it does, a line stays in the stream's buffer (no flush, and no
    ``stat`` for a rotation in the middle of a burst); the last line of a
    burst flushes them all. When a write fails, the file's size says how
    many of the burst's lines reached it; the rest are counted as lost.
    """

    def __init__(
        self,
        filename: str,
        stderr: TextIO,
        more_waiting: Callable[[], bool] = _never_waiting,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(filename, encoding="utf-8")
        #: Monotonic (a wall clock stepped back would stop the looks until it caught up).
        self._clock = clock
        #: When the next burst looks for a rotation again (``ROTATION_CHECK_INTERVAL``).
        self._rotation_check_at = -math.inf
        self._reopen_requested = threading.Event()
        self.trouble = _Trouble(f"the log file {self.baseFilename}", stderr)
        self.more_waiting = more_waiting
        #: The file's size when the current burst began, and the byte length of each of its lines.
        self._burst_start = 0
        self._burst: list[int] = []

    def request_reopen(self) -> None:
        """Reopen the file before the next line (safe from a signal handler: sets a flag only)."""
        self._reopen_requested.set()

    def _drop_stream(self) -> None:
        stream, self.stream = self.stream, None  # emit() opens the file again when it is None
        self._burst = []
        if stream is not None:
            try:
                stream.close()
            except OSError:  # the buffered rest of a line that could not be written
                pass

    def emit(self, record: logging.LogRecord) -> None:
        self._write(record, None)

    def emit_line(self, line: str) -> None:
        """Write a line the listener made of a ``Line`` (no ``LogRecord``), as ``emit`` writes a record's."""
        with self.lock:  # type: ignore[union-attr]  # held as Handler.handle holds it around emit
            self._write(None, line)

    def emit_lines(self, lines: list[str]) -> None:
        """Write the lines the listener made of a run of ``Line`` s at once: one lock, one
        look at the stream and one ``write`` for the run, as ``emit_line`` would write each.

        Only an ASCII run of two or more lines to an open stream, with no reopen asked
        for, goes as one; anything else line by line (``_write``), as it always went: a
        line that cannot be encoded then fails alone, and the first line after a reopen or a
        failed write opens the file and ends a cut line as before.
        """
        if not lines:
            return
        with self.lock:  # type: ignore[union-attr]
            if self._burst and len(self._burst) + len(lines) > MAX_BATCHED_LINES:
                self._flush_quietly()  # the burst stays within MAX_BATCHED_LINES, as line by line
            terminator = self.terminator
            text = terminator.join(lines) + terminator
            if self._reopen_requested.is_set() or self.stream is None or len(lines) == 1 or not text.isascii():
                for line in lines:
                    self._write(None, line)
                return
            starting = not self._burst
            # Counted before anything can fail: a failure then counts every line of the run it lost.
            extra = len(terminator)
            self._burst.extend([len(line) + extra for line in lines])
            try:
                if starting:  # a burst begins: look for a rotation (once a second), note where it starts
                    self._look_for_rotation()
                    self._burst_start = os.fstat(self.stream.fileno()).st_size
                self.stream.write(text)
                if len(self._burst) < MAX_BATCHED_LINES and self.more_waiting():
                    return
                self.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": lines[-1]}))

    def _write(self, record: logging.LogRecord | None, line: str | None) -> None:
        if self._reopen_requested.is_set():
            self._reopen_requested.clear()
            if self._burst:
                self._flush_quietly()
            self._drop_stream()
        try:
            if self.stream is None:  # first line, after a reopen request, or after a failed write
                self.stream = self._open()
                self._statstream()
                # Just opened at the path: no rename to look for until the interval has passed.
                self._rotation_check_at = self._clock() + ROTATION_CHECK_INTERVAL
                if self.trouble.lost:
                    self._end_cut_line()
            if not self._burst:  # a burst begins: look for a rotation (once a second), note where it starts
                self._look_for_rotation()
                self._burst_start = os.fstat(self.stream.fileno()).st_size
            if line is None:
                assert record is not None
                line = self.format(record)
            line += self.terminator
            # Bytes in the file: an ASCII line's length (known without encoding it) is its size; any
            # other is encoded as the stream will (strict UTF-8), so a line it refuses (a lone surrogate)
            # raises here, before it is counted as one of the burst's lines: it reaches no file, and
            # counted it brought the bound nearer and, at a full disk, stood for bytes never written.
            self._burst.append(len(line) if line.isascii() else len(line.encode(self.encoding or "utf-8")))
            self.stream.write(line)
            if len(self._burst) < MAX_BATCHED_LINES and self.more_waiting():
                return
            self.flush()
        except Exception:  # errors opening, writing or flushing: handleError tells OSError apart
            self.handleError(record if record is not None else logging.makeLogRecord({"msg": line}))

    def _look_for_rotation(self) -> None:
        """``reopenIfNeeded`` (a ``stat`` of the path), at most once every ``ROTATION_CHECK_INTERVAL``.

        A relay below saturation writes a burst of one line per message, and the ``stat``, its
        twenty-field result and freeing it cost about 5,500 of such a message's 215,000
        instructions (callgrind, N = 10).
        A file renamed away keeps the lines of that second (logrotate's ``delaycompress`` leaves
        it as it is until the next rotation), and SIGHUP still reopens before the next line.
        """
        now = self._clock()
        if now < self._rotation_check_at:
            return
        self._rotation_check_at = now + ROTATION_CHECK_INTERVAL
        self.reopenIfNeeded()

    def flush(self) -> None:
        """Write out the burst; after lines were lost, the first flush that works marks the gap."""
        super().flush()
        self._burst = []
        if self.stream is not None and (lost := self.trouble.worked()):
            gap = logging.LogRecord(LOGGER_NAME, logging.WARNING, __file__, 0, "log-gap lost=%d", (lost,), None)
            self.stream.write(self.format(gap) + self.terminator)  # the file says where its gap is, too
            super().flush()

    def close(self) -> None:
        self.acquire()
        try:
            if self.stream is not None and self._burst:
                self._flush_quietly()  # a full disk at the end is counted and said, not raised
            self._drop_stream()
        finally:
            self.release()
        super().close()

    def end_burst(self) -> None:
        """Write out what the burst holds (the listener reached a drain or the stop); never raises."""
        self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError as error:
            self._failed(error)

    def _end_cut_line(self) -> None:
        """A write cut off by a full disk leaves half a line: end it, so the next line starts clean."""
        try:
            with open(self.baseFilename, "rb") as written:
                written.seek(-1, os.SEEK_END)
                last = written.read(1)
        except OSError:  # an empty file cannot seek back one byte: nothing to end
            return
        if last != b"\n" and self.stream is not None:
            self.stream.write(self.terminator)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)  # a bug (a bad format string) still shows its traceback
            return
        self._failed(error)

    def _failed(self, error: OSError) -> None:
        """Count the lines of the burst that did not reach the file, then drop the stream."""
        lost = max(1, len(self._burst))  # a failed open loses the one line
        if self.stream is not None and self._burst:
            try:
                written = os.fstat(self.stream.fileno()).st_size - self._burst_start
            except (OSError, ValueError):
                written = 0
            for size in self._burst:
                if size > written:
                    break
                written -= size
                lost -= 1
        self._drop_stream()
        self.trouble.failed(error, max(1, lost))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr that writes a burst of lines with one write, and, if it breaks (a closed
    pipe), goes quiet instead of printing tracebacks to itself.

    stderr is line-buffered, so its stream would still write each line on its
    own: the lines of a burst are joined here and written once.
    """

    def __init__(self, stream: TextIO, more_waiting: Callable[[], bool] = _never_waiting) -> None:
        super().__init__(stream)
        self.more_waiting = more_waiting
        #: Text held for the burst's write (a line, or the lines of a run), and how many lines it holds.
        self._lines: list[str] = []
        self._held = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.emit_line(line)

    def emit_line(self, line: str) -> None:
        """Hold a line the listener made of a ``Line`` (or ``emit`` of a record) for the burst's write."""
        self._lines.append(line + self.terminator)
        self._held += 1
        if self._held < MAX_BATCHED_LINES and self.more_waiting():
            return
        self.flush()

    def emit_lines(self, lines: list[str]) -> None:
        """Hold a run of lines the listener made at once (one string for the run), as ``emit_line`` each."""
        if not lines:
            return
        if self._held and self._held + len(lines) > MAX_BATCHED_LINES:
            self.flush()  # what is held stays within MAX_BATCHED_LINES, as line by line
        terminator = self.terminator
        self._lines.append(terminator.join(lines) + terminator)
        self._held += len(lines)
        if self._held < MAX_BATCHED_LINES and self.more_waiting():
            return
        self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        self._held = 0
        self.acquire()
        try:
            if lines:
                self.stream.write("".join(lines))
            self.stream.flush()
        except OSError:
            pass  # a closed pipe: nothing left to tell
        finally:
            self.release()

    def end_burst(self) -> None:
        self.flush()

    def close(self) -> None:
        self.flush()
        super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)


class _Records:
    """The hand-over from the routing threads to the listener: a bounded deque.

    ``queue.Queue`` takes a lock and notifies a condition for every record
    (0.7 µs of the I/O loop's time per line, and a wake-up of the listener);
    a deque's ``append`` is atomic and ten times cheaper. The listener is
    woken only when it has said it is about to sleep (``sleeping``): once per
    burst, not per line.
    """

    __slots__ = ("items", "limit", "sleeping", "wake")

    def __init__(self, limit: int) -> None:
        self.items: deque[logging.LogRecord | Line | threading.Event | None] = deque()
        self.limit = limit
        self.sleeping = False
        self.wake = threading.Event()

    def put(self, record: logging.LogRecord | Line) -> bool:
        """Queue a record unless ``limit`` are waiting already (False: dropped)."""
        if len(self.items) >= self.limit:
            return False
        self.items.append(record)
        # After the append: a listener that set ``sleeping`` looks at the deque
        # again before it waits, so either it sees the record or we see the flag.
        if self.sleeping:
            self.wake.set()
        return True

    def put_control(self, item: threading.Event | None) -> None:
        """A drain marker (an ``Event`` set once the lines before it are written) or the stop (``None``)."""
        self.items.append(item)
        self.wake.set()

    def more_waiting(self) -> bool:
        return bool(self.items)


class _QueueHandler(logging.Handler):
    """Hands the record over as it is: formatting happens on the listener thread.

    ``QueueHandler.prepare`` formats in the caller so records can cross a
    process boundary; ours stay in the process, and the relay's arguments are
    strings and numbers that cannot change after the call. ``handle`` skips
    ``Handler.handle``'s filters (this handler has none) and its lock (the
    deque needs none).
    """

    def __init__(self, records: _Records, stderr: TextIO) -> None:
        super().__init__()
        self.records = records
        self.trouble = _Trouble("to the log queue", stderr)

    def handle(self, record: logging.LogRecord) -> bool:
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord | Line) -> None:
        if self.records.put(record):
            self.trouble.worked()
        else:
            self.trouble.failed(f"{MAX_QUEUED_RECORDS} lines already wait for the disk")


#: The queue handler of the running ``LogSetup``, for ``info_line`` (None: none runs).
_active: _QueueHandler | None = None
_relay_logger = logging.getLogger(LOGGER_NAME)


def info_line(fmt: str, *args: object) -> None:
    """``log.info(fmt, *args)`` on the relay logger, for the lines of the routing hot path.

    While a ``LogSetup``'s queue is the logger's only way out (no other
    handler, no filter, no propagation), the line is handed over as a
    ``Line`` tuple and the listener formats it: a ``LogRecord`` cost the
    routing thread more than half of what the ``deliver`` line cost it
    (``Logger.makeRecord``, the record's dozen fields, ``basename`` of a path
    no line shows). The text is the same, and the line takes its place in the
    one queue in call order, counted against the same bound. Otherwise (tests
    with ``caplog``, a relay embedded with its own handlers) it is
    ``log.info`` itself.
    """
    logger = _relay_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _active
    handlers = logger.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler or logger.filters or logger.propagate:
        logger.info(fmt, *args)
        return
    handler.emit((time.time(), logging.INFO, fmt, args))


class _Listener:
    """The thread that formats and writes what the routing threads queued."""

    def __init__(
        self, records: _Records, formatter: _LineFormatter, *handlers: ReopeningFileHandler | _StderrHandler
    ) -> None:
        self.records = records
        self.formatter = formatter
        self.handlers = handlers
        self._thread = threading.Thread(target=self._run, name="relay-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Write out everything queued before this call, then end the thread (bounded)."""
        self.records.put_control(None)
        self._thread.join(_STOP_TIMEOUT)

    def _run(self) -> None:
        records = self.records
        items = records.items
        while True:
            if not items:
                # Let the next lines gather before waiting for them: a listener
                # woken by every single line fights the I/O loop for the GIL
                # each time; after a pause it takes the whole burst at once
                # and writes it with one call per handler.
                time.sleep(LISTENER_PAUSE)
                if not items:
                    records.sleeping = True
                    if not items:
                        records.wake.wait()
                    records.wake.clear()
                    records.sleeping = False
                    continue
            item = items.popleft()
            if type(item) is tuple:  # Lines from info_line: made here, once for every handler
                # The run of Lines waiting (up to MAX_BATCHED_LINES) is made and handed to each
                # handler at once: per line, a formatter call and each handler's emit_line (a
                # lock, a look at the stream, a write) were most of what this thread spent.
                burst: list[Line] = [item]
                while items and len(burst) < MAX_BATCHED_LINES and type(items[0]) is tuple:
                    burst.append(items.popleft())  # type: ignore[arg-type]  # a tuple here is a Line
                self._write_lines(burst)
                continue
            if isinstance(item, logging.LogRecord):
                for handler in self.handlers:
                    handler.handle(item)
                continue
            for handler in self.handlers:  # a marker or the stop: what is held back goes out now
                handler.end_burst()
            if item is None:
                return
            item.set()

    def _write_lines(self, burst: list[Line]) -> None:
        try:
            lines = self.formatter.lines(burst)
        except Exception:
            # One line in the run whose arguments do not fit its format: line by line, so
            # the lines around it are written in order and it alone goes to handleError.
            for item in burst:
                self._write_one(item)
            return
        for handler in self.handlers:
            handler.emit_lines(lines)

    def _write_one(self, item: Line) -> None:
        try:
            line = self.formatter.line(*item)
        except Exception:
            # A line whose arguments do not fit its format must not end
            # this thread (and with it every later line): as a record, it
            # goes to each handler's handleError, as log.info's would.
            created, levelno, fmt, args = item
            record = logging.makeLogRecord(
                {
                    "msg": fmt,
                    "args": args,
                    "levelno": levelno,
                    "levelname": logging.getLevelName(levelno),
                    "created": created,
                    "name": LOGGER_NAME,
                }
            )
            for handler in self.handlers:
                handler.handle(record)
            return
        for handler in self.handlers:
            handler.emit_line(line)


class LogSetup:
    """The relay logger's queue, listener thread and handlers; ``stop()`` flushes them."""

    def __init__(
        self,
        level: str | int,
        log_file: str | None,
        stderr: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic) paces the file's looks for a rotation (``ROTATION_CHECK_INTERVAL``)."""
        stderr = stderr if stderr is not None else sys.stderr
        formatter = _LineFormatter()
        self._records = _Records(MAX_QUEUED_RECORDS)
        more_waiting = self._records.more_waiting
        # raises OSError
        self.file_handler = ReopeningFileHandler(log_file, stderr, more_waiting, clock) if log_file else None
        handlers: list[ReopeningFileHandler | _StderrHandler] = [_StderrHandler(stderr, more_waiting)]
        if self.file_handler is not None:
            handlers.append(self.file_handler)
        for handler in handlers:
            handler.setFormatter(formatter)
        self.queue_handler = _QueueHandler(self._records, stderr)
        self.listener = _Listener(self._records, formatter, *handlers)
        self.logger = logging.getLogger(LOGGER_NAME)
        self.logger.setLevel(level)
        self.logger.addHandler(self.queue_handler)
        self.logger.propagate = False
        self.listener.start()
        global _active
        _active = self.queue_handler

    def reopen(self) -> None:
        """Reopen the log file (on ``SIGHUP``); the next line goes to the file now at the path."""
        if self.file_handler is not None:
            self.file_handler.request_reopen()
            self.logger.info("logs reopened")

    def drain(self, timeout: float = _STOP_TIMEOUT) -> bool:
        """Wait (bounded) until every record queued so far is written; False if time ran out."""
        if not self.listener.alive:
            return False
        written = threading.Event()
        self._records.put_control(written)
        return written.wait(timeout)

    def stop(self) -> None:
        """Write out what is queued, stop the thread, close the file. Safe to call twice."""
        global _active
        if _active is self.queue_handler:
            _active = None
        if self.queue_handler in self.logger.handlers:
            self.logger.removeHandler(self.queue_handler)
            self.listener.stop()
            for handler in self.listener.handlers:
                handler.close()


def configure_logging(level: str | int, log_file: str | None) -> LogSetup:
    """Set up the ``susurro.relay`` logger for the ``susurro-relay`` command."""
    # The relay's lines show none of the caller, thread or process fields, so
    # skip collecting them for every record (the logging HOWTO's "Optimization"
    # section): a quarter of the CPU a deliver line costs.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return LogSetup(level, log_file)
