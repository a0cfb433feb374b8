import pytest
from hypothesis import given
from hypothesis import strategies as st

from kplab.packet import (
    ICMP,
    TCP,
    UDP,
    Packet,
    TcpFlags,
    flags_from_str,
    flags_to_str,
    fmt_ip,
    in_cidr,
    ip,
    ip_length,
    parse_cidr,
    parse_ipport,
)


@given(st.integers(0, 2**32 - 1))
def test_ip_round_trip(value: int) -> None:
    assert ip(fmt_ip(value)) == value


def test_cidr() -> None:
    net, mask = parse_cidr("10.1.2.3/8")
    assert in_cidr(ip("10.200.0.1"), net, mask)
    assert not in_cidr(ip("11.0.0.1"), net, mask)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_cidr, "10.0.0.0/33", "bad prefix length 33"),
        (parse_cidr, "10.0.0.0/" + "9" * 5003, "not an IPv4 address"),
        (parse_ipport, "10.0.0.1:65536", "bad port"),
        (parse_ipport, "10.0.0.1:" + "9" * 5003, "bad port"),  # not int()'s 4300-digit limit
        (parse_ipport, "10.0.0.1:\u0663", "bad port"),  # a non-ASCII digit
    ],
)
def test_bad_prefix_and_port_say_what_is_wrong(parse, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_flags() -> None:
    assert flags_from_str("SA") == TcpFlags.SYN | TcpFlags.ACK
    assert flags_to_str(flags_from_str("PA")) == "PA"


def test_icmp_error_quotes_at_most_548_bytes_of_the_datagram() -> None:
    # icmp_send: the error, quote included, fits in 576 bytes (a REJECTed full-sized segment).
    big = Packet(ip("10.0.0.1"), ip("10.0.0.2"), TCP, 40000, 80, length=1448)
    small = Packet(ip("10.0.0.1"), ip("10.0.0.2"), UDP, 40000, 53, length=100)
    assert ip_length(Packet(big.dst, big.src, ICMP, icmp_type=3, inner=big)) == 576
    assert ip_length(Packet(small.dst, small.src, ICMP, icmp_type=3, inner=small)) == 28 + 128
    assert ip_length(Packet(big.src, big.dst, ICMP, icmp_type=8, length=56)) == 84  # ping's echo
