"""Room membership as a signed, hash-chained log, and its verification.

A room is the log of its membership changes. Each entry is signed by the
identity key of the member who made the change and names the hash of the
entry before it, so the relay that stores the log can withhold its tail but
cannot add, alter, drop or reorder an entry without every client noticing.
The room id is the hash of the ``create`` entry: the relay cannot choose it,
and two rooms cannot share one.

An entry's bytes are ``msgpack([kind, room, seq, prev, time, signer,
subject_name, subject_ik, label, policy, nonce, signature])`` in the shortest
form msgpack allows; the signature is Ed25519 over
``b"susurro/room-entry/v1" || 0x00 || msgpack([kind, ..., nonce])`` (the same
eleven fields). A reader re-encodes what it parsed and refuses any other
spelling of the same values, so an entry has exactly one byte string and its
hash is well defined: ``BLAKE2b-256(entry bytes, person="susurro/room/v1")``.

Rules (``docs/protocol.md``, *Rooms*): the creator is the first member and
admin; admins add, remove, promote, demote and set the policy; anyone may
leave; in an ``open`` room anyone may add themselves, except a member an
admin removed: a removal bans that identity key until an admin adds it again,
so removing someone from an open room sticks. ``verify_log`` checks a
log from its ``create`` entry; ``RoomState.extend`` checks entries that
continue a state verified before. Either returns the membership the log
proves, or raises the ``RoomLogError`` of the first entry that breaks a rule.

Name rules live in ``protocol`` and this package imports nothing of ours, so
callers pass them in (``LogRules``): how names compare (``name_key``) and
which names are acceptable (``name_ok``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

import msgpack
import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.utils

from .errors import BadSignature, CryptoError
from .identity import IdentityKey, verify_signature
from .limits import IDENTITY_KEY_SIZE, SIGNATURE_SIZE

ROOM_ENTRY_PURPOSE = b"susurro/room-entry/v1"
#: BLAKE2b personalisation for entry hashes and room ids (at most 16 bytes).
_HASH_PERSON = b"susurro/room/v1"
HASH_SIZE = 32
ROOM_ID_SIZE = HASH_SIZE
#: ``prev`` of a ``create`` entry, and ``room`` of one (its id is not known yet).
ZERO_HASH = bytes(HASH_SIZE)
#: Random bytes in every ``create``, so re-creating a room makes a new id.
NONCE_SIZE = 16
#: Largest entry on the wire, in bytes (a real one is 200 to 600).
MAX_ENTRY_BYTES = 2048
#: Characters in a subject name or a room label before the name rules apply.
MAX_ENTRY_TEXT_CHARS = 128
#: Members one room may hold, whatever a relay allows (its default is 256).
MAX_ROOM_MEMBERS = 1024
#: Entries one log may hold, whatever a relay allows.
MAX_LOG_ENTRIES = 100_000
#: Entry times are whole seconds since the epoch, up to the year 9999.
MAX_ENTRY_TIME = 253_402_300_799
MAX_SEQ = 2**63 - 1
#: The last tenth of a log's entries and member slots is for admins: self-adds stop
#: there (``room_limit``), so a stranger cycling add/leave in an open room, or a
#: crowd of throwaway keys, cannot leave it where no admin can remove anyone or
#: change the policy (spec review S4, finding 5).
ADMIN_RESERVE_DIVISOR = 10
#: Self-adds one identity key may make to one room, counted in the log (so every
#: verifier counts alike; no clock is involved): leaving an open room and coming back
#: is ordinary, doing it without end is the entry-limit attack.
MAX_SELF_ADDS_PER_KEY = 16
_FIELDS = 12


class EntryKind(str, Enum):
    CREATE = "create"
    ADD = "add"
    REMOVE = "remove"
    LEAVE = "leave"
    PROMOTE = "promote"
    DEMOTE = "demote"
    POLICY = "policy"


class RoomPolicy(str, Enum):
    """Who may add members: ``open`` lets anyone add themselves; ``invite`` only admins."""

    OPEN = "open"
    INVITE = "invite"


# --- errors: one per failed check, all RoomLogError ------------------------------


class RoomLogError(CryptoError):
    """A membership log that cannot be trusted; ``seq`` is the offending entry (-1: the log as a whole)."""

    kind = "bad_room_log"

    def __init__(self, detail: str, seq: int = -1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.seq = seq


class MalformedEntry(RoomLogError):
    """The bytes are not one canonical entry of the right shape and sizes."""

    kind = "malformed_entry"


class EntrySignatureInvalid(RoomLogError):
    """The entry's signature does not verify under the signer it names."""

    kind = "bad_entry_signature"


