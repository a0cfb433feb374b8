from hypothesis import given
from hypothesis import strategies as st

from kplab.packet import TcpFlags, flags_from_str, flags_to_str, fmt_ip, in_cidr, ip, parse_cidr


@given(st.integers(0, 2**32 - 1))
def test_ip_round_trip(value: int) -> None:
    assert ip(fmt_ip(value)) == value


def test_cidr() -> None:
    net, mask = parse_cidr("10.1.2.3/8")
    assert in_cidr(ip("10.200.0.1"), net, mask)
    assert not in_cidr(ip("11.0.0.1"), net, mask)


def test_flags() -> None:
    assert flags_from_str("SA") == TcpFlags.SYN | TcpFlags.ACK
    assert flags_to_str(flags_from_str("PA")) == "PA"
