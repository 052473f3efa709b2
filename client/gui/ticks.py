"""The presenter's delivery notes: the relay's ack, waiting copies and signed receipts per own message."""

from __future__ import annotations

from susurro.client import events as ev

from .delivery import Why
from .room_view import is_room_key
from .updates import DeliveryNote, Update
from .views import Views

#: Receipts kept for messages not on screen yet (their history page may still load); oldest go first.
MAX_EARLY_RECEIPTS = 4_096


class Ticks(Views):
    """Each own message's note, from acks and receipts, including ones that came early."""

    def _receipt(self, event: ev.Receipt) -> list[Update]:
        """``sender``'s client signed that it showed these: two ticks for them, and only then."""
        out: list[Update] = []
        for msg_id in event.msg_ids:
            ref = self._by_msg_id.get(msg_id)
            if ref is None:
                senders = self._early_receipts.setdefault(msg_id, set())
                senders.add(event.sender)
                while len(self._early_receipts) > MAX_EARLY_RECEIPTS:
                    del self._early_receipts[next(iter(self._early_receipts))]
                continue
            sent = self._sent[ref]
            sent.tracked.receipt(event.sender)
            out.append(self._note(ref))
        return out

    def _delivery(self, event: ev.Delivery) -> list[Update]:
        ref = self._by_msg_id.get(event.msg_id)
        if ref is None:  # the ack beat the send job's answer: keep it for ``sent``
            self._early.setdefault(event.msg_id, []).append(event)
            return []
        sent = self._sent[ref]
        in_room = is_room_key(sent.conversation)
        why: dict[str, Why] = {}
        for name in event.skipped:
            if name in self.blocked:
                why[name] = Why.KEY_CHANGED
            elif in_room and name not in self.members:
                why[name] = Why.AWAY_FROM_ROOM
            else:
                why[name] = Why.NOT_VERIFIED
        sent.tracked.delivery(event, why_skipped=why)
        return [self._note(ref)]

    def _note(self, ref: str) -> DeliveryNote:
        """The line under own message ``ref``, and its tooltip naming everyone."""
        s = self.strings
        tracked = self._sent[ref].tracked
        parts: list[str] = []
        details: list[str] = []
        for state, why, names in tracked.groups():
            joined = ", ".join(names)
            reason = s(f"why_{why.value}") if why is not None else ""
            parts.append(s(f"note_{state.value}", names=joined, reason=reason))
            details += [s(f"detail_{state.value}", name=name, reason=reason) for name in names]
        if not parts:  # the relay took it and nobody was there to hand it to
            parts.append(s("note_nobody"))
        detail = "\n".join([s("detail_title"), *details]) if details else ""
        return DeliveryNote(ref=ref, text=" · ".join(parts), ok=tracked.ok(), state=tracked.summary(), detail=detail)

    def sent(self, ref: str, msg_id: str) -> list[Update]:
        """The core accepted message ``ref`` as ``msg_id``; its ack may already be here."""
        self._by_msg_id[msg_id] = ref
        sent = self._sent[ref]
        sent.msg_id = msg_id
        self._shown(self._pane(sent.conversation), msg_id)
        out: list[Update] = []
        for early in self._early.pop(msg_id, []):
            out += self._delivery(early)
        for sender in self._early_receipts.pop(msg_id, set()):
            out += self._receipt(ev.Receipt(sender=sender, msg_ids=(msg_id,)))
        return out

    def send_failed(self, ref: str, reason: str) -> list[Update]:
        return [DeliveryNote(ref=ref, text=self.strings("not_sent", reason=self.strings.reason(reason)), ok=False)]
