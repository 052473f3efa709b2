"""``susurro``: the Tkinter desktop client, a thin view over the headless core.

``presenter`` decides what to show (pure, tested without a display),
``signin`` loads the key and connects (no Tk), ``worker`` runs blocking jobs
off the Tk thread, and ``window``/``signin_dialog``/``verify_dialog`` only
draw. ``app`` ties them to the core's event queue; ``launcher`` is the command.
Nothing here imports tkinter until the command runs, so a missing Tk is
reported in one line instead of an ImportError.
"""

from .launcher import main

__all__ = ["main"]
