"""Who is in the room: every member the relay announces passes ``admit`` once.

The relay's word that a key belongs to a name is never enough. Whether a
member arrives in the ``welcome`` roster, in a ``joined`` or as a ``rekeyed``
rotation, ``Members.admit(member, via)`` runs the same checks in the same
order (name, impersonation, duplicates, retired session, certificate, old
certificate, identity key, room size, trust) and returns a ``Verdict``; the
events it produced say the same to the user. Only an admitted member is a
``Peer`` we encrypt to (``peer``: the member and the words of admission).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Iterator

from susurro.crypto import CryptoError, IdentityPublicKey, SessionCertificate, SessionPublicKey, fingerprint, make_box
from susurro.crypto.trust import MAX_AUTO_PINS_PER_DAY, MAX_CONTACTS, TrustState, TrustStore
from susurro.protocol import BadName, Member, name_key, normalize_name
from susurro.protocol.limits import MAX_ROSTER

from . import events as ev
from .events import WarningKind
from .peer import Admission, Peer, Verdict, Via
from .rotation import OwnSessionKeys

#: Ended peer sessions remembered so the relay cannot bring one back (32 bytes each).
MAX_RETIRED_SESSIONS = 65_536


class Members:
    """The verified members present, their indexes, and the sessions that ended.

    ``keys`` are our own session keys (a member holding one is the relay
    impersonating us). ``retire`` is called with every session key that ends
    (a member left, was dropped or rotated), so the owner of the counters
    forgets it too.
    """

    def __init__(
        self,
        own_name: str,
        trust: TrustStore,
        keys: OwnSessionKeys,
        retire: Callable[[SessionPublicKey], None],
        ended: Container[bytes] = (),
    ) -> None:
        """``ended``: session keys that ended before this process (a state file's), refused as ours are."""
        self._own_name_key = name_key(own_name)
        self._keys = keys
        self.trust = trust
        self._retire = retire
        self._ended = ended
        self._peers: dict[str, Peer] = {}
        # Indexes over the peers so checking a roster of n members costs O(n), not O(n**2).
        self._by_name_key: dict[str, str] = {}
        self._by_session_key: dict[SessionPublicKey, str] = {}
        self._by_identity_key: dict[IdentityPublicKey, str] = {}
        self._retired: OrderedDict[SessionPublicKey, None] = OrderedDict()
        self._said_pins_full = False

    # --- reading ------------------------------------------------------------------

    def get(self, name: str) -> Peer | None:
        return self._peers.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._peers

    def __iter__(self) -> Iterator[Peer]:
        return iter(self._peers.values())

    def __len__(self) -> int:
        return len(self._peers)

    def names(self) -> list[str]:
        return sorted(self._peers)

    def as_dict(self) -> dict[str, Peer]:
        """The peers by name (the live table: views and tests read it, only ``admit`` writes it)."""
        return self._peers

    # --- admission ------------------------------------------------------------------

    def admit_roster(self, roster: Iterable[Member], now: float) -> list[ev.Event]:
        """The ``welcome`` roster: each entry admitted once; a name listed twice is trusted in neither copy."""
        out: list[ev.Event] = []
        listed_twice: set[str] = set()
        for member in roster:
            if member.name in self._peers or member.name in listed_twice:
                # Which of the two keys is the real one? Trust neither.
                if member.name in self._peers:
                    self.drop(self._peers[member.name])
                listed_twice.add(member.name)
                out.append(
                    _warning(
                        WarningKind.DUPLICATE_NAME,
                        f"the relay listed {member.name} more than once; messages to this name are blocked",
                        member.name,
                    )
                )
                continue
            out.extend(self.admit(member, Via.ROSTER, now).events)
        return out

    def admit(self, member: Member, via: Via, now: float) -> Admission:
        """Run every check on one announced member, in one order, and apply the verdict.

        ``now`` picks the day whose automatic pinning budget a first sight spends.
        """
        present = self._peers.get(member.name)
        if via is Via.REKEYED and present is None:
            return _refuse(
                Verdict.UNKNOWN,
                WarningKind.UNKNOWN_SENDER,
                f"the relay announced a new session key for {member.name!r}, who is not in the room",
                member.name,
            )
        if present is not None and present.session_key == member.sk:
            return self._repeated(member, present)
        refusal = self._check(member, present)
        if refusal is not None:
            return refusal
        if present is not None and present.identity_key != member.ik:
            # The relay keeps names unique and announces ``left`` first, and a
            # rotation never changes the identity key: this is the relay
            # speaking for someone else. Trust neither key until they rejoin.
            self.drop(present)
            return _refuse(
                Verdict.KEY_CHANGED,
                WarningKind.KEY_CHANGED,
                f"the relay announced {member.name} again with a different identity key "
                f"(fingerprint {fingerprint(IdentityPublicKey(member.ik))}, was {present.fingerprint}) "
                "without them leaving; "
                "this member is ignored until they join again",
                member.name,
            )
        if present is not None and via is Via.REKEYED:
            self._replace_session_key(present, member)
            self.trust.observe(present.name, present.identity_key, present.issued_at, pin=False)
            return Admission(Verdict.ROTATED)
        if present is not None:
            self.drop(present)  # a newer session of the same identity replaces the old one
        elif len(self._peers) >= MAX_ROSTER:
            return _refuse(
                Verdict.ROSTER_FULL,
                WarningKind.ROSTER_FULL,
                f"the relay announced more than {MAX_ROSTER} members; {member.name!r} is ignored",
                member.name,
            )
        peer = Peer(
            name=member.name,
            identity_key=IdentityPublicKey(member.ik),
            session_key=SessionPublicKey(member.sk),
            issued_at=member.issued_at,
            fingerprint=fingerprint(IdentityPublicKey(member.ik)),
        )
        self._add(peer)
        trust_events = self._apply_trust(peer, now)
        if via is Via.JOINED:
            return Admission(Verdict.ADMITTED, [ev.Joined(member=peer.info()), *trust_events])
        return Admission(Verdict.ADMITTED, trust_events)

    def _repeated(self, member: Member, present: Peer) -> Admission:
        """The session we hold, announced again. Never re-admitted (resetting counters would break the
        session), and never silent: the relay announces ``left`` first, so a repeat is a relay that
        misbehaves, and one whose fields or certificate differ is a forgery."""
        try:
            SessionCertificate.of(member).verify()
        except CryptoError as exc:
            return _refuse(
                Verdict.BAD_CERTIFICATE,
                WarningKind.of_crypto(exc.kind),
                f"the relay announced {member.name} again with a certificate that does not hold up: {exc} "
                "(ignored; the session already verified stays)",
                member.name,
            )
        if member.ik != present.identity_key or member.issued_at != present.issued_at:
            return _refuse(
                Verdict.REPEATED,
                WarningKind.IMPERSONATION,
                f"the relay announced {member.name}'s present session key under another identity key or time (ignored)",
                member.name,
            )
        return _refuse(
            Verdict.REPEATED,
            WarningKind.PROTOCOL_ERROR,
            f"the relay announced {member.name} again without them leaving (ignored)",
            member.name,
        )

    def _check(self, member: Member, present: Peer | None) -> Admission | None:
        """The checks that do not depend on how the member was announced; None if all pass."""
        try:
            canonical = normalize_name(member.name)
        except BadName as exc:
            return _refuse(
                Verdict.BAD_NAME, WarningKind.BAD_NAME, f"the relay listed a member with an invalid name: {exc.detail}"
            )
        if canonical != member.name:
            return _refuse(
                Verdict.BAD_NAME,
                WarningKind.BAD_NAME,
                f"the relay listed a member with a non-normalized name {member.name!r}",
            )
        member_key = name_key(member.name)
        if member_key == self._own_name_key or member.sk in self._keys.public_keys():
            return _refuse(
                Verdict.IMPERSONATION,
                WarningKind.IMPERSONATION,
                f"the relay lists another member as us ({member.name!r})",
            )
        other = self._by_name_key.get(member_key)
        if other is not None and other != member.name:
            return _refuse(
                Verdict.DUPLICATE_NAME,
                WarningKind.DUPLICATE_NAME,
                f"the relay listed {member.name!r} while {other!r} is present (member ignored)",
                member.name,
            )
        other = self._by_session_key.get(SessionPublicKey(member.sk))
        if other is None:  # one session per identity key: a second name for one key addresses nobody new
            other = self._by_identity_key.get(IdentityPublicKey(member.ik))
        if other is not None and other != member.name:
            return _refuse(
                Verdict.IMPERSONATION,
                WarningKind.IMPERSONATION,
                f"the relay listed {member.name!r} with {other!r}'s session or identity key (member ignored)",
                member.name,
            )
        if member.sk in self._retired or member.sk in self._ended:
            # Session keys are fresh for every connection: an ended one coming
            # back is the relay replaying an old announcement, which would let
            # it replay that session's messages with their counters reset.
            return _refuse(
                Verdict.STALE_SESSION,
                WarningKind.STALE_SESSION,
                f"the relay re-announced an ended session of {member.name!r} (member ignored)",
                member.name,
            )
        cert = SessionCertificate.of(member)
        try:
            cert.verify()
            make_box(self._keys.current, SessionPublicKey(member.sk))  # refuses all-zero and low-order keys
        except CryptoError as exc:  # BadCertificate or BadPublicKey
            return _refuse(
                Verdict.BAD_CERTIFICATE,
                WarningKind.of_crypto(exc.kind),
                f"{member.name}: {exc} (member ignored)",
                member.name,
            )
        if self._is_old_certificate(member, present):
            return _refuse(
                Verdict.STALE_CERTIFICATE,
                WarningKind.STALE_CERTIFICATE,
                f"the relay announced {member.name!r} with a session certified no later than one already seen "
                "for that identity key (an old session replayed; ignored)",
                member.name,
            )
        return None

    def _is_old_certificate(self, member: Member, present: Peer | None) -> bool:
        """The one "old certificate" test: sessions of one identity are certified in increasing time.

        The trust store remembers the newest ``issued_at`` per pinned key, so
        an ended session cannot come back even across our restarts; the
        present session covers a key that is not pinned.
        """
        if self.trust.is_stale(member.name, member.ik, member.issued_at):
            return True
        return present is not None and present.identity_key == member.ik and member.issued_at <= present.issued_at

    def _apply_trust(self, peer: Peer, now: float) -> list[ev.Event]:
        """Compare a verified member's identity key with the pin; a changed key blocks sending."""
        pinned = self.trust.contact(peer.name)
        # Automatic pins spend a daily budget kept in the trust file, so a relay
        # that announces ghosts (and reconnects to do it again) cannot fill the
        # store; people the user acts on are pinned from a reserve (``remember``).
        may_pin = not self.trust.full and self.trust.auto_pins_left(now) > 0
        peer.trust = self.trust.observe(peer.name, peer.identity_key, peer.issued_at, pin=may_pin, now=now)
        if peer.trust is TrustState.NEW:
            if may_pin or self._said_pins_full:
                return []
            self._said_pins_full = True
            return [
                ev.Warning(
                    kind=WarningKind.TRUST_STORE,
                    detail=(
                        f"your trust store is full ({MAX_CONTACTS} people remembered automatically): people you "
                        f"meet now are remembered only once you message or verify them; remove old contacts from "
                        f"{self.trust.path}"
                        if self.trust.full
                        else f"the relay introduced more than {MAX_AUTO_PINS_PER_DAY} people you had never seen "
                        "today; the others are shown as new and remembered only once you message or verify them"
                    ),
                )
            ]
        if peer.trust is not TrustState.CHANGED or pinned is None:
            return []
        old = fingerprint(IdentityPublicKey(pinned.identity_key))
        return [
            ev.KeyChanged(
                kind=WarningKind.KEY_CHANGED,
                detail=f"{peer.name}'s identity key changed (fingerprint was {old}, now {peer.fingerprint}). "
                "They may have a new device or key file, or the relay is substituting keys. Nothing is "
                f"encrypted to {peer.name} until you compare safety numbers and accept the new key.",
                sender=peer.name,
                name=peer.name,
                old_fingerprint=old,
                new_fingerprint=peer.fingerprint,
            )
        ]

    # --- changes ------------------------------------------------------------------------

    def left(self, name: str) -> list[ev.Event]:
        peer = self._peers.get(name)
        if peer is None:
            return []
        self.drop(peer)
        return [ev.Left(name=name)]

    def drop(self, peer: Peer) -> None:
        """Remove a member and retire its session key for good."""
        del self._peers[peer.name]
        self._by_name_key.pop(name_key(peer.name), None)
        self._by_session_key.pop(peer.session_key, None)
        self._by_identity_key.pop(peer.identity_key, None)
        self._retire_key(peer.session_key)

    def _add(self, peer: Peer) -> None:
        self._peers[peer.name] = peer
        self._by_name_key[name_key(peer.name)] = peer.name
        self._by_session_key[peer.session_key] = peer.name
        self._by_identity_key[peer.identity_key] = peer.name

    def _replace_session_key(self, peer: Peer, member: Member) -> None:
        self._retire_key(peer.session_key)  # the old session key can never come back
        del self._by_session_key[peer.session_key]
        peer.session_key, peer.issued_at = SessionPublicKey(member.sk), member.issued_at
        self._by_session_key[peer.session_key] = peer.name

    def _retire_key(self, session_key: SessionPublicKey) -> None:
        self._keys.forget_peer(session_key)
        self._retire(session_key)
        self._retired[session_key] = None
        if len(self._retired) > MAX_RETIRED_SESSIONS:
            self._retired.popitem(last=False)


def _warning(kind: WarningKind, detail: str, sender: str | None = None) -> ev.Warning:
    return ev.Warning(kind=kind, detail=detail, sender=sender)


def _refuse(verdict: Verdict, kind: WarningKind, detail: str, sender: str | None = None) -> Admission:
    return Admission(verdict, [_warning(kind, detail, sender)])
