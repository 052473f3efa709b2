"""``SUSURRO_RELAY_*`` environment variables for every ``susurro-relay`` flag.

Containers and systemd units configure services through the environment, so
every flag has a variable: its long name in upper case with ``-`` as ``_``,
prefixed ``SUSURRO_RELAY_`` (``--max-clients`` is ``SUSURRO_RELAY_MAX_CLIENTS``).
The mapping is read from the parser itself, so a flag added later gets its
variable with no extra code. Precedence: a flag on the command line, then
its variable, then the built-in default.

Values go through the flag's own type and choices, so a bad value is refused
exactly as on the command line, naming the variable. On/off flags take
``1/true/yes/on`` or ``0/false/no/off``. An empty value counts as unset (an
``EnvironmentFile`` line left blank). An unknown ``SUSURRO_RELAY_*`` variable
is an error: a typo must not silently leave a setting at its default.

A flag that is a one-time action rather than a setting (``--import-sqlite``)
has no variable: set in a service's environment file it would run at every
start, so its variable is refused with that reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

PREFIX = "SUSURRO_RELAY_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: Flags that do one thing and exit: command line only (dest -> the flag as typed).
COMMAND_LINE_ONLY = {"import_sqlite": "--import-sqlite"}


def variable_for(action: argparse.Action) -> str:
    return PREFIX + action.dest.upper()


def _configurable(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions  # argparse has no public list of its options
        if action.option_strings
        and action.dest != argparse.SUPPRESS
        and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))
    ]


def _convert(action: argparse.Action, raw: str) -> object:
    if action.nargs == 0:  # store_true / store_false / store_const
        word = raw.strip().lower()
        if word in _TRUE:
            return action.const
        if word in _FALSE:
            return action.default
        raise ValueError(f"expected one of {', '.join(sorted(_TRUE | _FALSE))}")
    value: object = raw
    if action.type is not None:
        try:
            value = action.type(raw)  # type: ignore[misc,operator]
        except argparse.ArgumentTypeError:
            raise
        except (TypeError, ValueError):
            kind = getattr(action.type, "__name__", "value")
            raise ValueError(f"not a valid {kind}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> dict[str, object]:
    """Make the variables in ``environ`` the parser's defaults; returns what was taken.

    A bad value or an unknown variable ends the program through
    ``parser.error`` (exit status 2, usage and the reason on stderr).
    """
    actions = {variable_for(action): action for action in _configurable(parser)}
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in actions:
            known = ", ".join(sorted(actions))
            parser.error(f"unknown environment variable {name} (known: {known})")
    taken: dict[str, object] = {}
    for name, action in actions.items():
        raw = environ.get(name, "")
        if raw == "":
            continue
        if action.dest in COMMAND_LINE_ONLY:
            flag = COMMAND_LINE_ONLY[action.dest]
            parser.error(
                f"environment variable {name} is not read: {flag} is a one-time action, not a setting; "
                "give it on the command line (from a service's environment it would run at every start)"
            )
        try:
            taken[action.dest] = _convert(action, raw)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            parser.error(f"environment variable {name}={raw!r}: {exc}")
    parser.set_defaults(**taken)
    return taken


def document_environment(parser: argparse.ArgumentParser) -> None:
    """Name each flag's variable in ``--help``."""
    for action in _configurable(parser):
        if action.help != argparse.SUPPRESS and action.dest not in COMMAND_LINE_ONLY:
            action.help = f"{action.help or ''} [env {variable_for(action)}]".strip()
