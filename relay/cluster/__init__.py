"""What relay processes share through Redis when the relay runs with ``--cluster``.

``connect`` opens the Redis the operator names; ``presence`` keeps who is
connected to which node, with a TTL each node refreshes; ``names`` claims a
member name for one node at a time. Storage (rooms) is ``relay.store.redis``.
Nothing here is imported unless the relay is clustered, so a relay without
``--cluster`` neither needs the ``redis`` package nor a running Redis.
"""
