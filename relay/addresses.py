"""What address to tell users, and whether a bind is reachable from other hosts.

``0.0.0.0`` and ``::`` are what the relay binds, not what anyone can connect
to; the operator needs the machine's name or address. Stdlib cannot list
interfaces portably, so this offers the host's fully qualified name and the
source address of its default route for each family (found by "connecting"
a UDP socket, which sends nothing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable

# Documentation addresses (RFC 5737, RFC 3849): routable-looking, never used.
_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to those."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def _route_source(family: int, probe: str) -> str | None:
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((probe, 9))
        address = sock.getsockname()[0]
        if not ipaddress.ip_address(address).is_loopback:
            return str(address)
    return None


def addresses_to_share(bound_host: str) -> list[str]:
    """Hosts users can put in ``--server`` for a relay bound to ``bound_host``."""
    try:
        bound = ipaddress.ip_address(bound_host)
    except ValueError:
        return [bound_host]
    if not bound.is_unspecified:
        return [bound_host]
    found: list[str] = []
    name = socket.getfqdn()
    if name and "." in name and not is_loopback(name):
        found.append(name)
    for family, probe in _PROBES:
        if bound.version == 4 and family == socket.AF_INET6:
            continue  # 0.0.0.0 serves IPv4 only
        address = _route_source(family, probe)
        if address is not None:
            found.append(address)
    return found


def announce(
    host: str, port: int, tls: bool, say: Callable[[str], None], log: logging.Logger, flags: str | None = None
) -> None:
    """Print the ``--server`` value(s) to give users; warn about a public bind without TLS.

    ``flags``: what clients add for TLS (``relay.tls.client_flags``: ``--tls``,
    or ``--cafile FILE`` for a certificate the system does not trust).
    """
    flags = (flags if flags is not None else " --tls") if tls else ""
    if is_loopback(host):
        say(f"only this machine can connect: susurro-cli --server {format_address(host, port)}{flags}")
        return
    if not tls:
        log.warning(
            "plaintext-bind addr=%s detail=reachable beyond this machine without TLS: the network sees names, "
            "who talks to whom and when (messages stay end-to-end encrypted); add --tls-cert and --tls-key",
            format_address(host, port),
        )
    shared = addresses_to_share(host)
    for address in shared:
        say(f"users connect with: susurro-cli --server {format_address(address, port)}{flags}")
    if not shared:
        say(f"users connect with: susurro-cli --server THIS-HOST:{port}{flags} (this machine's name or address)")
    if tls:
        say(f"with {flags.split()[0]}, users must give the host name on the relay's certificate")
        if "CA-CERT.pem" in flags:
            say("CA-CERT.pem: the certificate of the authority that signed this relay's certificate")


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
