"""Make sure the process may open the file descriptors ``--max-clients`` needs.

Each connection holds one socket; the listener, log files and the
interpreter need a few more. A soft ``RLIMIT_NOFILE`` below that is raised
(up to the hard limit) at start, so the relay does not fail with EMFILE at
the 1,000th connection of a busy evening; if the hard limit is too low, the
relay refuses to start and says what to change.
"""

from __future__ import annotations

#: Descriptors beyond one per connection: listener, logs, stdio, imports, a margin.
FD_HEADROOM = 64


class ResourceLimitError(RuntimeError):
    """The operating system will not give the relay what its flags ask for."""


def descriptors_needed(max_clients: int) -> int:
    return max_clients + FD_HEADROOM


def ensure_fd_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to at least ``needed``; returns the limit now in force."""
    try:
        import resource
    except ImportError:  # not POSIX: nothing to raise, nothing to check
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed if soft == resource.RLIM_INFINITY else soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ResourceLimitError(
            f"the open-file limit is {soft} (hard limit {hard}), but {needed} descriptors are needed "
            f"for this --max-clients; raise it (e.g. 'ulimit -n {needed}' or LimitNOFILE= in the "
            "systemd unit) or lower --max-clients"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed
