"""TLS for the client: the context (``--tls``, ``--cafile``) and the handshake.

TLS hides metadata (names, who talks to whom, sizes) from the network, and
makes the relay prove it is the host the user asked for. It is not what
protects messages: those are end-to-end encrypted with keys the relay never
holds, whether or not TLS is on.

A certificate the client cannot verify (unknown authority, wrong host name,
expired) is refused with one message, ``CERTIFICATE_REFUSED``, documented in
docs/deploy.md, and never bypassed.
"""

from __future__ import annotations

import socket
import ssl
import time

from susurro.transport import TLSStream

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
#: The start of the message for a refused certificate (tests and docs quote it).
CERTIFICATE_REFUSED = "refused the relay's TLS certificate"


class TLSFailed(Exception):
    """The TLS handshake with the relay did not succeed; the message says why."""


class CertificateRefused(TLSFailed):
    """The relay's certificate does not verify for the host name we asked for."""


class TLSSetupError(Exception):
    """The CA file given with ``--cafile`` cannot be used."""


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ context that verifies the relay's certificate and host name.

    With ``cafile`` only the certificate authorities in that PEM file are
    trusted (a relay with its own CA); without it, the system's trust store.
    """
    try:
        context = ssl.create_default_context(cafile=cafile)
    except FileNotFoundError:
        raise TLSSetupError(f"cannot read the CA file {cafile}: no such file") from None
    except PermissionError:
        raise TLSSetupError(f"cannot read the CA file {cafile}: permission denied") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise TLSSetupError(f"cannot use the CA file {cafile}: {reason} (it must hold PEM certificates)") from None
    context.minimum_version = MINIMUM_VERSION
    return context


def secure(sock: socket.socket, context: ssl.SSLContext, host: str, port: int, timeout: float) -> TLSStream:
    """Run the TLS handshake as a client of ``host``; ``TLSFailed`` says why it failed."""
    stream = TLSStream.client(sock, context, server_hostname=host)
    where = f"{host}:{port}"
    try:
        stream.handshake(time.monotonic() + timeout)
    except ssl.SSLCertVerificationError as exc:
        reason = (exc.verify_message or exc.reason or "it does not verify").rstrip(".")  # no ".." below
        raise CertificateRefused(
            f"{CERTIFICATE_REFUSED} for {where}: {reason}. If the relay uses its own certificate "
            "authority, pass that authority's certificate with --cafile FILE; otherwise this may not be your relay."
        ) from None
    except TimeoutError:
        raise TLSFailed(
            f"no TLS handshake from the relay at {where} within {timeout:g} s (is it serving TLS?)"
        ) from None
    except ssl.SSLError as exc:
        reason = (exc.reason or exc.__class__.__name__).lower().replace("_", " ")
        raise TLSFailed(
            f"TLS handshake with the relay at {where} failed: {reason} (is the relay serving TLS on this port?)"
        ) from None
    except OSError as exc:
        raise TLSFailed(f"TLS handshake with the relay at {where} failed: {exc.strerror or exc}") from None
    return stream
