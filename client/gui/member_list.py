"""The window's member list: the people here, or a room's members, and what the buttons under it forward."""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont

from susurro.client.commands import RoomWord

from .panes import ROOM, fit
from .updates import RosterRows


class MemberList:
    """The member list of ``ChatWindow``."""

    def _set_roster(self, update: RosterRows) -> None:
        selected = self.roster.selection()
        self.roster.delete(*self.roster.get_children())
        self.roster_rows = {row.name: (row.fingerprint, row.trust_label) for row in update.rows}
        self.roster_tips = {row.name: row.tooltip for row in update.rows}
        self.roster_online = {row.name: row.online for row in update.rows}
        self._labels = {row.name: row.label for row in update.rows}
        for row in update.rows:
            tags = (row.trust,) if row.online else (row.trust, "offline")
            self.roster.insert(
                "",
                "end",
                iid=row.name,
                text=row.label,
                image=self.shields[row.trust],
                values=(row.fingerprint, row.trust_label),
                tags=tags,
            )
        self.roster.tag_configure("offline", foreground=self.colours.muted)
        if update.title:
            self.roster_title.set(update.title.upper())
        self.roster_room = update.room
        if update.room:
            self.invite_button.grid(row=0, column=1, sticky="e", padx=(0, 4), pady=(4, 0))
            self.room_buttons.grid()
            self.leave_button.grid(row=1, column=0, columnspan=2, sticky="w", pady=(6, 0))
        else:
            self.invite_button.grid_remove()
            self.room_buttons.grid_remove()
            self.leave_button.grid_remove()
        for column, button in enumerate((self.remove_button, self.promote_button)):
            if update.room and update.admin:
                button.grid(row=0, column=column, sticky="w", padx=(0, 6))
            else:
                button.grid_remove()
        self._refit_roster()
        keep = [iid for iid in selected if self.roster.exists(iid)]
        if keep:
            self.roster.selection_set(keep)

    def _refit_roster(self) -> None:
        width = int(self.roster.column("#0", "width")) - 40  # the indent and the shield
        font = tkfont.nametofont("SunValleyBodyFont", root=self.top)
        for name, label in getattr(self, "_labels", {}).items():
            if self.roster.exists(name):
                self.roster.item(name, text=" " + fit(label, width, font.measure))

    def _roster_tip(self, event: tk.Event) -> str:
        return self.roster_tips.get(self.roster.identify_row(event.y), "")

    def _selected(self) -> str | None:
        selection = self.roster.selection() or ((self.roster.focus(),) if self.roster.focus() else ())
        return selection[0] if selection else None

    def _on_roster_open(self, event: tk.Event) -> str:
        item = self.roster.identify_row(event.y) if event.type == tk.EventType.ButtonPress else ""
        name = item or self._selected()
        if name:
            self.actions.open_direct(name)
            # After the click is over: the tree would otherwise take the focus back.
            self.top.after_idle(self._focus_composer)
        return "break"

    def _focus_composer(self) -> None:
        if self.top.winfo_exists() and self.current != ROOM:
            self.entry.focus_set()

    def _open_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.open_direct(name)

    def _on_member(self, word: RoomWord) -> None:
        """Remove or Make admin the selected member, or leave the room on screen (the app asks first)."""
        if self.roster_room:
            name = "" if word is RoomWord.LEAVE else self._selected()
            if name is not None:
                self.actions.room_member(word, self.roster_room, name)

    def _verify_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.verify(name)
