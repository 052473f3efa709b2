"""Mailboxes and prekeys on the relay: storing, handing out, draining. No sockets.

``MailboxService`` handles the mailbox frames (``protocol/mailbox.py``) for the
core, over the two storage interfaces of ``relay/store/mailbox.py``. It checks
what it can (every published prekey is signed by the identity key the
connection joined with; bounds hold inside the store's transactions) and
hands everything else to the clients, which verify every bundle against the
key they pinned and every envelope they open.

A connection opts in by publishing prekeys (``prekeys``, which every
mailbox-aware client sends after joining): only then is it sent
``prekeys_held``, its mail and ``mail_end``, so an older client never sees a
frame it does not know. Draining: each such member has a window of at most ``WINDOW_ITEMS`` items
sent and not yet confirmed. The service sends its items in mailbox order,
more as it confirms them, ``mail_end`` once the mailbox is empty, and from
then on each new item as it is posted. An item is deleted only when its
owner confirms it (``mail_ack``); whatever is unconfirmed when the connection
ends is sent again at the next join.

Log lines (``post``, ``prekey-fetch``, ``prekeys``, ``mail-drain``) carry
names, counts and sizes: there is no plaintext to log.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from susurro.crypto.errors import BadPrekey
from susurro.crypto.prekeys import ONE_TIME_PREKEY_LOW_WATER, OneTimePrekey, SignedPrekey
from susurro.protocol import (
    BundleFetch,
    Bundles,
    ErrorCode,
    Frame,
    Mail,
    MailAck,
    MailEnd,
    Post,
    Posted,
    Prekeys,
    PrekeysHeld,
    RemoteProtocolError,
    WireBundle,
    WireOneTimePrekey,
    WireSignedPrekey,
    encode,
)
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME

from .peer import Handler, Notify, offer, offer_each
from .peer import Peer as MailPeer
from .store.base import StoreError
from .store.mailbox import (
    DEFAULT_MAILBOX_BYTES,
    DEFAULT_MAILBOX_DAYS,
    DEFAULT_MAILBOX_ITEMS,
    DEFAULT_MAILBOX_PER_SENDER,
    DEFAULT_ONE_TIME_PER_FETCHER,
    MAX_MAILBOX_DAYS,
    MailboxLimits,
    MailboxStore,
    MailKind,
    PrekeyStore,
    Put,
    Refusal,
    Refused,
    Stored,
    StoredBundle,
    StoredOneTimePrekey,
    StoredSignedPrekey,
    TooManyPrekeys,
)

if TYPE_CHECKING:
    from .config import RelayConfig

log = logging.getLogger("susurro.relay")

#: One-time prekeys one connection takes an hour, of anyone (this many identities' daily share,
#: ``MailboxLimits.one_time_per_fetcher``), and message items it stores an hour in all mailboxes
#: (this many senders' share of one mailbox, ``max_per_sender``): with the relay's connections
#: per address, what one host can drain or fill with throwaway identities.
ONE_TIME_SHARES_PER_CONNECTION = 5
POST_SHARES_PER_CONNECTION = 2
#: One source address stores at most this fraction of a mailbox's items in it a day, whatever
#: identities and connections it uses: four throwaway identities must not fill it for everyone.
ADDRESS_SHARE_OF_A_MAILBOX = 4
#: Counters these quotas keep at most (the oldest go first).
MAX_QUOTA_KEYS = 100_000
#: Items sent to a member and not yet confirmed, at most (a drain's flow control).
WINDOW_ITEMS = 64
#: Bytes of items sent and not yet confirmed, at most (well under a member's outbox); with nothing in
#: flight one item goes whatever its size.
WINDOW_BYTES = 256 * 1024


class _Quota:
    """At most ``limit`` per key in each fixed window of ``window`` seconds (memory bounded)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._used: OrderedDict[object, tuple[int, int]] = OrderedDict()

    def take(self, key: object, now: float) -> bool:
        """Spend one for ``key`` now, if any is left in this window."""
        slot = int(now // self.window)
        was_slot, used = self._used.pop(key, (slot, 0))
        used = used if was_slot == slot else 0
        allowed = used < self.limit
        self._used[key] = (slot, used + allowed)
        while len(self._used) > MAX_QUOTA_KEYS:
            self._used.popitem(last=False)
        return allowed

    def forget(self, key: object) -> None:
        self._used.pop(key, None)


@dataclass(eq=False)
class _Drain:
    peer: MailPeer
    cursor: int = 0
    #: Items sent and not yet confirmed -> their bytes.
    in_flight: dict[int, int] = field(default_factory=dict)
    ended: bool = False


def _wire_bundle(bundle: StoredBundle) -> WireBundle:
    spk = bundle.signed
    opk = bundle.one_time
    return WireBundle(
        name=bundle.name,
        ik=bundle.identity_key,
        spk=WireSignedPrekey(id=spk.key_id, pk=spk.public, at=spk.created_at, sig=spk.signature),
        opk=None
        if opk is None
        else WireOneTimePrekey(id=opk.key_id, pk=opk.public, exp=opk.expires_at, sig=opk.signature),
    )


class MailboxService:
    def __init__(
        self,
        mailboxes: MailboxStore,
        prekeys: PrekeyStore,
        online: Callable[[str], MailPeer | None],
        clock: Callable[[], float] = time.time,
        elsewhere: Callable[[Sequence[str]], None] | None = None,
        address_of: Callable[[MailPeer], str | None] = lambda peer: None,
        notify: Notify = offer_each,
    ) -> None:
        """``online(name)`` is the connection holding that name now, if any; ``clock`` is wall time;
        ``elsewhere(names)`` is told the mailbox owners mail was just stored for that do not drain
        here (the core's: they may be connected to another relay node, which then starts their drain);
        ``address_of(peer)`` its source address where the per-address bounds apply (None: exempt);
        ``notify`` offers a frame to owners who may be on another node (their prekeys running low)."""
        self.mailboxes = mailboxes
        self.prekeys = prekeys
        self._online = online
        self._elsewhere = elsewhere
        self._clock = clock
        self._lock = threading.Lock()
        self._drains: dict[int, _Drain] = {}
        limits = mailboxes.limits
        self._per_fetcher = _Quota(limits.one_time_per_fetcher, 86_400)
        self._per_connection_one_time = _Quota(ONE_TIME_SHARES_PER_CONNECTION * limits.one_time_per_fetcher, 3_600)
        self._per_connection_posts = _Quota(POST_SHARES_PER_CONNECTION * limits.max_per_sender, 3_600)
        # Receipts have a share of their own: the relay cannot tell junk labelled "receipt" from one.
        self._per_connection_receipts = _Quota(POST_SHARES_PER_CONNECTION * limits.max_per_sender, 3_600)
        self._per_address_mailbox = _Quota(max(1, limits.max_items // ADDRESS_SHARE_OF_A_MAILBOX), 86_400)
        self._address_of = address_of
        self._notify = notify

    # --- connection lifecycle ----------------------------------------------------

    def _start(self, peer: MailPeer) -> None:
        """A member that publishes prekeys speaks the mailbox protocol: start its drain (once)."""
        with self._lock:
            if id(peer) in self._drains:
                return
            self._drains[id(peer)] = _Drain(peer=peer)
        self._pump(peer)

    def _subscribed(self, peer: MailPeer) -> bool:
        with self._lock:
            return id(peer) in self._drains

    def _drains_elsewhere(self, peer: MailPeer) -> bool:
        """``peer`` is connected here but has not published prekeys (it does not speak the mailbox
        protocol yet): a count is not for it. A member of another node is not connected here."""
        return peer.node is None and not self._subscribed(peer)

    def left(self, peer: MailPeer) -> None:
        with self._lock:
            drain = self._drains.pop(id(peer), None)
            # id() may be reused by a later connection: its quotas start afresh.
            self._per_connection_one_time.forget(id(peer))
            self._per_connection_posts.forget(id(peer))
        if drain is not None and drain.in_flight:
            log.info("mail-unconfirmed name=%s items=%d", peer.name, len(drain.in_flight))

    # --- requests ----------------------------------------------------------------

    def handlers(self) -> dict[type[Frame], Handler]:
        """Mailbox request type -> its handler, for the relay core's dispatch table."""
        requests: dict[type[Frame], Callable[[MailPeer, Any], None]] = {
            Prekeys: self._publish,
            BundleFetch: self._fetch,
            Post: self._post,
            MailAck: self._confirm,
        }
        return {kind: partial(self._guarded, request) for kind, request in requests.items()}

    def handle(self, peer: MailPeer, frame: Frame) -> None:
        """One mailbox request from a joined connection (as the core's table would)."""
        self.handlers()[type(frame)](peer, frame)

    def _guarded(self, request: Callable[[MailPeer, Any], None], peer: MailPeer, frame: Frame) -> None:
        """Run ``request``; a store failure is said to ``peer`` (a refusal raises ``RemoteProtocolError``)."""
        try:
            request(peer, frame)
        except StoreError as exc:
            log.error("mail-store-error name=%s type=%s error=%s", peer.name, frame.TYPE, exc)
            if isinstance(frame, Post):  # say which post failed, so the sender reports it
                refused = {name: ErrorCode.INTERNAL.value for name in frame.to}
                offer(peer, Posted(id=frame.id, waiting=(), refused=refused))
                return
            raise RemoteProtocolError(ErrorCode.INTERNAL, "the relay cannot store mail right now") from None

    def _publish(self, peer: MailPeer, frame: Prekeys) -> None:
        assert peer.name is not None
        # Defence in depth: only keys signed by this connection's identity are
        # stored, so a client cannot leave prekeys others would refuse.
        try:
            if frame.spk is not None:
                spk = frame.spk
                SignedPrekey(key_id=spk.id, public=spk.pk, created_at=spk.at, signature=spk.sig).verify(peer.ik)
            now = self._clock()
            for opk in frame.opks:
                OneTimePrekey(key_id=opk.id, public=opk.pk, expires_at=opk.exp, signature=opk.sig).verify(peer.ik)
                if opk.exp <= now:
                    # Refused, not dropped in silence: the owner's clock is far behind ours, and an
                    # answer of "none held" would have it publish again at once, for ever.
                    raise BadPrekey(f"one-time prekey {opk.id} expired at {opk.exp}; this relay's clock says {now:.0f}")
        except BadPrekey as exc:
            raise RemoteProtocolError(ErrorCode.BAD_PREKEY, str(exc)) from None
        signed = (
            None
            if frame.spk is None
            else StoredSignedPrekey(
                key_id=frame.spk.id, public=frame.spk.pk, created_at=frame.spk.at, signature=frame.spk.sig
            )
        )
        one_time = [
            StoredOneTimePrekey(key_id=k.id, public=k.pk, expires_at=k.exp, signature=k.sig) for k in frame.opks
        ]
        try:
            held = self.prekeys.publish(
                name=peer.name,
                identity_key=peer.ik,
                signed=signed,
                one_time=one_time,
                now=now,
            )
        except TooManyPrekeys as exc:
            raise RemoteProtocolError(ErrorCode.TOO_MANY_PREKEYS, str(exc)) from None
        log.info("prekeys name=%s signed=%d one_time=%d held=%d", peer.name, signed is not None, len(one_time), held)
        offer(peer, PrekeysHeld(one_time=held))
        self._start(peer)

    def _one_time_allowed(self, peer: MailPeer, owner: bytes) -> bool:
        """May ``peer`` take one more of ``owner``'s one-time prekeys? (Drains and Sybils are bounded.)"""
        if owner == peer.ik:
            return False  # nobody needs their own; a client asking is draining itself
        now = self._clock()
        with self._lock:
            return self._per_fetcher.take((peer.ik, owner), now) and self._per_connection_one_time.take(id(peer), now)

    def _fetch(self, peer: MailPeer, frame: BundleFetch) -> None:
        bundles: list[WireBundle] = []
        unknown: list[bytes] = []
        for key in frame.keys:  # distinct: the frame refuses a key listed twice
            one_time = frame.one_time and self._one_time_allowed(peer, key)
            bundle = self.prekeys.take_bundle(key, one_time=one_time, now=self._clock())
            if bundle is None:
                unknown.append(key)
                continue
            bundles.append(_wire_bundle(bundle))
            log.info(
                "prekey-fetch from=%s for=%s one_time=%d remaining=%d%s",
                peer.name,
                bundle.name,
                bundle.one_time is not None,
                bundle.remaining,
                " quota=spent" if frame.one_time and not one_time else "",
            )
            if one_time and bundle.remaining < ONE_TIME_PREKEY_LOW_WATER:
                owner = self._online(bundle.name)
                # The owner drains here, or is a member of another node (never drains here): that node
                # hands it the count, so an owner anywhere in the cluster refills in time.
                if owner is not None and owner.ik == bundle.identity_key and not self._drains_elsewhere(owner):
                    low = encode(PrekeysHeld(one_time=bundle.remaining), max_frame=ABSOLUTE_MAX_FRAME)
                    self._notify([owner], low)
        offer(peer, Bundles(id=frame.id, bundles=tuple(bundles), unknown=tuple(unknown)))

    def _post(self, peer: MailPeer, frame: Post) -> None:
        assert peer.name is not None
        kind = MailKind(frame.kind)
        puts: list[Put] = []
        refused: dict[bytes, str] = {}
        owners: dict[bytes, str] = {}
        limit = self.mailboxes.limits.max_bytes
        now = self._clock()
        for owner_key, ct in frame.to.items():  # distinct keys: the frame refuses one listed twice
            owner_name = self.prekeys.mailbox_owner(owner_key)
            if owner_name is None:
                refused[owner_key] = Refusal.NO_MAILBOX.value
                continue
            if len(ct) > limit:
                refused[owner_key] = Refusal.MAILBOX_FULL.value
                continue
            if not self._may_post(peer, owner_key, kind, now):
                refused[owner_key] = Refusal.SENDER_QUOTA.value
                continue
            owners[owner_key] = owner_name
            puts.append(
                Put(recipient=owner_key, sender=peer.name, sender_key=peer.ik, msg_id=frame.id, kind=kind, ct=ct)
            )
        results = self.mailboxes.put(puts, now) if puts else []
        waiting: list[bytes] = []
        for put, result in zip(puts, results, strict=True):
            if isinstance(result, Stored):
                waiting.append(put.recipient)
            else:
                assert isinstance(result, Refused)
                refused[put.recipient] = result.reason.value
        log.info(
            "post from=%s kind=%s id=%s to=%d waiting=%d refused=%s bytes=%d",
            peer.name,
            kind.value,
            frame.id,
            len(frame.to),
            len(waiting),
            ",".join(f"{k.hex()[:16]}:{r}" for k, r in refused.items()) or "-",
            sum(len(p.ct) for p in puts),
        )
        offer(peer, Posted(id=frame.id, waiting=tuple(waiting), refused=refused))
        not_here: list[str] = []
        for put in puts:
            owner_peer = self._online(owners[put.recipient])
            if owner_peer is not None and owner_peer.ik == put.recipient and self._subscribed(owner_peer):
                self._pump(owner_peer)
            else:
                not_here.append(owners[put.recipient])
        if not_here and self._elsewhere is not None:
            self._elsewhere(not_here)

    def pump(self, peer: MailPeer) -> None:
        """Mail was stored for ``peer`` elsewhere (by another relay node): send it what is new, if it drains."""
        self._pump(peer)

    def _may_post(self, peer: MailPeer, owner_key: bytes, kind: MailKind, now: float) -> bool:
        """Within this connection's hourly share (receipts apart) and its address's daily share of the mailbox?"""
        share = self._per_connection_posts if kind is MailKind.MESSAGE else self._per_connection_receipts
        address = self._address_of(peer)
        with self._lock:
            if address is not None and not self._per_address_mailbox.take((address, owner_key), now):
                return False
            return share.take(id(peer), now)

    def _confirm(self, peer: MailPeer, frame: MailAck) -> None:
        deleted = self.mailboxes.confirm(peer.ik, frame.items)
        with self._lock:
            drain = self._drains.get(id(peer))
            if drain is not None:
                for item in frame.items:
                    drain.in_flight.pop(item, None)
        if deleted != len(frame.items):
            log.info("mail-ack name=%s items=%d deleted=%d", peer.name, len(frame.items), deleted)
        self._pump(peer)

    # --- draining ----------------------------------------------------------------

    def _pump(self, peer: MailPeer) -> None:
        """Send the member's next items in order, up to its window; ``mail_end`` once it is empty."""
        with self._lock:
            drain = self._drains.get(id(peer))
            if drain is None:
                return
            room = WINDOW_ITEMS - len(drain.in_flight)
            sent = sum(drain.in_flight.values())
            if room <= 0 or sent >= WINDOW_BYTES:
                return
            # The store hands out at least one item: with nothing in flight the window always holds
            # one, however large, so one item over WINDOW_BYTES cannot stop a mailbox for good.
            items = self.mailboxes.fetch(
                peer.ik, after=drain.cursor, max_items=room, max_bytes=WINDOW_BYTES - sent, now=self._clock()
            )
            for item in items:
                if drain.in_flight and sent + len(item.ct) > WINDOW_BYTES:
                    break  # it goes once what is in flight is confirmed
                sent += len(item.ct)
                frame = Mail(
                    item=item.item,
                    sender=item.sender,
                    ik=item.sender_key,
                    id=item.msg_id,
                    kind=item.kind.value,
                    ct=item.ct,
                    at=int(item.stored_at),
                )
                offer(peer, frame)
                drain.cursor = item.item
                drain.in_flight[item.item] = len(item.ct)
            if not items and not drain.in_flight and not drain.ended:
                drain.ended = True
                offer(peer, MailEnd())
                log.info("mail-drain name=%s done", peer.name)


# --- flags ---------------------------------------------------------------------------


def add_mailbox_flags(parser: argparse.ArgumentParser, positive: Callable[[int, int | None], object]) -> None:
    group = parser.add_argument_group("mailboxes (messages that wait, stored in SQLite under --data-dir)")
    group.add_argument(
        "--mailbox-messages",
        metavar="N",
        type=positive(1, None),
        default=DEFAULT_MAILBOX_ITEMS,
        help=f"items one identity's mailbox may hold (default {DEFAULT_MAILBOX_ITEMS})",
    )
    group.add_argument(
        "--mailbox-bytes",
        metavar="N",
        type=positive(1024, None),
        default=DEFAULT_MAILBOX_BYTES,
        help=f"bytes one identity's mailbox may hold (default {DEFAULT_MAILBOX_BYTES})",
    )
    group.add_argument(
        "--mailbox-per-sender",
        metavar="N",
        type=positive(1, None),
        default=DEFAULT_MAILBOX_PER_SENDER,
        help=f"items one sender may leave in one mailbox (default {DEFAULT_MAILBOX_PER_SENDER})",
    )
    group.add_argument(
        "--mailbox-prekeys-per-day",
        metavar="N",
        type=positive(1, None),
        default=DEFAULT_ONE_TIME_PER_FETCHER,
        help="one-time prekeys of one member handed to one other member a day "
        f"(default {DEFAULT_ONE_TIME_PER_FETCHER}; past it, the signed prekey alone)",
    )
    group.add_argument(
        "--mailbox-days",
        metavar="DAYS",
        type=positive(1, MAX_MAILBOX_DAYS),
        default=int(DEFAULT_MAILBOX_DAYS),
        help=f"days an unfetched item is kept (default {int(DEFAULT_MAILBOX_DAYS)})",
    )


def mailbox_settings(args: argparse.Namespace) -> dict[str, object]:
    """``RelayConfig`` fields from the parsed mailbox flags."""
    return {
        "mailbox_messages": args.mailbox_messages,
        "mailbox_bytes": args.mailbox_bytes,
        "mailbox_per_sender": args.mailbox_per_sender,
        "mailbox_days": float(args.mailbox_days),
        "mailbox_prekeys_per_day": args.mailbox_prekeys_per_day,
    }


def mailbox_limits(config: RelayConfig) -> MailboxLimits:
    """The store's limits from the relay's config."""
    return MailboxLimits(
        max_items=config.mailbox_messages,
        max_bytes=config.mailbox_bytes,
        max_per_sender=config.mailbox_per_sender,
        ttl=config.mailbox_days * 86_400,
        one_time_per_fetcher=config.mailbox_prekeys_per_day,
    )
