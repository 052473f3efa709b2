"""The cluster package's one error base, split by what the operator or the relay does about it."""

from __future__ import annotations


class ClusterError(Exception):
    """Something in the cluster layer failed."""


class ClusterConfigError(ClusterError, ValueError):
    """The ``--cluster`` URL or its password is unusable; the message says what to change. The relay does not start."""


class RedisUnavailable(ClusterError):
    """Redis could not be reached or refused a command. The relay carries on with its own members and
    reports what needed Redis (cross-node recipients, name claims) as not done, with the reason."""
