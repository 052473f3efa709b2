"""Every word the window can show, in both languages: in people's words.

Walks the whole catalogue (``EN`` and ``ES``), fills every field, and also
runs the core's own reasons and every warning kind through the translation
the window uses, checking three things a user once saw go wrong: internal
codes or raw ids on screen (``message_held``, ``message 26082f3235fb6030``),
doubled prefixes (``not sent: not sent: …``), and English inside the Spanish
interface (``desconectado: the relay shut down …``).
"""

from __future__ import annotations

import re
import string

import pytest

from susurro.client.events import Ending, WarningKind
from susurro.client.gui.strings import EN, ES, Strings
from susurro.protocol import ErrorCode

#: What the core says when something does not happen (SendError, TrustError, Disconnected reasons,
#: ConnectFailed), as written in client/; the window must say each in the user's language.
CORE_REASONS = [
    "not connected to the relay",
    "nobody else is in the room",
    "bob is not in the room",
    "not sent: bob's identity key changed (was 1111 2222 …); accept or verify it first",
    "not sent: not sent: bob's identity key changed",
    "connection to the relay lost (Broken pipe)",
    "cannot reach the relay at 127.0.0.1:1: connection refused (is susurro-relay running?)",
    "cannot reach the relay at 10.0.0.1:12345: no answer within 10 s",
    "the relay shut down (maintenance)",
    "the connection was closed",
    "the relay closed the connection",
    "not sent: 9 recipients; this relay allows 5 per message",
]
WARNING_KINDS = [
    "bad_certificate",
    "bad_name",
    "bad_public_key",
    "bad_signature",
    "crypto_error",
    "decrypt_failed",
    "delivery_unknown",
    "duplicate_name",
    "gap",
    "impersonation",
    "internal_error",
    "key_changed",
    "malformed_message",
    "message_too_large",
    "not_addressed_to_me",
    "not_sent",
    "protocol_error",
    "recipient_key_mismatch",
    "relay_error",
    "replay",
    "roster_full",
    "sender_mismatch",
    "stale_certificate",
    "stale_session",
    "trust_store",
    "unknown_sender",
    "something_new",
    *(kind.value for kind in WarningKind),
]
SAMPLE = {
    "name": "bob",
    "names": "bob, carol",
    "relay": "127.0.0.1:12345",
    "fingerprint": "1111 2222 3333 4444",
    "old": "1111 2222",
    "new": "3333 4444",
    "path": "/home/ana/.config/susurro/identities/ana.key",
    "detail": "DETAIL",
    "reason": "REASON",
    "seconds": "20",
    "minutes": "10",
    "delay": "2",
    "count": "3",
    "command": "frob",
    "sender": "bob",
    "where": "Room",
    "weekday": "Tuesday",
    "day": "1",
    "month": "December",
    "year": "2026",
    "trust": "TRUST",
    "from_sender": " from bob",
    "sender_or_someone": "bob",
    "usage": "/verify NAME",
    "what": "WHAT",
    "room": "ops #1a2b3c4d",
    "by": "carol",
    "policy": "POLICY",
    "online": "2",
    "presence": "PRESENCE",
    "label": "ops",
    "text": "hola",
}
#: snake_case words are internal codes, except these, which are written for people.
ALLOWED_SNAKE = {"ana_maria"}
#: Words that are English and not Spanish (a Spanish sentence has none of them).
ENGLISH = {
    "the",
    "is",
    "are",
    "not",
    "and",
    "you",
    "your",
    "relay",
    "sent",
    "message",
    "messages",
    "connection",
    "with",
    "from",
    "key",
    "name",
    "was",
    "cannot",
    "could",
    "nobody",
    "room",
    "lost",
    "refused",
    "shut",
    "down",
    "closed",
    "answer",
    "changed",
    "verify",
    "accept",
    "someone",
    "who",
    "what",
    "when",
}
#: Not words in any language: commands, flags, program names.
NOT_WORDS = re.compile(
    r"([\w.~-]*(?:/[\w.-]+)+|--[\w-]+|susurro(?:-cli)?|python3-tk|Tkinter|TLS|CA|Ctrl\+\w+|NOMBRE|TEXTO|ARCHIVO)"
)


SAMPLE_ES = {
    **SAMPLE,
    "where": "Sala",
    "weekday": "martes",
    "month": "diciembre",
    "from_sender": " de bob",
    "usage": "/verify NOMBRE",
}


def filled(template: str, language: str) -> str:
    names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    sample = SAMPLE_ES if language == "es" else SAMPLE
    return template.format(**{field: sample[field] for field in names})


def every_text(strings: Strings) -> list[tuple[str, str]]:
    table = EN if strings.language == "en" else ES
    texts = [(key, filled(value, strings.language)) for key, value in table.items()]
    texts += [(f"reason({r!r})", strings.reason(r)) for r in CORE_REASONS]
    texts += [(f"reason(code={c})", strings.reason("x", c)) for c in (Ending.SHUTDOWN, ErrorCode.NAME_TAKEN)]
    texts += [(f"not_sent+reason({r!r})", strings("not_sent", reason=strings.reason(r))) for r in CORE_REASONS]
    texts += [(f"warning({k})", strings.warning(k, "detail", sender="bob")) for k in WARNING_KINDS]
    texts += [(f"warning({k}, no sender)", strings.warning(k, "detail")) for k in WARNING_KINDS]
    return texts


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_internal_codes_or_raw_ids(language: str) -> None:
    for key, text in every_text(Strings(language)):
        codes = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)) - ALLOWED_SNAKE
        assert not codes, f"{key}: {text!r} shows {codes}"
        assert not re.search(r"\b[0-9a-f]{12,}\b", text), f"{key}: {text!r} shows an id"


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_doubled_prefixes(language: str) -> None:
    for key, text in every_text(Strings(language)):
        doubled = re.search(r"\b(\w+(?: \w+){0,3}): \1\b", text, re.IGNORECASE)
        assert not doubled, f"{key}: {text!r} repeats {doubled.group(1)!r}"
        assert ".." not in text.replace("...", ""), f"{key}: {text!r} has a doubled full stop"


def test_no_english_inside_the_spanish_interface() -> None:
    for key, text in every_text(Strings("es")):
        if key == "reason_other":  # its {detail} is left out in Spanish; checked through reason() above
            continue
        words = set(re.findall(r"[A-Za-zÁÉÍÓÚÑáéíóúñü]+", NOT_WORDS.sub(" ", text)))
        english = {w for w in words if w.lower() in ENGLISH} - {"DETAIL", "REASON", "TRUST", "WHAT"}
        assert not english, f"{key}: {text!r} has English words {english}"


def test_the_check_catches_what_it_is_for() -> None:
    """The checks fail on the sentences a user once saw (so they are not vacuous)."""
    assert re.search(r"\b[a-z]+(?:_[a-z]+)+\b", "warning (message_held)")
    assert re.search(r"\b(\w+(?: \w+){0,3}): \1\b", "not sent: not sent: bob", re.IGNORECASE)
    assert {"the", "relay"} <= set("desconectado: the relay shut down".split())
