"""Per-message state in real windows: ✓ from the relay, ◷ while waiting, ✓✓ only from a signed receipt.

Alice and bob are two real windows on a real relay whose mailboxes hold one
message each. Bob reads alice's first line (his window sends a signed
receipt: two ticks), leaves, and alice writes twice more: the first waits in
his mailbox (sealed to the prekeys his window published), the second is not
delivered because the mailbox is full, said in words. Bob comes back: his
window shows the earlier line from his history and the waiting one from his
mailbox, and alice's note moves to two ticks. The note's tooltip names who
has it.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.app import SusurroApp
from tests.helpers.gui_driver import (
    close_app,
    pane,
    pump,
    signed_in,
    signed_in_apps,
    start_app,
    type_line,
    wait_in_pane,
)


def note_tooltip(root, app: SusurroApp, conversation: str, ref: str) -> str:  # type: ignore[no-untyped-def]
    """Point at the note of own message ``ref`` and read the tooltip that comes up."""
    assert app.window is not None
    pane_ = app.window.conversations[conversation]
    pane_.text.see(pane_.text.tag_ranges(f"note-{ref}")[0])
    root.update()
    x, y, _width, height = pane_.text.bbox(pane_.text.tag_ranges(f"note-{ref}")[0])
    pane_.text.event_generate("<Motion>", x=x + 2, y=y + height // 2)
    root.update()
    return pane_.note_tooltip.shown()


def ref_of(app: SusurroApp, text: str) -> str:
    assert app.state is not None
    refs = [ref for ref, sent in app.state._sent.items() if ref.startswith("m")]
    window = app.window
    assert window is not None
    for ref in refs:
        conversation = window.conversations[app.state._sent[ref].conversation]
        start = conversation.text.tag_ranges(f"note-{ref}")
        if start and text in conversation.text.get(f"{start[0]} linestart", start[0]):
            return ref
    raise AssertionError(f"no own message {text!r}")


def test_ticks_waiting_not_delivered_and_receipts_across_a_restart(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    relay = relay_factory(mailbox_messages=1)
    server = "{}:{}".format(*relay.address)
    with signed_in_apps(root, tmp_path, server, "alice", "bob") as apps:
        alice, bob = apps
        wait_in_pane(root, alice, "bob joined")
        alice.open_direct("bob")
        type_line(root, alice, "uno")
        wait_in_pane(root, bob, "uno", "alice")
        wait_in_pane(root, alice, "uno  ✓✓ delivered to bob", "bob")
        assert note_tooltip(root, alice, "bob", ref_of(alice, "uno")) == (
            "Who has it:\nbob: delivered (their client confirmed it)"
        )

        close_app(root, bob)
        wait_in_pane(root, alice, "bob left", "bob")
        type_line(root, alice, "dos")
        wait_in_pane(root, alice, "dos  ◷ waiting for bob", "bob")
        assert note_tooltip(root, alice, "bob", ref_of(alice, "dos")) == (
            "Who has it:\nbob: waiting on the relay until they come back"
        )
        type_line(root, alice, "tres")
        wait_in_pane(root, alice, "tres  not delivered to bob: their mailbox on the relay is full", "bob")

        again = start_app(root, tmp_path / "bob", name="bob", server=server)
        apps.append(again)
        signed_in(root, again)
        wait_in_pane(root, again, "dos", "alice")
        shown = wait_in_pane(root, again, "uno", "alice")
        assert shown.index("uno") < shown.index("dos"), "the history above, the waiting message after it"
        assert "tres" not in shown
        wait_in_pane(root, alice, "dos  ✓✓ delivered to bob", "bob")
        assert "tres  not delivered to bob" in pane(alice, "bob"), "a refusal stays a refusal"
        pump(root, lambda: "✓✓" not in pane(alice, "bob").split("tres")[1], "no ticks for the refused line")

        # Alice restarts: her history shows "dos" as delivered still (bob's receipt, kept by the core),
        # and "uno", delivered online, too.
        close_app(root, alice)
        alice = start_app(root, tmp_path / "alice", name="alice", server=server)
        apps.append(alice)
        signed_in(root, alice)
        wait_in_pane(root, alice, "dos  ✓✓ delivered to bob", "bob")
        wait_in_pane(root, alice, "uno  ✓✓ delivered to bob", "bob")
