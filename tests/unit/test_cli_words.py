"""What the terminal client prints for every event, in people's words.

Walks every warning kind (with the details the core really writes, message
ids included), every ending and the trust changes through ``event_to_text``
and the CLI's own refusals, checking what users once saw go wrong:
``! warning (message_held)``, ``message 26082f3235fb6030``, ``! not sent: not
sent: …``, ``! not sent: usage: …``, ``* dario is now seen before``.
"""

from __future__ import annotations

import io
import re

import pytest

from susurro.client import events as ev
from susurro.client.events import Ending, WarningKind
from susurro.client.render import Output, event_to_text
from susurro.client.typed_lines import send_failed, show_usage
from susurro.crypto.trust import TrustState
from susurro.protocol import ErrorCode

HELD_ID = "26082f3235fb6030"
DETAILS = {
    WarningKind.MESSAGE_HELD: f"not connected: message {HELD_ID} will be sent after reconnecting",
    WarningKind.NOT_SENT: f"message {HELD_ID} was never sent: the connection was closed",
    WarningKind.DELIVERY_UNKNOWN: f"no delivery report from the relay for message {HELD_ID} after 30 s",
}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
HEX_ID = re.compile(r"\b[0-9a-f]{12,}\b")
DOUBLED = re.compile(r"\b(\w+(?: \w+){0,3}): \1\b", re.IGNORECASE)


def member(trust: TrustState) -> ev.MemberInfo:
    return ev.MemberInfo(name="dario", fingerprint="1111 2222", identity_key=b"d" * 32, trust=trust)


def texts() -> list[tuple[str, str]]:
    out: list[tuple[str, str | None]] = []
    for kind in WarningKind:
        detail = DETAILS.get(kind, "the relay sent a bad frame: a field is too long")
        out.append((f"warning {kind.value}", event_to_text(ev.Warning(kind=kind, detail=detail, sender="bob"))))
    for code in (*ErrorCode, *Ending, None):
        reason = "the relay refused to let us join: the name 'ana' is in use"
        out.append((f"disconnected {code}", event_to_text(ev.Disconnected(reason=reason, code=code))))
    out.append(("reconnecting", event_to_text(ev.Reconnecting(delay=2, attempt=1, reason="the relay shut down (x)"))))
    for trust in TrustState:
        out.append((f"trust {trust.value}", event_to_text(ev.TrustUpdated(member=member(trust)))))
    stream = io.StringIO()
    output = Output(False, stream)
    send_failed(output, "not sent: bob's identity key changed; accept or verify it first")
    show_usage(output, "/verify NAME")
    out.append(("refusals", stream.getvalue()))
    return [(label, text) for label, text in out if text]


@pytest.mark.parametrize(("label", "text"), texts())
def test_every_line_is_in_words(label: str, text: str) -> None:
    codes = set(SNAKE.findall(text)) - {"susurro_cli"}
    assert not codes, f"{label}: {text!r} shows internal codes {codes}"
    assert not HEX_ID.search(text), f"{label}: {text!r} shows a raw id"
    doubled = DOUBLED.search(text)
    assert not doubled, f"{label}: {text!r} repeats {doubled.group(1)!r}"
    assert "not sent: usage" not in text and "is now seen before" not in text


def test_the_refusals_read_right() -> None:
    stream = io.StringIO()
    output = Output(False, stream)
    send_failed(output, "not sent: bob's identity key changed")
    show_usage(output, "/verify NAME")
    assert stream.getvalue().splitlines() == ["! not sent: bob's identity key changed", "! usage: /verify NAME"]


def test_json_keeps_the_core_detail_for_scripts() -> None:
    stream = io.StringIO()
    show_usage(Output(True, stream), "/verify NAME")
    assert '"detail": "usage: /verify NAME"' in stream.getvalue() and '"kind": "send_failed"' in stream.getvalue()
