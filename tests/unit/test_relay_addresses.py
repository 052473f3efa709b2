"""Several relay addresses (``--server a:12345,b:12345``, the nodes of one cluster): which node a
client tries, and the parser, with no sockets (``client/reconnect.py``, ``client/sockets.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client.reconnect import Addresses
from susurro.client.sockets import MAX_ADDRESSES, format_address, parse_address, parse_addresses

A, B, C = ("a.example", 12345), ("b.example", 12346), ("10.0.0.3", 12345)


def test_a_reconnect_tries_the_next_node_first_then_each_in_turn() -> None:
    nodes = Addresses([A, B, C])
    assert nodes.current == A
    assert [nodes.advance() for _ in range(4)] == [B, C, A, B]


def test_after_a_first_connection_to_a_later_node_the_reconnect_moves_on_from_it() -> None:
    nodes = Addresses([A, B, C])
    assert nodes.first_attempts() == [A, B, C]
    nodes.settle(B)  # A did not answer at first
    assert nodes.advance() == C


def test_one_address_is_that_address_every_time() -> None:
    nodes = Addresses([A])
    assert [nodes.advance() for _ in range(3)] == [A, A, A]
    with pytest.raises(ValueError):
        Addresses([])


def test_the_list_parses_each_address_as_one_would_and_drops_repeats() -> None:
    assert parse_addresses("a.example:12345, b.example:12346,[::1]:7,a.example:12345") == [
        A,
        B,
        ("::1", 7),
    ]
    assert parse_addresses("relay.example") == [("relay.example", 12345)]
    too_many = ",".join(f"a:{port}" for port in range(1, MAX_ADDRESSES + 2))
    for bad in ("", " , ", "a:0", "a:1,:2", too_many):
        with pytest.raises(ValueError):
            parse_addresses(bad)


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True)
ports = st.integers(1, 65535)


@given(st.lists(st.tuples(hosts, ports), min_size=1, max_size=MAX_ADDRESSES, unique=True), st.sampled_from([",", ", "]))
def test_any_list_of_addresses_round_trips(addresses: list[tuple[str, int]], separator: str) -> None:
    assert parse_addresses(separator.join(f"{host}:{port}" for host, port in addresses)) == addresses


v6_hosts = st.ip_addresses(v=6).map(str)


@given(st.tuples(hosts | v6_hosts, ports))
def test_an_address_shown_reads_back_as_itself(address: tuple[str, int]) -> None:
    """What the ``connected`` event shows of the node in use is a ``--server`` entry for it."""
    assert parse_address(format_address(address)) == address


@given(st.text(max_size=200))
def test_any_text_parses_or_says_why(text: str) -> None:
    try:
        parsed = parse_addresses(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert 1 <= len(parsed) <= MAX_ADDRESSES and all(0 < port < 65536 for _, port in parsed)