class ChainBroken(RoomLogError):
    """Wrong room, sequence number or previous hash: the entry does not continue this log."""

    kind = "broken_chain"


class EntryNotPermitted(RoomLogError):
    """The signer had no right to make this change (not a member, not an admin)."""

    kind = "entry_not_permitted"


class InvalidEntry(RoomLogError):
    """The change does not fit the room's state (adding a member twice, removing a stranger...)."""

    kind = "invalid_entry"


class RoomLimitExceeded(RoomLogError):
    """Too many members or entries."""

    kind = "room_limit"


# --- entries ----------------------------------------------------------------------


def entry_hash(data: bytes) -> bytes:
    """The hash that the next entry names as ``prev``; of a ``create`` entry, the room id."""
    return nacl.hash.blake2b(data, digest_size=HASH_SIZE, person=_HASH_PERSON, encoder=nacl.encoding.RawEncoder)


#: Bytes of the room id shown beside a label. 64 bits: making a second room whose
#: short id matches a chosen one costs about 2**64 create entries, not the 2**32
#: a laptop manages in hours (session 3's review).
SHORT_ROOM_ID_BYTES = 8


def short_room_id(room_id: bytes) -> str:
    """Sixteen hex digits shown beside a label, so two rooms cannot pass for one."""
    return room_id[:SHORT_ROOM_ID_BYTES].hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomEntry:
    """One signed change to a room's membership. Build with ``sign_entry``; parse with ``from_bytes``."""

    kind: EntryKind
    room: bytes
    seq: int
    prev: bytes
    time: int
    signer: bytes
    subject_name: str
    subject_ik: bytes
    label: str = ""
    policy: str = ""
    nonce: bytes = b""
    signature: bytes = field(default=bytes(SIGNATURE_SIZE), repr=False)

    def signed_fields(self) -> tuple[str | bytes | int, ...]:
        return (
            self.kind.value,
            self.room,
            self.seq,
            self.prev,
            self.time,
            self.signer,
            self.subject_name,
            self.subject_ik,
            self.label,
            self.policy,
            self.nonce,
        )

    def to_bytes(self) -> bytes:
        packed: bytes = msgpack.packb([*self.signed_fields(), self.signature], use_bin_type=True)
        return packed

    @classmethod
    def from_bytes(cls, data: bytes, seq: int = -1) -> RoomEntry:
        """Parse one entry, refusing anything but its canonical encoding (``MalformedEntry``)."""
        if not isinstance(data, bytes) or not 0 < len(data) <= MAX_ENTRY_BYTES:
            raise MalformedEntry(f"an entry is 1 to {MAX_ENTRY_BYTES} bytes", seq)
        try:
            raw = msgpack.unpackb(
                data,
                raw=False,
                strict_map_key=True,
                use_list=True,
                max_str_len=MAX_ENTRY_BYTES,
                max_bin_len=MAX_ENTRY_BYTES,
                max_array_len=_FIELDS,
                max_map_len=0,
                max_ext_len=0,
                ext_hook=_refuse_ext,
            )
        except (ValueError, TypeError, RecursionError):
            raise MalformedEntry("an entry is not valid msgpack", seq) from None
        if not isinstance(raw, list) or len(raw) != _FIELDS:
            raise MalformedEntry(f"an entry is an array of {_FIELDS} fields", seq)
        kind, room, number, prev, time, signer, name, subject, label, policy, nonce, signature = raw
        _expect(type(kind) is str and kind in _KINDS, "kind", seq)
        _expect(type(room) is bytes and len(room) == ROOM_ID_SIZE, "room", seq)
        _expect(type(number) is int and 0 <= number <= MAX_SEQ, "seq", seq)
        _expect(type(prev) is bytes and len(prev) == HASH_SIZE, "prev", seq)
        _expect(type(time) is int and 0 <= time <= MAX_ENTRY_TIME, "time", seq)
        _expect(type(signer) is bytes and len(signer) == IDENTITY_KEY_SIZE, "signer", seq)
        _expect(type(name) is str and 0 < len(name) <= MAX_ENTRY_TEXT_CHARS, "subject_name", seq)
        _expect(type(subject) is bytes and len(subject) == IDENTITY_KEY_SIZE, "subject_ik", seq)
        # A key nobody can sign with (small order, non-canonical) must not become a member one verifier
        # keeps and another refuses; libsodium's check is the one its signature verification makes of a signer.
        _expect(nacl.bindings.crypto_core_ed25519_is_valid_point(subject), "subject_ik", seq)
        _expect(type(label) is str and len(label) <= MAX_ENTRY_TEXT_CHARS, "label", seq)
        _expect(type(policy) is str and len(policy) <= MAX_ENTRY_TEXT_CHARS, "policy", seq)
        _expect(type(nonce) is bytes and len(nonce) in (0, NONCE_SIZE), "nonce", seq)
        _expect(type(signature) is bytes and len(signature) == SIGNATURE_SIZE, "signature", seq)
        entry = cls(
            kind=EntryKind(kind),
            room=room,
            seq=number,
            prev=prev,
            time=time,
            signer=signer,
            subject_name=name,
            subject_ik=subject,
            label=label,
            policy=policy,
            nonce=nonce,
            signature=signature,
        )
        try:
            canonical = entry.to_bytes()
        except UnicodeEncodeError:  # a lone surrogate cannot be re-encoded
            raise MalformedEntry("an entry holds text that is not valid Unicode", seq) from None
        if canonical != data:
            raise MalformedEntry("an entry is not in canonical msgpack (shortest forms, str for text)", seq)
        return entry

    def verify_signature(self) -> None:
        try:
            verify_signature(self.signer, self.signature, ROOM_ENTRY_PURPOSE, *self.signed_fields())
        except BadSignature:
            detail = f"entry {self.seq} ({self.kind.value}) is not signed by its signer"
            raise EntrySignatureInvalid(detail, self.seq) from None


