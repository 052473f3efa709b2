"""``susurro-cli`` on a real terminal (tmux), as a person uses it.

Line editing and history, Tab completion, incoming messages printed above
the line being typed (never into it), Ctrl-C anywhere without a traceback,
"unlocking key…" while argon2id runs (and what was typed meanwhile never
sent), three tries at a passphrase. The other member is a real
``susurro-cli --json`` on a real relay, so what was *sent* is checked on the
receiving end, not on the screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from susurro.crypto import IdentityKey, save_identity
from tests.helpers.processes import CliProcess
from tests.helpers.tty import Chat, at_prompt, needs_tmux, open_terminal, watcher

pytestmark = needs_tmux


def messages(beto: CliProcess) -> list[str]:
    return [e["text"] for e in beto.events if e.get("event") == "message"]


def test_line_editing_history_and_tab_completion(chat: Chat) -> None:
    term, beto = chat.term, chat.beto
    term.type("helo")
    term.keys("Left")
    term.type("l")
    term.keys("Enter")
    assert beto.expect_event("message", **{"from": "ana"})["text"] == "hello", "Left moved the cursor"
    term.wait_for("✓ delivered to beto")
    term.wait_editing()  # the next prompt reads keys (before it, the terminal would echo them itself)

    term.keys("Up")  # history: the last line comes back to be edited
    term.type(" again")
    term.keys("Enter")
    beto.expect(lambda e: e.get("event") == "message" and e.get("text") == "hello again", "the edited history line")
    term.wait_until(lambda screen: screen.count("✓ delivered to beto") == 2, "the second delivery")
    term.wait_editing()

    term.type("/wh")
    term.keys("Tab")
    term.wait_for("ana> /who")
    term.keys("C-u")  # clear the line (readline's key)
    term.type("/verify be")
    term.keys("Tab")
    term.wait_for("ana> /verify beto")
    term.keys("Enter")
    term.wait_for("safety number with beto")
    screen = term.screen()
    assert "^[[" not in screen and "\x1b" not in screen
    assert messages(beto) == ["hello", "hello again"], "commands are not sent as messages"


def test_incoming_messages_are_printed_above_the_line_being_typed(chat: Chat) -> None:
    term, beto = chat.term, chat.beto
    term.type("a medio escribir")
    term.wait_for("ana> a medio escribir")
    beto.type("llega esto")

    def lines(screen: str) -> list[str]:
        return [line for line in screen.splitlines() if line.strip()]

    screen = term.wait_until(
        lambda screen: "<beto> llega esto" in screen and lines(screen)[-1] == "ana> a medio escribir",
        "the incoming line above, the prompt with what was typed below",
    )
    assert any(line.endswith("<beto> llega esto") for line in lines(screen)[:-1])
    assert not any("a medio escribir" in line and "llega" in line for line in lines(screen)), "never mixed"
    term.keys("Enter")
    sent = beto.expect_event("message", **{"from": "ana"})
    assert sent["text"] == "a medio escribir"


def test_ctrl_c_in_the_chat_leaves_cleanly(chat: Chat) -> None:
    term, beto = chat.term, chat.beto
    term.type("a medias")
    term.wait_for("ana> a medias")
    term.keys("C-c")
    assert term.exit_status() == 0
    beto.expect_event("left", name="ana")
    assert "Traceback" not in term.screen()
    assert "a medias" not in messages(beto)


def test_ctrl_c_at_the_name_prompt_leaves_without_a_traceback(relay_server, terminals, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = "{}:{}".format(*relay_server.address)
    term = open_terminal(terminals, tmp_path, "--server", server)
    at_prompt(term, "Your name:")
    term.type("an")
    term.wait_for("Your name: an")
    term.keys("C-c")
    assert term.exit_status() == 130
    assert "Traceback" not in term.screen()


@pytest.fixture
def protected_key(tmp_path: Path) -> Path:
    key_file = tmp_path / "keys" / "ana.key"
    key_file.parent.mkdir(mode=0o700)
    save_identity(IdentityKey.generate(), key_file, "correct horse")
    return key_file


def test_three_tries_at_a_passphrase_and_typing_while_unlocking_is_not_sent(  # type: ignore[no-untyped-def]
    relay_server, cli_clients, terminals, protected_key: Path, tmp_path: Path
) -> None:
    server = "{}:{}".format(*relay_server.address)
    beto = watcher(tmp_path, server, cli_clients)
    term = open_terminal(terminals, tmp_path, "--server", server, "--name", "ana", "--identity", str(protected_key))
    term.wait_for("Passphrase for")
    term.type("wrong horse")
    term.keys("Enter")
    term.wait_for("wrong passphrase; try again (2 tries left)")
    term.type("correct horse")
    term.keys("Enter")
    term.type("typed while unlocking")  # impatient: argon2id takes a moment
    term.keys("Enter")
    term.wait_for("unlocking key…")
    at_prompt(term)
    beto.expect_event("joined", name="ana")
    term.type("after")
    term.keys("Enter")
    first = beto.expect_event("message", **{"from": "ana"})
    assert first["text"] == "after", "what was typed during the unlock was dropped, not sent"
    assert "correct horse" not in term.screen(), "the passphrase is never echoed"


def test_three_wrong_passphrases_end_with_one_line(terminals, protected_key: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term = open_terminal(
        terminals, tmp_path, "--server", "127.0.0.1:1", "--name", "ana", "--identity", str(protected_key)
    )
    for left in ("2 tries left", "1 try left", None):
        term.wait_for("Passphrase for")
        term.type("wrong horse")
        term.keys("Enter")
        if left:
            term.wait_for(f"try again ({left})")
            term.keys("C-l")  # clear, so the next wait sees the next prompt
    assert term.exit_status() == 2
    screen = term.screen()
    assert "wrong passphrase" in screen and "Traceback" not in screen


def test_an_invitation_reads_in_words_and_is_accepted_with_tab_completion(chat: Chat) -> None:
    term, beto = chat.term, chat.beto
    beto.type("/create plans")
    beto.expect_event("room_created", room="plans")
    beto.type("/invite ana")
    term.wait_for("beto invited you to room plans#")  # in people's words, and nothing kept yet
    term.wait_for("/accept-invite plans to follow it")
    term.wait_editing()
    term.type("/invites")
    term.keys("Enter")
    term.wait_until(lambda screen: screen.count("beto invited you to") >= 2, "/invites lists it")
    term.wait_editing()
    term.type("/accept-inv")
    term.keys("Tab")
    term.wait_for("ana> /accept-invite")
    term.type(" plans")
    term.keys("Enter")
    term.wait_for("accepted the invitation to plans#")
    term.wait_for("beto added you to room plans#")
    beto.expect_event("member_added", room="plans", name="ana")
    beto.type("/join plans")
    beto.expect_event("room", room="plans")
    beto.type("hola plans")
    term.wait_for("[plans] <beto")
