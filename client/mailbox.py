"""Messages that wait, on our side (sans-I/O): our prekeys, copies for absent members, our mail.

``Mailbox`` is one part of the session, driven by its frames:

- after ``welcome`` it publishes our signed prekey (``prekeys``), and tops up
  the one-time prekeys whenever the relay says fewer than 10 are left;
- a message for someone who is not connected is signed once, like any other,
  then sealed to a prekey bundle fetched for them (``bundle_fetch``) and
  checked against the identity key we pinned, and posted (``post``); the
  relay's answer becomes a ``Delivery`` with ``waiting`` (or not delivered,
  and why);
- each ``mail`` item is opened with our prekeys, checked like any message
  (and against the sender's pinned key), counted in the sender's stream, and
  confirmed to the relay (``mail_ack``) once its effects are saved;
- every message shown is confirmed to its sender by a signed receipt, and a
  ``receipt`` item in our own mailbox is checked (``client/receipts.py``).

The prekey ring and the mailbox state (``client/mailstate.py``: the waiting
messages already opened, the newest signed prekey seen per contact, who our
messages wait for) are saved through ``save`` before any item is confirmed,
so neither a crash nor a restart can leave a used one-time key behind or let
the relay replay a confirmed item. Bundles and mailboxes are addressed by the
identity key we pinned, never by name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from susurro.crypto import CryptoError, IdentityKey, IdentityPublicKey, ReplayGuard
from susurro.crypto.errors import BadPrekey, MalformedMessage, PrekeyKeyChanged
from susurro.crypto.prekeys import EnvelopeKind, PrekeyFallback, check_bundle, seal_to_prekey
from susurro.crypto.seal import OpenedMessage, SignedMessage, message_block, open_block
from susurro.crypto.trust import TrustState, TrustStore
from susurro.protocol import BundleFetch, Bundles, Frame, Mail, MailAck, MailKind, Post, Posted, PrekeysHeld
from susurro.protocol.mailbox import MAX_FETCH_NAMES, MAX_MAIL_ACK

from . import events as ev
from .clock import wall_clock
from .counters import MAILBOX_VIA, conversation_of
from .events import WarningKind
from .gap_hold import GapHold
from .mailstate import MailState
from .prekeyring import Duplicate, PrekeyRing
from .prekeywire import bundle_from_wire, prekeys_frame
from .receipts import Receipts

#: Messages waiting for their bundles at once; more are refused (the relay is not answering).
MAX_PENDING_WAITING = 1_000
#: One-time prekeys we used, remembered per recipient (a relay handing one out twice is caught).
MAX_USED_PER_RECIPIENT = 1_000


@dataclass(frozen=True, slots=True)
class WaitingCopy:
    name: str
    identity_key: bytes
    counter: int


@dataclass(frozen=True, slots=True)
class _Pending:
    signed: SignedMessage
    copies: tuple[WaitingCopy, ...]


class Mailbox:
    def __init__(
        self,
        identity: IdentityKey,
        name: str,
        trust: TrustStore,
        replay: ReplayGuard,
        ring: PrekeyRing | None = None,
        save: Callable[[Mailbox], None] | None = None,
        state: MailState | None = None,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        """``save`` keeps ``ring`` and ``state`` (``export_state``) on disk; ``clock`` is wall time (seconds)."""
        self._identity = identity
        self._name = name
        self._trust = trust
        self._replay = replay
        #: The replay guard the session shares (mail and live copies count in the same streams).
        self.replay = replay
        #: Gap judgements held while this mailbox drains; each session sets its own (``MailPath``).
        self.gaps = GapHold()
        self.ring = ring if ring is not None else PrekeyRing(identity)
        #: What outlives a restart besides the ring: mail opened, newest prekeys, who our messages wait for.
        self.state = state if state is not None else MailState.empty()
        self._save = save
        self._clock = clock
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        #: Judges a room message that waited (sender, key, trust, opened, now) against the verified logs;
        #: the session sets it (``Incoming.waited_room_message``). None: room mail is refused.
        self.judge_room: Callable[[str, IdentityPublicKey, TrustState, OpenedMessage, float], list[ev.Event]] | None = (
            None
        )
        #: Posts in flight: their recipients' names by identity key (``posted`` names keys only).
        self._posts: OrderedDict[str, dict[bytes, str]] = OrderedDict()
        self._used: dict[bytes, OrderedDict[int, None]] = {}
        self._acks: list[int] = []
        self._receipts = Receipts(identity, name, trust, self.ring, self.state, self._persist)

    # --- our prekeys --------------------------------------------------------------

    def joined(self, now: float) -> list[Frame]:
        """Right after ``welcome``: publish our signed prekey (the relay answers how many one-time keys it holds)."""
        frame = prekeys_frame(self.ring.on_join(now))
        self._persist()
        return [frame]

    def on_prekeys_held(self, frame: PrekeysHeld, now: float) -> list[Frame]:
        publication = self.ring.due(now, frame.one_time)
        if publication is None:
            return []
        self._persist()
        return [prekeys_frame(publication)]

    def _persist(self) -> None:
        if self._save is not None:
            self._save(self)

    def export_state(self) -> bytes:
        """The mailbox state, sealed under a key derived from the identity key."""
        return self.state.seal(self._identity)

    # --- sending to absent members ------------------------------------------------

    def absent_recipient(self, name: str, *, strict: bool) -> tuple[str, bytes] | str:
        """(name as pinned, identity key) to seal a waiting copy to, or why not."""
        contact = self._trust.contact(name)
        if contact is None:
            return f"{name} is not in the room and was never met, so there is no key to seal to"
        if strict and not contact.verified:
            return f"{name} is not verified and strict mode is on (/verify {name})"
        return contact.name, contact.identity_key

    def absent_room_member(self, name: str, identity_key: bytes, *, strict: bool) -> str | None:
        """Why a member of a verified room log who is away gets no waiting copy, or None: they get one.

        The key is the log's (signed by the room's admins); one that differs
        from the key pinned for that name is not sealed to, as online.
        """
        state = self._trust.state(name, identity_key)
        if state is TrustState.CHANGED:
            return f"{name}'s identity key in the room's log is not the one pinned for them"
        if strict and state is not TrustState.VERIFIED:
            return f"{name} is not verified and strict mode is on (/verify {name})"
        return None

    def queue(self, msg_id: str, signed: SignedMessage, copies: list[WaitingCopy]) -> list[Frame]:
        """Ask for the bundles of ``copies``' recipients; the copies are sealed when they come."""
        if len(self._pending) >= MAX_PENDING_WAITING:
            self._pending.popitem(last=False)
        self._pending[msg_id] = _Pending(signed, tuple(copies))
        keys = tuple(dict.fromkeys(c.identity_key for c in copies))
        return [
            BundleFetch(id=msg_id, keys=keys[i : i + MAX_FETCH_NAMES], one_time=True)
            for i in range(0, len(keys), MAX_FETCH_NAMES)
        ]

    def on_bundles(self, frame: Bundles) -> tuple[list[ev.Event], list[Frame]]:
        if self._receipts.asked(frame.id):
            return self._receipts.on_bundle(frame), []
        pending = self._pending.pop(frame.id, None)
        if pending is None:
            detail = f"the relay sent prekey bundles nobody asked for ({frame.id!r})"
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=detail)], []
        events: list[ev.Event] = []
        envelopes: dict[bytes, bytes] = {}
        refused: list[tuple[str, str]] = []
        bundles = {b.ik: b for b in frame.bundles}
        for copy in pending.copies:
            # A bundle under the name but for another key is checked (and refused) rather than
            # ignored, so the sender hears that the relay offered another key, not "no mailbox".
            wire = bundles.get(copy.identity_key) or next((b for b in frame.bundles if b.name == copy.name), None)
            if wire is None:
                refused.append((copy.name, "no_mailbox"))
                continue
            used = self._used.setdefault(copy.identity_key, OrderedDict())
            try:
                checked = check_bundle(
                    bundle_from_wire(wire),
                    copy.identity_key,
                    used_one_time=used,
                    newest_signed=self.state.newest.get(copy.identity_key),
                    now=self._clock(),
                )
            except PrekeyKeyChanged as exc:
                # Refused, never a key change: a bundle is the relay's word alone, so it does not
                # touch the pin and offers nothing to /accept (only a live roster entry can).
                detail = f"{exc}; nothing was sealed to it and your pin for {copy.name} is unchanged"
                events.append(ev.Warning(kind=WarningKind.BAD_PREKEY, detail=detail, sender=copy.name))
                refused.append((copy.name, "bad_prekey"))
                continue
            except BadPrekey as exc:
                events.append(ev.Warning(kind=WarningKind.BAD_PREKEY, detail=str(exc), sender=copy.name))
                refused.append((copy.name, "bad_prekey"))
                continue
            self.state.newest.saw(copy.identity_key, checked.signed)
            if checked.fallback is not PrekeyFallback.NONE:
                events.append(_fallback_warning(copy.name, checked.fallback))
            if checked.one_time is not None:
                used[checked.one_time.key_id] = None
                while len(used) > MAX_USED_PER_RECIPIENT:
                    used.popitem(last=False)
            try:
                envelopes[copy.identity_key] = seal_to_prekey(
                    self._identity, checked, message_block(pending.signed, copy.counter)
                )
            except CryptoError as exc:
                events.append(ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=str(exc), sender=copy.name))
                refused.append((copy.name, exc.kind))
        if refused:
            events.append(ev.Delivery(msg_id=frame.id, delivered=(), missing=(), not_delivered=tuple(refused)))
        frames: list[Frame] = []
        if envelopes:
            self._track_post(frame.id, {c.identity_key: c.name for c in pending.copies if c.identity_key in envelopes})
            frames.append(Post(id=frame.id, kind=MailKind.MESSAGE.value, to=envelopes))
        return events, frames

    def _track_post(self, post_id: str, names: dict[bytes, str]) -> None:
        self._posts[post_id] = names
        while len(self._posts) > MAX_PENDING_WAITING:
            self._posts.popitem(last=False)

    def on_posted(self, frame: Posted) -> list[ev.Event]:
        """The relay's word: stored (waiting) or refused, and why."""
        names = self._posts.pop(frame.id, None)
        if self._receipts.posted(frame.id):
            return []  # a receipt we sent: nothing to report to the user
        if names is None:
            detail = f"the relay reported on a post nobody made ({frame.id!r})"
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=detail)]
        # Keys we did not post to are the relay's invention: not reported as anyone's.
        waiting = [(names[k], k) for k in frame.waiting if k in names]
        refused = tuple((names[k], reason) for k, reason in frame.refused.items() if k in names)
        if waiting:
            self.state.deliveries.waiting(frame.id, waiting)
            self._persist()
        return [
            ev.Delivery(
                msg_id=frame.id,
                delivered=(),
                missing=(),
                waiting=tuple(name for name, _ in waiting),
                not_delivered=refused,
            )
        ]

    # --- our mail -------------------------------------------------------------------

    def on_mail(self, frame: Mail) -> list[ev.Event]:
        """Open one item of our mailbox; it is confirmed (whatever it held) at the next ``flush``."""
        self._acks.append(frame.item)
        if frame.kind == MailKind.RECEIPT.value:
            return self._receipts.on_receipt(frame)
        sender = frame.sender
        contact = self._trust.contact(sender)
        identity_key = contact.identity_key if contact is not None else frame.ik
        now_ms = int(self._clock() * 1000)

        def genuine(kind: EnvelopeKind, block: bytes) -> OpenedMessage:
            if kind is not EnvelopeKind.MESSAGE:  # the kind is hashed into the key: the relay relabelled it
                raise MalformedMessage(f"the relay labelled a {kind.name.lower()} as a message")
            opened = open_block(
                block,
                relay_sender=sender,
                sender_identity_key=identity_key,
                own_name=self._name,
                own_identity_key=self._identity.public,
            )
            # Before the key is used up and the item confirmed: one opened (and confirmed) before
            # is a duplicate even if our streams were lost since; one too old is refused.
            self.state.seen.check(identity_key, opened.inner.msg_id, opened.inner.sent_at, now_ms)
            return opened

        try:
            opened = self.ring.open_with(frame.ct, identity_key, genuine)
        except Duplicate:
            return []  # the relay resent an item we had stored: confirmed again, not shown twice
        except CryptoError as exc:
            kind = WarningKind.KEY_CHANGED if contact is not None and contact.identity_key != frame.ik else None
            return [
                ev.Warning(
                    kind=kind or WarningKind.of_crypto(exc.kind),
                    detail=f"a waiting message from {sender!r} was refused: {exc}",
                    sender=sender,
                )
            ]
        self.state.seen.add(identity_key, opened.inner.msg_id, opened.inner.sent_at, now_ms)
        self._persist()
        inner = opened.inner
        head = inner.head
        trust = TrustState.NEW if contact is None else self._trust.state(sender, identity_key)
        if head is not None:
            # A room message: judged against the room's verified log like one delivered live (a member
            # at the signed head, or held until the log is fetched that far), and counted only then.
            if self.judge_room is None:
                detail = f"a waiting room message from {sender!r} was not shown: this client keeps no room logs"
                return [ev.Warning(kind=WarningKind.UNKNOWN_SENDER, detail=detail, sender=sender)]
            self._first_contact(contact is None, sender, identity_key, now_ms)
            return self.judge_room(sender, IdentityPublicKey(identity_key), trust, opened, now_ms / 1000)
        stream = (identity_key, conversation_of(inner.direct, inner.room))
        try:
            check = self._replay.check(
                None, sender, inner.msg_id, opened.counter, stream, digest=opened.digest, via=MAILBOX_VIA
            )
        except CryptoError as exc:
            return [ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=str(exc), sender=sender)]
        if check.duplicate:  # shown online before; the sender had no receipt and left it here too
            self.shown(sender, identity_key, inner.msg_id)
            return []
        self._first_contact(contact is None, sender, identity_key, now_ms)
        out: list[ev.Event] = [*self.gaps.judge(check, sender, stream, opened.counter, waited=True)]
        out.append(
            ev.Message(
                sender=sender,
                text=inner.body,
                to=inner.recipient_names,
                direct=inner.direct,
                msg_id=inner.msg_id,
                sent_at=inner.sent_at,
                trust=trust,
                waited=True,
                identity_key=identity_key,
            )
        )
        return out

    def _first_contact(self, new: bool, sender: str, identity_key: bytes, now_ms: int) -> None:
        """First contact through the mailbox: the relay chose who mails us, so the pin is charged to
        the automatic daily budget, like a name the relay introduces, never to the reserve only the
        user's own acts spend."""
        if new:
            self._trust.observe(sender, identity_key, 0, now=now_ms / 1000)

    # --- receipts -----------------------------------------------------------------

    def shown(self, sender: str, identity_key: bytes, msg_id: str) -> None:
        """A message from ``sender`` was shown: confirm it to them with the next receipt."""
        self._receipts.shown(sender, identity_key, msg_id)

    def delivered_online(self, confirmed: list[tuple[str, bytes, list[str]]]) -> None:
        """Copies we sent online that these receipts confirmed ((name, identity key, ids)): kept, so the
        ticks outlive our restart as a waited message's do; saved before the receipt item is confirmed."""
        deliveries = self.state.deliveries
        changed = [deliveries.delivered(i, name, key) for name, key, ids in confirmed for i in ids]
        if any(changed):
            self._persist()

    def receipts(self, now_ms: int) -> list[Frame]:
        """One signed receipt per sender for what was shown since the last call (``Receipts.due``)."""
        return self._receipts.due(now_ms)

    def flush(self) -> list[Frame]:
        """Confirm the items handled since the last flush (after their effects were saved)."""
        frames: list[Frame] = []
        while self._acks:
            batch, self._acks = self._acks[:MAX_MAIL_ACK], self._acks[MAX_MAIL_ACK:]
            frames.append(MailAck(items=tuple(batch)))
        return frames


def _fallback_warning(name: str, fallback: PrekeyFallback) -> ev.Warning:
    detail = {
        PrekeyFallback.EXHAUSTED: f"{name} has no one-time prekey left on the relay (or it withheld them): "
        "this waiting message is sealed to the signed prekey only, which keeps it readable longer if "
        f"{name}'s device is later stolen",
        PrekeyFallback.BAD_SIGNATURE: f"the relay offered a one-time prekey for {name} not signed by "
        f"{name}'s key; sealed to the signed prekey only",
        PrekeyFallback.REUSED: f"the relay offered a one-time prekey for {name} that was already used; "
        "sealed to the signed prekey only",
        PrekeyFallback.EXPIRED: f"the relay offered a one-time prekey for {name} past its signed expiry; "
        "sealed to the signed prekey only",
    }[fallback]
    return ev.Warning(kind=WarningKind(fallback.value), detail=detail, sender=name)