_KINDS = frozenset(kind.value for kind in EntryKind)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed")


def _expect(ok: bool, what: str, seq: int) -> None:
    if not ok:
        raise MalformedEntry(f"entry field {what!r} has the wrong type or size", seq)


def sign_entry(
    identity: IdentityKey,
    *,
    kind: EntryKind,
    room: bytes,
    seq: int,
    prev: bytes,
    time: int,
    subject_name: str,
    subject_ik: bytes,
    label: str = "",
    policy: str = "",
    nonce: bytes = b"",
) -> RoomEntry:
    """An entry with these fields, signed by ``identity`` (its signer). Rules are checked by verification."""
    unsigned = RoomEntry(
        kind=kind,
        room=room,
        seq=seq,
        prev=prev,
        time=time,
        signer=identity.public,
        subject_name=subject_name,
        subject_ik=subject_ik,
        label=label,
        policy=policy,
        nonce=nonce,
    )
    signature = identity.sign(ROOM_ENTRY_PURPOSE, *unsigned.signed_fields())
    return RoomEntry(**{**_as_dict(unsigned), "signature": signature})


def _as_dict(entry: RoomEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in RoomEntry.__dataclass_fields__}


def create_entry(
    identity: IdentityKey,
    *,
    name: str,
    label: str,
    policy: RoomPolicy,
    time: int,
    nonce: bytes | None = None,
) -> RoomEntry:
    """The ``create`` entry of a new room whose first member and admin is ``identity`` as ``name``."""
    return sign_entry(
        identity,
        kind=EntryKind.CREATE,
        room=ZERO_HASH,
        seq=0,
        prev=ZERO_HASH,
        time=time,
        subject_name=name,
        subject_ik=identity.public,
        label=label,
        policy=policy.value,
        nonce=nacl.utils.random(NONCE_SIZE) if nonce is None else nonce,
    )


# --- state and verification ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogHead:
    """Where a log ends: the last entry's sequence number and hash."""

    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class RoomMember:
    name: str
    identity_key: bytes
    admin: bool


def _casefold(name: str) -> str:
    return name.casefold()


