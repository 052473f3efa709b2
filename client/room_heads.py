"""A room's heads beyond the log verified here, and whether our sends may be sealed now. Pure.

``rooms.RoomBook`` owns the verified membership log; ``RoomHeads`` holds, for
one room, what was *shown* beyond it:

- the highest head the relay said the room has (``newest``);
- per member by the verified log, the highest head they signed into a
  message (a claim);
- each head signed into a message beyond ours, until a fetch reaches the
  relay's head (``pending``, then ``settle``).

Any of them beyond the verified head holds our own sends (``gate``): sealing
at an older head could reach a member whose removal is being withheld. So
does a member's head with another hash at a seq the log holds (a fork
*claimed*: only two signed entries for one seq prove one, and the message
proves only what its signer signed). A claim holds them ``HEAD_CLAIM_WAIT``
at most and none once its signer is no longer a member, and a signer whose
claim ran out unserved holds nothing more until the relay serves one of its
heads, so one member cannot stop a room for good, nor again and again, by
signing heads that do not exist. No clock and no socket: ``now`` is passed in.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Container, Sequence
from dataclasses import dataclass

from susurro.crypto import RoomState

from .events import WarningKind

#: Messages whose signed head we wait to see in the log, per room (a relay must not grow this).
MAX_PENDING_HEADS = 64
#: Seconds a head signed into a member's message, that the relay will not serve, holds our
#: sends to the room. After that the claim is dropped (its ``room_withheld`` warning stays)
#: and we seal at the verified head again: without a bound one member signing a head that
#: does not exist would stop everyone else sending for good (spec review S4, finding 1).
HEAD_CLAIM_WAIT = 300.0


class SendGate(enum.Enum):
    """May we seal a message to a room now? Only at the newest head we know of."""

    #: The verified head is the newest any member or the relay has shown us.
    OPEN = "open"
    #: A newer head was shown and the log is being fetched: hold the message.
    WAIT = "wait"
    #: A newer head was shown and the relay would not serve it: do not send.
    WITHHELD = "withheld"
    #: Two histories of the room were shown: do not send (a branch we do not follow may remove members).
    FORKED = "forked"


@dataclass(slots=True)
class _Claim:
    """The highest head one member signed into a message, beyond the log verified here."""

    seq: int
    sender: str
    #: When it first held our sends (``HEAD_CLAIM_WAIT`` counts from here; None: not yet).
    since: float | None = None
    #: Another hash at a seq the log holds: the log reaching ``seq`` does not serve it.
    conflict: bool = False


@dataclass(frozen=True, slots=True)
class HeadFinding:
    """A head shown to us that the log, fetched as far as the relay serves it, does not back."""

    #: ``ROOM_WITHHELD`` (the log stops short of it) or ``ROOM_FORK_CLAIMED`` (a member's, another entry there).
    kind: WarningKind
    detail: str
    #: Whose message signed it; None for the relay's own head.
    sender: str | None = None


class RoomHeads:
    """One room's heads beyond the verified log: the relay's newest, members' claims, heads to check."""

    def __init__(self, newest: int = 0) -> None:
        """``newest``: a head known before this run's log was fetched (an earlier run verified it)."""
        #: The highest log seq the relay showed us (its head), whether or not what it served for it verified.
        self.newest = newest
        #: identity key of a member (by the verified log) -> the head it claimed beyond ours.
        self.claims: dict[bytes, _Claim] = {}
        #: (seq, hash, sender, sender's key) of messages signed at a head beyond ours, until the log gets there.
        self.pending: list[tuple[int, bytes, str, bytes]] = []
        #: Members whose claim held our sends for ``HEAD_CLAIM_WAIT`` unserved -> its seq (None: it was
        #: a conflict, which no log can back): they hold nothing more (their heads are only checked)
        #: until the log backs one of their heads.
        self.expired: dict[bytes, int | None] = {}

    def relay_head(self, seq: int) -> None:
        """The relay says the room reaches entry ``seq``.

        Counted even when the entries that should back it do not verify (fail
        closed): a log we cannot follow past a refused entry may hold removals
        after it (spec review S4, finding 4).
        """
        self.newest = max(self.newest, seq)

    def signed(self, seq: int, digest: bytes, sender: str, sender_ik: bytes, members: Container[bytes]) -> None:
        """A message was signed at entry ``seq`` (hash ``digest``), beyond the verified head.

        Only a member by the verified log (``members``) holds our sends with
        it; every such head is checked once the log is fetched (``settle``).
        """
        self._claim(seq, sender, sender_ik, members, conflict=False)
        if len(self.pending) < MAX_PENDING_HEADS:
            self.pending.append((seq, digest, sender, sender_ik))

    def conflicting(self, seq: int, sender: str, sender_ik: bytes, members: Container[bytes]) -> None:
        """A member signed a message at entry ``seq`` of the verified log with another hash: it claims a
        fork, which only two signed entries would prove. It holds our sends as any claim does."""
        self._claim(seq, sender, sender_ik, members, conflict=True)

    def _claim(self, seq: int, sender: str, sender_ik: bytes, members: Container[bytes], *, conflict: bool) -> None:
        if sender_ik not in members or sender_ik in self.expired:  # a non-member's head never holds anything
            return
        claim = self.claims.get(sender_ik)
        if claim is None:
            self.claims[sender_ik] = _Claim(seq, sender, conflict=conflict)
        else:  # a higher claim, or a conflict, does not restart the wait
            claim.seq, claim.conflict = max(seq, claim.seq), claim.conflict or conflict

    def settle(
        self, hashes: Sequence[bytes], verified: int, shown: str, members: Container[bytes] = ()
    ) -> list[HeadFinding]:
        """After a fetch that reached the relay's head: every pending head must be in the log.

        ``hashes[seq]`` is the hash of each verified entry, ``verified`` the
        verified head's seq, ``shown`` the room as the user sees it, ``members``
        the verified log's members (whose heads claim something).
        """
        findings: list[HeadFinding] = []
        for seq, digest, sender, sender_ik in self.pending:
            if seq >= len(hashes):
                detail = (
                    f"{sender} signed a message at entry {seq} of room {shown}, but the relay serves "
                    f"the log only up to entry {verified}: it is withholding membership changes"
                )
                findings.append(HeadFinding(WarningKind.ROOM_WITHHELD, detail, sender))
            elif not hmac.compare_digest(digest, hashes[seq]):
                if sender_ik in members:  # a stranger's head proves nothing: its message is refused anyway
                    self.conflicting(seq, sender, sender_ik, members)
                    detail = claimed_fork(sender, seq, shown)
                    findings.append(HeadFinding(WarningKind.ROOM_FORK_CLAIMED, detail, sender))
            else:
                self.expired.pop(sender_ik, None)  # the relay served a head it signed: it may hold again
        self.pending.clear()
        if not findings and self.newest > verified:
            detail = (
                f"the relay says room {shown} reaches entry {self.newest} but serves it only up to "
                f"entry {verified}: it is withholding membership changes"
            )
            findings.append(HeadFinding(WarningKind.ROOM_WITHHELD, detail))
        return findings

    def drop_claims(self, state: RoomState, now: float) -> None:
        """Claims the log now backs, whose signer is no longer a member, or that held our sends long enough
        (that signer then holds nothing more until the log backs one of its heads)."""
        for ik, seq in list(self.expired.items()):
            if ik not in state.members or (seq is not None and seq <= state.head.seq):
                del self.expired[ik]
        for ik, claim in list(self.claims.items()):
            claim.since = now if claim.since is None else claim.since
            if (not claim.conflict and claim.seq <= state.head.seq) or ik not in state.members:
                del self.claims[ik]
            elif now - claim.since >= HEAD_CLAIM_WAIT:
                del self.claims[ik]
                self.expired[ik] = None if claim.conflict else claim.seq

    def newest_seq(self, verified: int) -> int:
        """The newest head shown to us by anyone, ``verified`` being the log's own."""
        return max(self.newest, verified, *(claim.seq for claim in self.claims.values()))

    def gate(self, state: RoomState, now: float, *, forked: bool, refreshing: bool, catching_up: bool) -> SendGate:
        """Whether a message may be sealed at ``state``'s head now.

        ``forked``: two histories were shown; ``refreshing``: the fetch after a
        reconnect is unanswered; ``catching_up``: a fetch of the log is on its way.
        """
        if forked:
            return SendGate.FORKED
        if refreshing:
            return SendGate.WAIT
        self.drop_claims(state, now)
        if self.newest_seq(state.head.seq) <= state.head.seq and not any(c.conflict for c in self.claims.values()):
            return SendGate.OPEN
        return SendGate.WAIT if catching_up else SendGate.WITHHELD


def claimed_fork(sender: str, seq: int, shown: str) -> str:
    """Why a member's message signed at another entry ``seq`` than the verified one is not shown."""
    return (
        f"{sender} signed a message at entry {seq} of room {shown} with another history than the one verified "
        "here; not shown. Only two signed entries for one seq prove a fork: the log is fetched again, and sends "
        "to the room wait (while they are a member, for a while at most)"
    )
