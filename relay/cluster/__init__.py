"""What relay processes share through Redis when the relay runs with ``--cluster``.

``connect`` opens the Redis the operator names; ``presence`` keeps who is
connected to which node, with a TTL each node refreshes; ``names`` claims a
member name for one connection of one node at a time; ``streams`` carries a
send's frames to the nodes its recipients are on (one entry per node) and
their delivery reports back. Storage (rooms, mailboxes, prekeys) is
``relay.store.redis`` and ``relay.store.redis_mailbox``. Only ``errors`` is
imported here: a relay without ``--cluster`` needs neither the ``redis``
package nor a running Redis.
"""

from .errors import ClusterConfigError, ClusterError, RedisUnavailable

__all__ = ["ClusterConfigError", "ClusterError", "RedisUnavailable"]
