"""The address guard over generated spellings of loopback, private, link-local and other
non-public addresses (hypothesis), resolved by the system's own resolver as a real call is."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lti_tool.outbound import (
    AllowList,
    AllowListError,
    OutboundPolicy,
    OutboundRefused,
    address_problem,
    check_target,
    host_key,
    parse_host_entry,
)

NON_PUBLIC_V4 = [ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.0.0/24",
    "198.18.0.0/15")]
NON_PUBLIC_V6 = [ipaddress.ip_network(n) for n in (
    "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128", "2001:db8::/32")]
STRICT = OutboundPolicy()


def _in(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> st.SearchStrategy:
    return st.integers(0, network.num_addresses - 1).map(
        lambda offset: network.network_address + offset)


non_public_v4 = st.sampled_from(NON_PUBLIC_V4).flatmap(_in)
non_public_v6 = st.sampled_from(NON_PUBLIC_V6).flatmap(_in)


def _spellings(ip: ipaddress.IPv4Address) -> st.SearchStrategy[str]:
    """Ways a URL host can name an IPv4 address that inet_aton and IPv6 parsers accept."""
    a, b, c, d = ip.packed
    value = int(ip)
    return st.sampled_from([
        str(ip),
        str(value),                                  # 2130706433
        hex(value),                                  # 0x7f000001
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",              # 0177.0.0.01
        f"{a}.{(b << 16) | (c << 8) | d}",           # 127.1 style (a.bcd)
        f"{a}.{b}.{(c << 8) | d}",                   # a.b.cd
        f"{hex(a)}.{b}.{c}.{d}",                     # mixed hex
        f"[::ffff:{ip}]",                            # IPv4-mapped
        f"[::ffff:{(value >> 16):x}:{(value & 0xffff):x}]",
        f"[64:ff9b::{ip}]",                          # NAT64
        f"[2002:{(value >> 16):x}:{(value & 0xffff):x}::1]",  # 6to4
        f"[::{ip}]",                                 # IPv4-compatible
    ])


@settings(max_examples=300, deadline=None)
@given(non_public_v4.flatmap(lambda ip: _spellings(ip).map(lambda s: (ip, s))),
       st.sampled_from(["http", "https"]), st.integers(1, 65535))
def test_every_spelling_of_a_non_public_ipv4_address_is_refused(case, scheme, port):
    ip, spelling = case
    with pytest.raises(OutboundRefused):
        check_target(f"{scheme}://{spelling}:{port}/x", STRICT)
    assert address_problem(ip) is not None


@settings(max_examples=200, deadline=None)
@given(non_public_v6, st.integers(1, 65535))
def test_non_public_ipv6_addresses_are_refused(ip, port):
    assert address_problem(ip) is not None
    with pytest.raises(OutboundRefused):
        check_target(f"https://[{ip}]:{port}/", STRICT)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_mapped_and_embedded_forms_judge_like_the_ipv4_address(ip):
    plain = address_problem(ip) is None
    assert (address_problem(ipaddress.IPv6Address(f"::ffff:{ip}")) is None) == plain
    assert (address_problem(ipaddress.IPv6Address(f"64:ff9b::{ip}")) is None) == plain
    value = int(ip)
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 1)
    assert (address_problem(sixtofour) is None) == plain


def test_well_known_public_addresses_pass() -> None:
    for ip in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert address_problem(ip) is None, ip


@settings(max_examples=200, deadline=None)
@given(non_public_v4, st.integers(1, 65535))
def test_the_allow_list_lifts_exactly_what_it_names(ip, port):
    url = f"http://{ip}:{port}/"
    for entry in (str(ip), f"{ip}:{port}", str(ipaddress.ip_network(f"{ip}/24", strict=False))):
        assert check_target(url, OutboundPolicy(allow=AllowList.parse(entry))).ip == ip
    other_port = port % 65535 + 1
    with pytest.raises(OutboundRefused):
        check_target(url, OutboundPolicy(allow=AllowList.parse(f"{ip}:{other_port}")))


@pytest.mark.parametrize("entry", ["127.0.0.1:0", "127.0.0.1:65536", "host:port", "10.0.0.0/33",
                                   "10.0.0.0/8:80", "[::1", "[::1]x", "exa mple.edu", "a_b:"])
def test_bad_allow_list_entries_are_named(entry):
    with pytest.raises(AllowListError) as err:
        AllowList.parse(f"good.example.edu,{entry}")
    assert "LTI_TOOL_OUTBOUND_ALLOW" in str(err.value)


@given(st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,10}){1,3}", fullmatch=True),
       st.one_of(st.none(), st.integers(1, 65535)))
def test_recorded_hosts_are_spelled_one_way(host, port):
    netloc = host if port is None else f"{host}:{port}"
    key = host_key(f"https://{netloc.upper() if port is None else netloc}/x")
    assert key == (host if port in (None, 443) else f"{host}:{port}")
    assert parse_host_entry(netloc) == key
