"""Byte streams shared by the relay and the client: TLS over a plain socket.

``client`` and ``relay`` never import each other; both need the same TLS
stream, so it lives here. Like ``protocol`` it knows nothing of frames.
"""

from .tls_stream import TLSStream

__all__ = ["TLSStream"]
