"""The client core's refusals, each with a reason for the user."""

from __future__ import annotations


class SendError(Exception):
    """A message the client refuses to send, with the reason for the user."""


class TrustError(Exception):
    """A trust action (verify, accept) the client refuses, with the reason for the user."""
