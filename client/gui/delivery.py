"""Where each of your messages is, per recipient: pure, no Tk.

The core reports a message in pieces: the relay's ``ack`` (handed on to who
is online, missing, not encrypted to), the mailbox's answer (waiting, or not
stored and why) and, later, each recipient's signed ``Receipt``. ``Tracked``
folds them into one state per recipient, so the window can show one line
under the message and a tooltip that names everyone.

Only a receipt makes a recipient ``DELIVERED`` (two ticks): it is signed by
the recipient's own client, while everything the relay says can only mean
"queued" (``SENT``, one tick). A later word never moves a recipient back:
a receipt that arrived before the relay's late ack stays delivered.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from susurro.client import events as ev


class DeliveryState(enum.Enum):
    """One recipient's copy of one message, from least to most certain."""

    SENDING = "sending"
    #: The relay took it (handed on to them, as the relay tells it): one tick.
    SENT = "sent"
    #: Sealed to their prekey and kept in their mailbox on the relay until they come back.
    WAITING = "waiting"
    #: Their client signed that it showed it: two ticks.
    DELIVERED = "delivered"
    NOT_DELIVERED = "not_delivered"
    #: Not encrypted to them at all (key changed, strict mode, away from a room).
    NOT_ENCRYPTED = "not_encrypted"


class Why(enum.Enum):
    """Why a copy did not reach someone; the values are the core's and the relay's words."""

    NOT_CONNECTED = "not_connected"
    MAILBOX_FULL = "mailbox_full"
    SENDER_QUOTA = "sender_quota"
    NO_MAILBOX = "no_mailbox"
    DUPLICATE = "duplicate"
    KEY_CHANGED = "key_changed"
    BAD_PREKEY = "bad_prekey"
    NOT_VERIFIED = "not_verified"
    AWAY_FROM_ROOM = "away_from_room"
    # The relay's reasons in an ack, for members of another node of its cluster (docs/protocol.md).
    NOT_PRESENT = "not_present"
    CLUSTER_DOWN = "cluster_down"
    NO_REPORT = "no_report"
    REFUSED = "refused"
    OTHER = "other"

    @classmethod
    def of(cls, reason: str) -> Why:
        try:
            return cls(reason)
        except ValueError:
            return cls.OTHER


#: How sure each state is: a word that is less sure never replaces a surer one.
_RANK = {
    DeliveryState.SENDING: 0,
    DeliveryState.NOT_ENCRYPTED: 1,
    DeliveryState.NOT_DELIVERED: 1,
    DeliveryState.SENT: 2,
    DeliveryState.WAITING: 2,
    DeliveryState.DELIVERED: 3,
}


@dataclass(slots=True)
class Tracked:
    """One own message: each recipient's state and, when it did not reach them, why."""

    recipients: dict[str, tuple[DeliveryState, Why | None]] = field(default_factory=dict)

    def _set(self, name: str, state: DeliveryState, why: Why | None = None) -> None:
        key = _find(self.recipients, name) or name
        old = self.recipients.get(key)
        # A waiting copy that the relay later calls missing, or a receipt followed by a late ack,
        # keeps the surer word; equal ranks take the newer one (the mailbox refusing after the ack).
        if old is not None and _RANK[old[0]] > _RANK[state]:
            return
        self.recipients[key] = (state, why)

    def delivery(self, event: ev.Delivery, *, why_skipped: dict[str, Why]) -> None:
        """Fold in one of the relay's reports; ``why_skipped`` names why each skipped member was."""
        for name in event.delivered:
            self._set(name, DeliveryState.SENT)
        for name in event.missing:
            self._set(name, DeliveryState.NOT_DELIVERED, Why.NOT_CONNECTED)
        for name in event.skipped:
            self._set(name, DeliveryState.NOT_ENCRYPTED, why_skipped.get(name, Why.OTHER))
        for name in event.waiting:
            self._set(name, DeliveryState.WAITING)
        for name, reason in event.not_delivered:
            self._set(name, DeliveryState.NOT_DELIVERED, Why.of(reason))

    def receipt(self, sender: str) -> None:
        self._set(sender, DeliveryState.DELIVERED)

    def summary(self) -> DeliveryState:
        """The state the note leads with: the worst one (something failed), else the least advanced."""
        states = {state for state, _ in self.recipients.values()}
        for state in (
            DeliveryState.NOT_DELIVERED,
            DeliveryState.NOT_ENCRYPTED,
            DeliveryState.SENDING,
            DeliveryState.WAITING,
            DeliveryState.SENT,
            DeliveryState.DELIVERED,
        ):
            if state in states:
                return state
        return DeliveryState.SENDING

    def ok(self) -> bool:
        return not any(
            state in (DeliveryState.NOT_DELIVERED, DeliveryState.NOT_ENCRYPTED) for state, _ in self.recipients.values()
        )

    def groups(self) -> list[tuple[DeliveryState, Why | None, tuple[str, ...]]]:
        """Recipients grouped by (state, why), surest first, names sorted: what the note lists."""
        order = [
            DeliveryState.DELIVERED,
            DeliveryState.SENT,
            DeliveryState.WAITING,
            DeliveryState.SENDING,
            DeliveryState.NOT_DELIVERED,
            DeliveryState.NOT_ENCRYPTED,
        ]
        grouped: dict[tuple[DeliveryState, Why | None], list[str]] = {}
        for name, (state, why) in self.recipients.items():
            grouped.setdefault((state, why), []).append(name)
        out = [(state, why, tuple(sorted(names, key=str.casefold))) for (state, why), names in grouped.items()]
        out.sort(key=lambda group: (order.index(group[0]), group[1].value if group[1] else ""))
        return out


def _find(recipients: Mapping[str, object], name: str) -> str | None:
    """The key ``name`` is tracked under: receipts name the sender as pinned, which may differ in case."""
    if name in recipients:
        return name
    folded = name.casefold()
    return next((key for key in recipients if key.casefold() == folded), None)
