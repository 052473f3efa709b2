"""Helpers shared by the tests (none of these modules holds tests).

- ``processes``: the relay and the terminal client as real subprocesses.
- ``hostile_client``: raw-socket clients that break the protocol on purpose.
- ``hostile_relay``: a proxy that tampers with frames between real clients and a real relay.
- ``session_pair``: a socket-free room (a real ``RelayCore`` and real ``ClientSession`` objects).
- ``memory``: in-memory stand-ins for the relay's per-connection outbox.
- ``frame_strategies``: Hypothesis strategies for hostile frame streams.
- ``certs``: a throwaway CA and server certificates for the TLS tests.
- ``gui_driver`` and ``xvfb``: driving the Tk client on a real (virtual) display.
- ``system``: bounded polling and event waits, free loopback ports, descriptor counts, log lines.
- ``docs``: docs/protocol.md and its test-vector blocks.
- ``redis_server``: a real ``redis-server`` on a free loopback port (fixtures ``redis_server``, ``redis_factory``).
- ``offline``: people whose state outlives their sessions, for the mailbox tests (``User``, ``joined``, ``bob_away``).
- ``stores``: each storage backend (SQLite, Redis) opened one way, for contract tests (fixture ``store_backend``).
"""
