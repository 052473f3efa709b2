"""The interactive terminal of ``susurro-cli``: line editing, history, completion, output above the prompt.

Used only when stdin and stdout are a terminal and ``--json`` is off; scripts
(pipes, ``--json``) keep the plain line loop in ``cli.py``, byte for byte.

``prompt_toolkit`` draws the input line; while it does, ``patch_stdout``
turns every ``print`` (from any thread) into a line written *above* the
prompt, so an incoming message never lands inside what is being typed.
The prompt runs on the main thread (where Ctrl-C arrives); the chat loop,
which reads the core's events and acts on typed lines, runs on another and
prints freely. History stays in memory: chat lines are never written to disk.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Sequence

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

#: Bound on waiting for the chat loop to finish once the prompt has ended.
CHAT_FINISH_TIMEOUT = 15.0
#: How often the main thread looks up from waiting for the join (so Ctrl-C is seen at once).
JOIN_POLL = 0.1


def interactive(as_json: bool) -> bool:
    """The terminal UI is for people: a terminal on both ends and no ``--json``."""
    return not as_json and sys.stdin.isatty() and sys.stdout.isatty()


class ChatCompleter(Completer):
    """Tab completes a command at the start of a line, and member names anywhere."""

    def __init__(self, commands: Sequence[str], names: Callable[[], Iterable[str]]) -> None:
        self.commands = tuple(commands)
        self.names = names

    def get_completions(self, document: Document, complete_event: object) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            for command in self.commands:
                if command.startswith(before.lower()):
                    yield Completion(command + " ", start_position=-len(before), display=command)
            return
        word = document.get_word_before_cursor(WORD=True)
        if not word or word.startswith("/"):
            return
        for name in sorted(self.names(), key=str.casefold):
            if name.casefold().startswith(word.casefold()):
                yield Completion(name, start_position=-len(word))


def ask(prompt: str) -> str | None:
    """One line with editing (``Your name:``); None when the person pressed Ctrl-C or Ctrl-D."""
    try:
        return PromptSession[str]().prompt(prompt)
    except (KeyboardInterrupt, EOFError):
        return None


def discard_typeahead() -> None:
    """Forget what was typed while we were busy (unlocking a key): it must not be sent as a message."""
    with contextlib.suppress(ImportError, OSError, ValueError):
        import termios

        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)


class Prompt:
    """The chat's input line. ``run(chat)`` runs ``chat`` on a thread and reads lines until it ends."""

    def __init__(
        self,
        prompt: str,
        completer: Completer,
        *,
        on_line: Callable[[str], None],
        on_end: Callable[[], None],
    ) -> None:
        self.prompt = prompt
        self.on_line = on_line
        self.on_end = on_end
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), completer=completer, complete_while_typing=False
        )
        self._finished = threading.Event()
        self._joined = threading.Event()

    def joined(self) -> None:
        """Called by the chat loop once it is in the room: the prompt appears."""
        self._joined.set()

    def run(self, chat: Callable[[], int]) -> int:
        """``chat`` (on its own thread) returns the exit status; lines go to ``on_line`` meanwhile."""
        status: list[int] = []

        def chat_thread() -> None:
            try:
                status.append(chat())
            finally:
                self._finished.set()
                self._stop_prompt()

        with patch_stdout(raw=True):
            thread = threading.Thread(target=chat_thread, name="chat", daemon=True)
            thread.start()
            try:
                self._read()
            except KeyboardInterrupt:  # between two prompts: leave all the same
                self.on_end()
            thread.join(CHAT_FINISH_TIMEOUT)
        return status[0] if status else 1

    def _read(self) -> None:
        while not self._finished.is_set() and not self._joined.wait(JOIN_POLL):
            pass
        while not self._finished.is_set():
            try:
                line = self.session.prompt(self.prompt, pre_run=self._exit_if_finished)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C, or the chat ended
                self.on_end()
                return
            self.on_line(line)

    def _exit_if_finished(self) -> None:
        if self._finished.is_set():
            get_app().exit(exception=EOFError())

    def _stop_prompt(self) -> None:
        """From the chat thread: end a prompt that is waiting for a line (the chat is over)."""
        app = self.session.app
        loop = getattr(app, "loop", None)
        if app.is_running and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: app.is_running and app.exit(exception=EOFError()))
