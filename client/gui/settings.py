"""What the GUI remembers between runs: last name, relay, key file, window size, sidebar width, notifications, theme.

Kept in ``$SUSURRO_HOME/gui.json``. Nothing secret goes here (never the
passphrase). A missing or damaged file just means defaults: preferences are
not worth refusing to start over.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from susurro.client.home import susurro_home

KEYS = ("name", "relay", "identity", "geometry", "sash", "notifications", "theme")
MAX_SETTINGS_BYTES = 64 * 1024


def settings_path() -> Path:
    return susurro_home() / "gui.json"


class Settings:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings_path()
        self.values: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            if self.path.stat().st_size <= MAX_SETTINGS_BYTES:
                loaded = json.loads(self.path.read_text("utf-8"))
                if isinstance(loaded, dict):
                    self.values = {k: v for k, v in loaded.items() if k in KEYS and isinstance(v, str | int)}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def update(self, **values: Any) -> None:
        """Set and save at once (atomically: a crash never leaves half a file)."""
        self.values.update({k: v for k, v in values.items() if k in KEYS and v is not None})
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(self.values, indent=1) + "\n", "utf-8")
            os.replace(temp, self.path)
