"""Run ``susurro-cli`` as if its machine's clock were ``SECONDS`` ahead (negative: behind).

``python -m tests.helpers.later_clock SECONDS [susurro-cli arguments]``. Only
for tests of real processes that need days to pass without sleeping (a
message that waits eight days): the shipped client has no such switch. The
process's ``time.time`` is shifted before the client is imported, which is
what a machine whose clock is set ahead gives it: the client's one wall
clock (``susurro.client.clock.wall_clock``) reads it, and a constant shift
changes no duration; monotonic time (timeouts, pacing) is not moved.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit("usage: python -m tests.helpers.later_clock SECONDS [susurro-cli arguments]")
    offset = float(argv[0])
    if any(name.startswith("susurro") for name in sys.modules):
        raise SystemExit("later_clock must shift the clock before the client is imported")
    real = time.time
    time.time = lambda: real() + offset
    from susurro.client.cli import main as cli_main

    return cli_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
