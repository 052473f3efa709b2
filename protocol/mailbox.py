"""Frames for messages that wait: prekeys, mailboxes and receipts.

A member publishes prekeys (``prekeys``) and learns how many one-time keys the
relay holds for it (``prekeys_held``); a sender fetches bundles for absent
members (``bundle_fetch`` → ``bundles``) and posts sealed envelopes to their
mailboxes (``post`` → ``posted``: waiting, or refused with a reason); a member
that joins is sent its items in order (``mail``, then ``mail_end`` when none
are left) and confirms each one it has stored (``mail_ack``), after which the
relay deletes it. Receipts travel the same way, as items of kind
``receipt``. docs/protocol.md, *Prekeys and mailboxes*, has the construction.

Importing this module registers the frames in ``CLIENT_FRAMES`` and
``RELAY_FRAMES``; ``protocol/__init__`` does so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .frames import (
    CLIENT_FRAMES,
    MAX_RAW_NAME_CHARS,
    MAX_TIMESTAMP,
    RELAY_FRAMES,
    Frame,
    _check_bytes,
    _check_int,
    _check_msg_id,
    _check_str,
    _fail,
    _take,
    _wire_list,
)
from .limits import MAX_MAP_LEN, PROTOCOL_VERSION, PUBLIC_KEY_SIZE, SIGNATURE_SIZE

#: One-time prekeys in one ``prekeys`` frame (a full batch).
MAX_PUBLISH_ONE_TIME = 100
#: Identity keys in one ``bundle_fetch`` (and bundles in its answer).
MAX_FETCH_NAMES = 64
#: Items confirmed by one ``mail_ack``.
MAX_MAIL_ACK = 256
#: Prekey ids (``crypto.prekeys.MAX_KEY_ID``).
MAX_KEY_ID = 2**32 - 1
#: Mailbox item numbers (msgpack's signed 64-bit range).
MAX_ITEM = 2**63 - 1
#: Reason strings in ``posted.refused``.
MAX_REASON_CHARS = 32


class MailKind(str, enum.Enum):
    """What a mailbox item carries (the relay's label; the client checks what it opens)."""

    MESSAGE = "message"
    RECEIPT = "receipt"


def _check_kind(value: object) -> None:
    if value not in (MailKind.MESSAGE.value, MailKind.RECEIPT.value):
        raise _fail("kind must be 'message' or 'receipt'")


@dataclass(frozen=True, slots=True, kw_only=True)
class WireSignedPrekey:
    id: int
    pk: bytes
    at: int
    sig: bytes

    def __post_init__(self) -> None:
        _check_int("spk.id", self.id, 1, MAX_KEY_ID)
        _check_bytes("spk.pk", self.pk, size=PUBLIC_KEY_SIZE)
        _check_int("spk.at", self.at, 0, MAX_TIMESTAMP)
        _check_bytes("spk.sig", self.sig, size=SIGNATURE_SIZE)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "pk": self.pk, "at": self.at, "sig": self.sig}

    @classmethod
    def from_wire(cls, raw: object) -> WireSignedPrekey:
        if not isinstance(raw, Mapping):
            raise _fail("spk must be a map")
        return cls(**_take(raw, ("id", "pk", "at", "sig")))


@dataclass(frozen=True, slots=True, kw_only=True)
class WireOneTimePrekey:
    id: int
    pk: bytes
    #: Its signed expiry (seconds since the epoch).
    exp: int
    sig: bytes

    def __post_init__(self) -> None:
        _check_int("opk.id", self.id, 1, MAX_KEY_ID)
        _check_bytes("opk.pk", self.pk, size=PUBLIC_KEY_SIZE)
        _check_int("opk.exp", self.exp, 0, MAX_TIMESTAMP)
        _check_bytes("opk.sig", self.sig, size=SIGNATURE_SIZE)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "pk": self.pk, "exp": self.exp, "sig": self.sig}

    @classmethod
    def from_wire(cls, raw: object) -> WireOneTimePrekey:
        if not isinstance(raw, Mapping):
            raise _fail("opk must be a map")
        return cls(**_take(raw, ("id", "pk", "exp", "sig")))


@dataclass(frozen=True, slots=True, kw_only=True)
class WireBundle:
    """One member's prekeys as the relay hands them out (``opk`` None: none left)."""

    name: str
    ik: bytes
    spk: WireSignedPrekey
    opk: WireOneTimePrekey | None

    def __post_init__(self) -> None:
        _check_str("bundle.name", self.name, MAX_RAW_NAME_CHARS)
        _check_bytes("bundle.ik", self.ik, size=PUBLIC_KEY_SIZE)
        if not isinstance(self.spk, WireSignedPrekey):
            raise _fail("bundle.spk must be a signed prekey")
        if self.opk is not None and not isinstance(self.opk, WireOneTimePrekey):
            raise _fail("bundle.opk must be a one-time prekey or nil")

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ik": self.ik,
            "spk": self.spk.to_wire(),
            "opk": None if self.opk is None else self.opk.to_wire(),
        }

    @classmethod
    def from_wire(cls, raw: object) -> WireBundle:
        if not isinstance(raw, Mapping):
            raise _fail("a bundle must be a map")
        values = _take(raw, ("name", "ik", "spk", "opk"))
        opk = None if values["opk"] is None else WireOneTimePrekey.from_wire(values["opk"])
        return cls(name=values["name"], ik=values["ik"], spk=WireSignedPrekey.from_wire(values["spk"]), opk=opk)