def _any_name(name: str) -> bool:
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRules:
    """What a verifier enforces beyond the log's own rules.

    ``name_key`` decides when two member names are the same name (the
    protocol's casefold + lookalike key); ``name_ok`` whether a subject name
    or label is acceptable at all (the protocol's name rules).
    """

    max_members: int = MAX_ROOM_MEMBERS
    max_entries: int = MAX_LOG_ENTRIES
    name_key: Callable[[str], str] = _casefold
    name_ok: Callable[[str], bool] = _any_name


def admin_reserve(limit: int) -> int:
    """Of ``limit`` entries or member slots, how many only an admin's entries may use."""
    return max(1, limit // ADMIN_RESERVE_DIVISOR)


DEFAULT_RULES = LogRules()


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomState:
    """The membership a verified log proves, as of ``head``."""

    room_id: bytes
    label: str
    policy: RoomPolicy
    creator: bytes
    head: LogHead
    #: identity key -> member, in the order they were added.
    members: Mapping[bytes, RoomMember]
    #: identity key -> name of everyone an admin removed and no admin has added back:
    #: they may not add themselves to an open room.
    banned: Mapping[bytes, str] = field(default_factory=lambda: MappingProxyType({}))
    #: identity key -> how many ``add`` entries it signed for itself (``MAX_SELF_ADDS_PER_KEY``).
    self_adds: Mapping[bytes, int] = field(default_factory=lambda: MappingProxyType({}))
    rules: LogRules = field(default=DEFAULT_RULES, repr=False, compare=False)

    @property
    def admins(self) -> frozenset[bytes]:
        return frozenset(ik for ik, member in self.members.items() if member.admin)

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)

    def member(self, identity_key: bytes) -> RoomMember | None:
        return self.members.get(identity_key)

    def member_named(self, name: str) -> RoomMember | None:
        """The member whose name is ``name`` under the rules' ``name_key``."""
        key = self.rules.name_key(name)
        for member in self.members.values():
            if self.rules.name_key(member.name) == key:
                return member
        return None

    def extend(self, entries: Iterable[bytes]) -> RoomState:
        """The state after ``entries``, which must continue this state's head; raises ``RoomLogError``."""
        builder = _Builder.from_state(self)
        for data in entries:
            builder.apply(data)
        return builder.state()

    def next_entry(
        self,
        identity: IdentityKey,
        *,
        kind: EntryKind,
        subject_name: str,
        subject_ik: bytes,
        time: int,
        policy: RoomPolicy | None = None,
    ) -> RoomEntry:
        """A signed entry continuing this head (checked by ``extend`` like anyone's)."""
        return sign_entry(
            identity,
            kind=kind,
            room=self.room_id,
            seq=self.head.seq + 1,
            prev=self.head.hash,
            time=time,
            subject_name=subject_name,
            subject_ik=subject_ik,
            policy="" if policy is None else policy.value,
        )


def verify_log(entries: Sequence[bytes], rules: LogRules = DEFAULT_RULES) -> RoomState:
    """Verify a whole log from its ``create`` entry; the membership it proves, or ``RoomLogError``."""
    if not entries:
        raise ChainBroken("a room log starts with its create entry; this one is empty")
    builder = _Builder.genesis(entries[0], rules)
    for data in entries[1:]:
        builder.apply(data)
    return builder.state()


