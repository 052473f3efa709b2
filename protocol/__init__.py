"""The Susurro wire protocol, shared by relay and client. Pure: no sockets, no threads.

Bytes go in through ``FrameDecoder`` and ``decode_frame``; frames come out as
validated dataclasses; ``encode`` turns a frame back into bytes.
"""

from .errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from .frames import (
    CLIENT_FRAMES,
    RELAY_FRAMES,
    Ack,
    Bye,
    Challenge,
    Deliver,
    DeliverEncoder,
    Error,
    Frame,
    Hello,
    Joined,
    Keepalive,
    KeepaliveAck,
    Left,
    Member,
    Ping,
    Pong,
    Rekey,
    Rekeyed,
    Send,
    Shutdown,
    Welcome,
    decode_frame,
    encode,
)
from .framing import FrameDecoder, encode_frame
from .names import BadName, name_key, normalize_name

__all__ = [
    "CLIENT_FRAMES",
    "RELAY_FRAMES",
    "Ack",
    "BadName",
    "Bye",
    "Challenge",
    "Deliver",
    "DeliverEncoder",
    "Error",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "Hello",
    "Joined",
    "Keepalive",
    "KeepaliveAck",
    "Left",
    "LocalProtocolError",
    "Member",
    "Ping",
    "Pong",
    "ProtocolError",
    "Rekey",
    "Rekeyed",
    "RemoteProtocolError",
    "Send",
    "Shutdown",
    "Welcome",
    "decode_frame",
    "encode",
    "encode_frame",
    "name_key",
    "normalize_name",
]