def _check_keys(name: str, value: object, max_items: int) -> None:
    """A list of identity keys, each at most once (one mailbox, one entry)."""
    if not isinstance(value, tuple) or len(value) > max_items:
        raise _fail(f"{name} must be a list of at most {max_items} identity keys")
    for key in value:
        _check_bytes(f"{name} entry", key, size=PUBLIC_KEY_SIZE)
    if len(set(value)) != len(value):
        raise _fail(f"{name} names an identity key twice")


def _pairs(raw: object, name: str, max_items: int) -> dict[bytes, Any]:
    """``[[identity key, value], ...]`` as a map, refusing a key listed twice.

    Frames' maps have string keys only, so what is keyed by identity key
    travels as a list of pairs.
    """
    items = _wire_list(raw, name)
    if len(items) > max_items:
        raise _fail(f"{name} has more than {max_items} entries")
    out: dict[bytes, Any] = {}
    for pair in items:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(f"{name} entries must be [identity key, value] pairs")
        key, value = pair
        _check_bytes(f"{name} identity key", key, size=PUBLIC_KEY_SIZE)
        if key in out:
            raise _fail(f"{name} names an identity key twice")
        out[key] = value
    return out


# --- client -> relay ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Prekeys(Frame):
    """Publish our signed prekey (or None to keep the stored one) and more one-time prekeys."""

    TYPE: ClassVar[str] = "prekeys"
    spk: WireSignedPrekey | None
    opks: tuple[WireOneTimePrekey, ...]

    def __post_init__(self) -> None:
        if self.spk is not None and not isinstance(self.spk, WireSignedPrekey):
            raise _fail("spk must be a signed prekey or nil")
        if not isinstance(self.opks, tuple) or len(self.opks) > MAX_PUBLISH_ONE_TIME:
            raise _fail(f"opks must be a list of at most {MAX_PUBLISH_ONE_TIME} one-time prekeys")
        if not all(isinstance(k, WireOneTimePrekey) for k in self.opks):
            raise _fail("opks entries must be one-time prekeys")

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "t": self.TYPE,
            "spk": None if self.spk is None else self.spk.to_wire(),
            "opks": [k.to_wire() for k in self.opks],
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("spk", "opks"))
        opks = _wire_list(values["opks"], "opks")
        if len(opks) > MAX_PUBLISH_ONE_TIME:
            raise _fail(f"opks holds more than {MAX_PUBLISH_ONE_TIME} one-time prekeys")
        spk = None if values["spk"] is None else WireSignedPrekey.from_wire(values["spk"])
        return cls(spk=spk, opks=tuple(WireOneTimePrekey.from_wire(k) for k in opks))


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleFetch(Frame):
    """Prekey bundles of absent members, by identity key; ``one_time`` False asks for the signed prekey only.

    By key, not by name: the sender wants the prekeys of the key it pinned,
    whoever holds that name on the relay now.
    """

    TYPE: ClassVar[str] = "bundle_fetch"
    id: str
    keys: tuple[bytes, ...]
    one_time: bool

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_keys("keys", self.keys, MAX_FETCH_NAMES)
        if not self.keys:
            raise _fail("keys must name at least one identity")
        if not isinstance(self.one_time, bool):
            raise _fail("one_time must be a boolean")

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "keys", "one_time"))
        return cls(id=values["id"], keys=_wire_list(values["keys"], "keys"), one_time=values["one_time"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Post(Frame):
    """Sealed envelopes for absent members' mailboxes, keyed by the recipient's identity key."""

    TYPE: ClassVar[str] = "post"
    id: str
    kind: str
    to: Mapping[bytes, bytes]

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_kind(self.kind)
        if not isinstance(self.to, Mapping) or not 0 < len(self.to) <= MAX_MAP_LEN:
            raise _fail(f"to must map 1..{MAX_MAP_LEN} identity keys to envelopes")
        for key, ct in self.to.items():
            _check_bytes("recipient identity key", key, size=PUBLIC_KEY_SIZE)
            _check_bytes("envelope", ct)
            if not ct:
                raise _fail("an envelope must not be empty")

    def to_wire(self) -> dict[str, Any]:
        to = [[key, ct] for key, ct in self.to.items()]
        return {"v": PROTOCOL_VERSION, "t": self.TYPE, "id": self.id, "kind": self.kind, "to": to}

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "kind", "to"))
        return cls(id=values["id"], kind=values["kind"], to=_pairs(values["to"], "to", MAX_MAP_LEN))