class _Builder:
    """Applies entries one at a time to a mutable copy of the state."""

    def __init__(
        self,
        *,
        room_id: bytes,
        label: str,
        policy: RoomPolicy,
        creator: bytes,
        head: LogHead,
        members: dict[bytes, RoomMember],
        banned: dict[bytes, str],
        self_adds: dict[bytes, int],
        rules: LogRules,
    ) -> None:
        self.room_id = room_id
        self.label = label
        self.policy = policy
        self.creator = creator
        self.head = head
        self.members = members
        self.banned = banned
        self.self_adds = self_adds
        self.rules = rules
        self.name_keys = {rules.name_key(m.name): ik for ik, m in members.items()}

    @classmethod
    def from_state(cls, state: RoomState) -> _Builder:
        return cls(
            room_id=state.room_id,
            label=state.label,
            policy=state.policy,
            creator=state.creator,
            head=state.head,
            members=dict(state.members),
            banned=dict(state.banned),
            self_adds=dict(state.self_adds),
            rules=state.rules,
        )

    @classmethod
    def genesis(cls, data: bytes, rules: LogRules) -> _Builder:
        entry = RoomEntry.from_bytes(data, 0)
        if entry.kind is not EntryKind.CREATE:
            raise ChainBroken(f"a room log starts with a create entry, not {entry.kind.value}", 0)
        if entry.seq != 0 or entry.room != ZERO_HASH or entry.prev != ZERO_HASH:
            raise ChainBroken("a create entry has seq 0 and zero room and prev", 0)
        entry.verify_signature()
        if entry.subject_ik != entry.signer:
            raise EntryNotPermitted("a room is created by its first member: subject and signer differ", 0)
        if len(entry.nonce) != NONCE_SIZE:
            raise MalformedEntry(f"a create entry carries a {NONCE_SIZE}-byte nonce", 0)
        if not entry.label or not rules.name_ok(entry.label):
            raise InvalidEntry(f"the room label {entry.label[:40]!r} breaks the name rules", 0)
        if not rules.name_ok(entry.subject_name):
            raise InvalidEntry(f"the name {entry.subject_name[:40]!r} breaks the name rules", 0)
        if entry.policy not in _POLICIES:
            raise InvalidEntry(f"unknown room policy {entry.policy[:40]!r}", 0)
        room_id = entry_hash(data)
        creator = RoomMember(name=entry.subject_name, identity_key=entry.signer, admin=True)
        return cls(
            room_id=room_id,
            label=entry.label,
            policy=RoomPolicy(entry.policy),
            creator=entry.signer,
            head=LogHead(0, room_id),
            members={entry.signer: creator},
            banned={},
            self_adds={},
            rules=rules,
        )

    def apply(self, data: bytes) -> None:
        seq = self.head.seq + 1
        if seq >= self.rules.max_entries:
            raise RoomLimitExceeded(f"a room log holds at most {self.rules.max_entries} entries", seq)
        entry = RoomEntry.from_bytes(data, seq)
        if entry.room != self.room_id:
            raise ChainBroken(f"entry {seq} belongs to another room", seq)
        if entry.seq != seq:
            raise ChainBroken(f"expected entry {seq}, got entry {entry.seq}", seq)
        if not hmac.compare_digest(entry.prev, self.head.hash):
            raise ChainBroken(f"entry {seq} does not follow entry {seq - 1} (previous hash differs)", seq)
        if entry.kind is EntryKind.CREATE:
            raise ChainBroken(f"entry {seq} is a second create", seq)
        if entry.label or entry.nonce:
            raise MalformedEntry(f"entry {seq}: only a create entry carries a label and a nonce", seq)
        if entry.kind is not EntryKind.POLICY and entry.policy:
            raise MalformedEntry(f"entry {seq}: only create and policy entries carry a policy", seq)
        entry.verify_signature()
        self._permit(entry, seq)
        self._transition(entry, seq)
        self.head = LogHead(seq, entry_hash(data))

    def _permit(self, entry: RoomEntry, seq: int) -> None:
        signer = self.members.get(entry.signer)
        admin = signer is not None and signer.admin
        kind = entry.kind
        if kind is EntryKind.ADD:
            self_add = entry.signer == entry.subject_ik and self.policy is RoomPolicy.OPEN
            if self_add and not admin and entry.subject_ik in self.banned:
                why = "an admin removed this member; only an admin may add them back"
                raise EntryNotPermitted(f"entry {seq}: {why}", seq)
            if not (admin or self_add):
                why = "only admins add members" + ("" if self.policy is RoomPolicy.OPEN else " to an invite-only room")
                raise EntryNotPermitted(f"entry {seq}: {why}", seq)
            if not admin:
                self._within_reserve(entry, seq)
        elif kind is EntryKind.LEAVE:
            if entry.signer != entry.subject_ik:
                raise EntryNotPermitted(f"entry {seq}: members leave by signing their own leave", seq)
        elif kind is EntryKind.POLICY:
            if not admin or entry.subject_ik != entry.signer:
                raise EntryNotPermitted(f"entry {seq}: only an admin sets the policy, as its own subject", seq)
        elif not admin:  # remove, promote, demote
            raise EntryNotPermitted(f"entry {seq}: only admins {kind.value} members", seq)

    def _within_reserve(self, entry: RoomEntry, seq: int) -> None:
        """A self-add must leave the admins' share of entries and member slots free, and be one of few by its key."""
        rules = self.rules
        reserve = admin_reserve(rules.max_entries)
        if seq >= rules.max_entries - reserve:
            why = f"the last {reserve} of the room's {rules.max_entries} entries are for admins"
            raise RoomLimitExceeded(f"entry {seq}: {why}", seq)
        if len(self.members) >= rules.max_members - admin_reserve(rules.max_members):
            why = f"the last {admin_reserve(rules.max_members)} of {rules.max_members} member slots are for admins"
            raise RoomLimitExceeded(f"entry {seq}: {why}", seq)
        if self.self_adds.get(entry.subject_ik, 0) >= MAX_SELF_ADDS_PER_KEY:
            why = f"one key adds itself to a room at most {MAX_SELF_ADDS_PER_KEY} times"
            raise RoomLimitExceeded(f"entry {seq}: {why}", seq)

    def _transition(self, entry: RoomEntry, seq: int) -> None:
        rules = self.rules
        subject = self.members.get(entry.subject_ik)
        kind = entry.kind
        if kind is EntryKind.ADD:
            if subject is not None:
                raise InvalidEntry(f"entry {seq}: {entry.subject_name[:40]!r} is already a member", seq)
            if not rules.name_ok(entry.subject_name):
                raise InvalidEntry(f"entry {seq}: the name {entry.subject_name[:40]!r} breaks the name rules", seq)
            key = rules.name_key(entry.subject_name)
            if key in self.name_keys:
                taken = self.members[self.name_keys[key]].name
                raise InvalidEntry(f"entry {seq}: {entry.subject_name[:40]!r} looks like member {taken!r}", seq)
            if len(self.members) >= rules.max_members:
                raise RoomLimitExceeded(f"entry {seq}: a room holds at most {rules.max_members} members", seq)
            self.members[entry.subject_ik] = RoomMember(entry.subject_name, entry.subject_ik, admin=False)
            self.name_keys[key] = entry.subject_ik
            self.banned.pop(entry.subject_ik, None)  # only an admin's add gets here for a banned key
            if entry.signer == entry.subject_ik:
                self.self_adds[entry.subject_ik] = self.self_adds.get(entry.subject_ik, 0) + 1
            return
        if subject is None or subject.name != entry.subject_name:
            raise InvalidEntry(f"entry {seq}: {entry.subject_name[:40]!r} with that key is not a member", seq)
        if kind in (EntryKind.REMOVE, EntryKind.LEAVE):
            if kind is EntryKind.REMOVE and entry.subject_ik == entry.signer:
                raise InvalidEntry(f"entry {seq}: an admin leaves with a leave entry, not by removing itself", seq)
            del self.members[entry.subject_ik]
            del self.name_keys[rules.name_key(subject.name)]
            if kind is EntryKind.REMOVE:  # leaving is one's own choice, and an open room takes you back
                self.banned[entry.subject_ik] = subject.name
        elif kind is EntryKind.PROMOTE:
            if subject.admin:
                raise InvalidEntry(f"entry {seq}: {subject.name!r} is already an admin", seq)
            self.members[entry.subject_ik] = RoomMember(subject.name, subject.identity_key, admin=True)
        elif kind is EntryKind.DEMOTE:
            if not subject.admin:
                raise InvalidEntry(f"entry {seq}: {subject.name!r} is not an admin", seq)
            self.members[entry.subject_ik] = RoomMember(subject.name, subject.identity_key, admin=False)
        elif kind is EntryKind.POLICY:
            if entry.policy not in _POLICIES:
                raise InvalidEntry(f"entry {seq}: unknown room policy {entry.policy[:40]!r}", seq)
            self.policy = RoomPolicy(entry.policy)

    def state(self) -> RoomState:
        return RoomState(
            room_id=self.room_id,
            label=self.label,
            policy=self.policy,
            creator=self.creator,
            head=self.head,
            members=MappingProxyType(dict(self.members)),
            banned=MappingProxyType(dict(self.banned)),
            self_adds=MappingProxyType(dict(self.self_adds)),
            rules=self.rules,
        )


_POLICIES = frozenset(policy.value for policy in RoomPolicy)
