"""The one parser of slash commands (terminal and window): every line parses, the same way in both."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client import commands as c


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("", None),
        ("   ", None),
        ("hola", c.Say(text="hola")),
        ("//help is not a command", c.Say(text="/help is not a command")),
        ("/msg bob hola qué tal", c.Direct(name="bob", text="hola qué tal")),
        ("/MSG bob x", c.Direct(name="bob", text="x")),
        ("/msg bob", c.Usage(command=c.Name.MSG, usage="/msg NAME TEXT")),
        ("/verify bob", c.OnMember(command=c.Name.VERIFY, name="bob")),
        ("/verified  bob ", c.OnMember(command=c.Name.VERIFIED, name="bob")),
        ("/accept", c.Usage(command=c.Name.ACCEPT, usage="/accept NAME")),
        ("/verify bob carol", c.Usage(command=c.Name.VERIFY, usage="/verify NAME")),
        ("/strict", c.Strict(on=None)),
        ("/strict ON", c.Strict(on=True)),
        ("/strict off", c.Strict(on=False)),
        ("/strict maybe", c.Usage(command=c.Name.STRICT, usage="/strict on|off")),
        ("/who", c.Plain(command=c.Name.WHO)),
        ("/q", c.Plain(command=c.Name.QUIT)),
        ("/exit", c.Plain(command=c.Name.QUIT)),
        ("/frob x", c.Unknown(word="frob")),
        ("/create ops", c.RoomCommand(word=c.RoomWord.CREATE, arg="ops")),
        ("/create lounge --open", c.RoomCommand(word=c.RoomWord.CREATE, arg="lounge", open=True)),
        ("/CREATE --open lounge", c.RoomCommand(word=c.RoomWord.CREATE, arg="lounge", open=True)),
        ("/create", c.Usage(command=c.RoomWord.CREATE, usage="/create LABEL [--open]")),
        ("/create a b", c.Usage(command=c.RoomWord.CREATE, usage="/create LABEL [--open]")),
        ("/create ops --closed", c.Usage(command=c.RoomWord.CREATE, usage="/create LABEL [--open]")),
        ("/create ops --open --open", c.Usage(command=c.RoomWord.CREATE, usage="/create LABEL [--open]")),
        ("/join  ops ", c.RoomCommand(word=c.RoomWord.JOIN, arg="ops")),
        ("/join", c.Usage(command=c.RoomWord.JOIN, usage="/join LABEL")),
        ("/invite bob", c.RoomCommand(word=c.RoomWord.INVITE, arg="bob")),
        ("/remove bob carol", c.Usage(command=c.RoomWord.REMOVE, usage="/remove NAME")),
        ("/promote bob", c.RoomCommand(word=c.RoomWord.PROMOTE, arg="bob")),
        ("/leave", c.RoomCommand(word=c.RoomWord.LEAVE)),
        ("/rooms", c.RoomCommand(word=c.RoomWord.ROOMS)),
        ("/members", c.RoomCommand(word=c.RoomWord.MEMBERS)),
    ],
)
def test_lines_and_what_they_ask_for(line: str, parsed: c.Command | None) -> None:
    assert c.parse(line) == parsed


@given(st.text(max_size=200))
def test_any_line_parses_to_a_command_or_nothing(line: str) -> None:
    parsed = c.parse(line)
    kinds = (c.Say, c.Direct, c.OnMember, c.Strict, c.Plain, c.RoomCommand, c.Usage, c.Unknown)
    assert parsed is None or isinstance(parsed, kinds)
    if parsed is None:
        assert not line.strip()


@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip() and not t.startswith("/")))
def test_a_line_without_a_slash_is_said_as_typed_and_a_doubled_slash_escapes(text: str) -> None:
    assert c.parse(text) == c.Say(text=text)
    assert c.parse("//" + text) == c.Say(text="/" + text)


def test_every_command_has_a_usage_line_and_a_completion_word() -> None:
    assert set(c.USAGE) == set(c.Name)
    assert c.WORDS == tuple(f"/{n.value}" for n in c.USAGE)


def test_every_room_command_has_a_usage_line() -> None:
    assert set(c.ROOM_USAGE) == set(c.RoomWord)
    assert all(usage.startswith(f"/{word.value}") for word, usage in c.ROOM_USAGE.items())


@given(st.sampled_from(list(c.RoomWord)), st.lists(st.text(alphabet="ab-o pn", min_size=1, max_size=8), max_size=4))
def test_a_room_command_is_parsed_or_refused_with_its_usage(word: c.RoomWord, args: list[str]) -> None:
    parsed = c.parse(" ".join([f"/{word.value}", *args]))
    assert isinstance(parsed, c.RoomCommand | c.Usage)
    if isinstance(parsed, c.Usage):
        assert parsed == c.Usage(command=word, usage=c.ROOM_USAGE[word])
    else:
        assert parsed.word is word and " " not in parsed.arg
        assert word is not c.RoomWord.CREATE or not parsed.arg.startswith("--"), "a flag is never a label"