@dataclass(frozen=True, slots=True, kw_only=True)
class MailAck(Frame):
    """The mailbox items this client has stored: the relay may delete them now."""

    TYPE: ClassVar[str] = "mail_ack"
    items: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple) or not 0 < len(self.items) <= MAX_MAIL_ACK:
            raise _fail(f"items must list 1..{MAX_MAIL_ACK} item numbers")
        for item in self.items:
            _check_int("item", item, 1, MAX_ITEM)

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        return cls(items=_wire_list(_take(raw, ("items",))["items"], "items"))


# --- relay -> client ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PrekeysHeld(Frame):
    """How many of our one-time prekeys the relay holds (after a publish, on join, and when low)."""

    TYPE: ClassVar[str] = "prekeys_held"
    one_time: int

    def __post_init__(self) -> None:
        _check_int("one_time", self.one_time, 0, MAX_KEY_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundles(Frame):
    """The answer to ``bundle_fetch``: a bundle per known identity key, and the keys with none."""

    TYPE: ClassVar[str] = "bundles"
    id: str
    bundles: tuple[WireBundle, ...]
    unknown: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        if not isinstance(self.bundles, tuple) or len(self.bundles) > MAX_FETCH_NAMES:
            raise _fail(f"bundles must be a list of at most {MAX_FETCH_NAMES}")
        if not all(isinstance(b, WireBundle) for b in self.bundles):
            raise _fail("bundles entries must be bundles")
        _check_keys("unknown", self.unknown, MAX_FETCH_NAMES)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "t": self.TYPE,
            "id": self.id,
            "bundles": [b.to_wire() for b in self.bundles],
            "unknown": list(self.unknown),
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "bundles", "unknown"))
        bundles = _wire_list(values["bundles"], "bundles")
        if len(bundles) > MAX_FETCH_NAMES:
            raise _fail(f"bundles holds more than {MAX_FETCH_NAMES}")
        return cls(
            id=values["id"],
            bundles=tuple(WireBundle.from_wire(b) for b in bundles),
            unknown=_wire_list(values["unknown"], "unknown"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Posted(Frame):
    """The relay's report for one ``post``, per recipient identity key: stored (waiting), or refused and why."""

    TYPE: ClassVar[str] = "posted"
    id: str
    waiting: tuple[bytes, ...]
    refused: Mapping[bytes, str]

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_keys("waiting", self.waiting, MAX_MAP_LEN)
        if not isinstance(self.refused, Mapping) or len(self.refused) > MAX_MAP_LEN:
            raise _fail(f"refused must map at most {MAX_MAP_LEN} identity keys to reasons")
        for key, reason in self.refused.items():
            _check_bytes("refused identity key", key, size=PUBLIC_KEY_SIZE)
            _check_str("refused reason", reason, MAX_REASON_CHARS)

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "t": self.TYPE,
            "id": self.id,
            "waiting": list(self.waiting),
            "refused": [[key, reason] for key, reason in self.refused.items()],
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "waiting", "refused"))
        return cls(
            id=values["id"],
            waiting=_wire_list(values["waiting"], "waiting"),
            refused=_pairs(values["refused"], "refused", MAX_MAP_LEN),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Mail(Frame):
    """One mailbox item, in mailbox order; confirm it with ``mail_ack`` once stored."""

    TYPE: ClassVar[str] = "mail"
    WIRE_NAMES: ClassVar[dict[str, str]] = {"sender": "from"}
    item: int
    sender: str
    ik: bytes
    id: str
    kind: str
    ct: bytes
    at: int

    def __post_init__(self) -> None:
        _check_int("item", self.item, 1, MAX_ITEM)
        _check_str("from", self.sender, MAX_RAW_NAME_CHARS)
        _check_bytes("ik", self.ik, size=PUBLIC_KEY_SIZE)
        _check_msg_id(self.id)
        _check_kind(self.kind)
        _check_bytes("ct", self.ct)
        if not self.ct:
            raise _fail("ct must not be empty")
        _check_int("at", self.at, 0, MAX_TIMESTAMP)


@dataclass(frozen=True, slots=True, kw_only=True)
class MailEnd(Frame):
    """No more waiting items for now; later ones come as ``mail`` as they arrive."""

    TYPE: ClassVar[str] = "mail_end"


MAILBOX_REQUESTS: tuple[type[Frame], ...] = (Prekeys, BundleFetch, Post, MailAck)
for _request in MAILBOX_REQUESTS:
    CLIENT_FRAMES[_request.TYPE] = _request
for _answer in (PrekeysHeld, Bundles, Posted, Mail, MailEnd):
    RELAY_FRAMES[_answer.TYPE] = _answer
