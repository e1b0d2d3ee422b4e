"""Which addresses and hosts a webhook may be sent to (``core.network``), without any I/O."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unsubsvc.core.errors import InvalidInput
from unsubsvc.core.network import (
    AddressKind,
    UrlPolicy,
    check_addresses,
    check_host,
    check_scheme,
    classify,
    is_public,
    local_name,
)

STRICT = UrlPolicy(https_only=True, allow_private=False)
DEVELOPMENT = UrlPolicy(https_only=False, allow_private=False)
LAB = UrlPolicy(https_only=False, allow_private=True)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", AddressKind.LOOPBACK),
        ("127.255.0.9", AddressKind.LOOPBACK),
        ("::1", AddressKind.LOOPBACK),
        ("10.1.2.3", AddressKind.PRIVATE),
        ("172.16.0.1", AddressKind.PRIVATE),
        ("172.31.255.254", AddressKind.PRIVATE),
        ("192.168.1.1", AddressKind.PRIVATE),
        ("fc00::1", AddressKind.PRIVATE),
        ("fd12:3456::1", AddressKind.PRIVATE),
        ("169.254.1.1", AddressKind.LINK_LOCAL),
        ("fe80::1", AddressKind.LINK_LOCAL),
        ("fe80::1%eth0", AddressKind.LINK_LOCAL),
        ("169.254.169.254", AddressKind.METADATA),
        ("169.254.170.2", AddressKind.METADATA),
        ("fd00:ec2::254", AddressKind.METADATA),
        ("100.100.100.200", AddressKind.METADATA),
        ("192.0.0.192", AddressKind.METADATA),
        ("0.0.0.0", AddressKind.UNSPECIFIED),
        ("::", AddressKind.UNSPECIFIED),
        ("224.0.0.1", AddressKind.MULTICAST),
        ("ff02::1", AddressKind.MULTICAST),
        ("100.64.0.1", AddressKind.SHARED),
        ("100.127.255.254", AddressKind.SHARED),
        ("::ffff:127.0.0.1", AddressKind.LOOPBACK),
        ("::ffff:10.0.0.1", AddressKind.PRIVATE),
        ("::ffff:169.254.169.254", AddressKind.METADATA),
        ("64:ff9b::7f00:1", AddressKind.LOOPBACK),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", AddressKind.METADATA),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::1", AddressKind.LOOPBACK),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", AddressKind.PRIVATE),  # 6to4 of 192.168.1.1
        ("64:ff9b:1::1", AddressKind.RESERVED),
        ("0.1.2.3", AddressKind.RESERVED),
        ("192.0.2.1", AddressKind.RESERVED),
        ("198.18.0.1", AddressKind.RESERVED),
        ("240.0.0.1", AddressKind.RESERVED),
        ("255.255.255.255", AddressKind.RESERVED),
        ("2001:db8::1", AddressKind.RESERVED),
        ("::127.0.0.1", AddressKind.RESERVED),
        ("93.184.215.14", AddressKind.PUBLIC),
        ("8.8.8.8", AddressKind.PUBLIC),
        ("2606:4700::1111", AddressKind.PUBLIC),
        ("::ffff:93.184.215.14", AddressKind.PUBLIC),
        ("64:ff9b::5db8:d70e", AddressKind.PUBLIC),  # NAT64 of 93.184.215.14
        ("2002:5db8:d70e::1", AddressKind.PUBLIC),
    ],
    ids=lambda value: str(value),
)
def test_classify(address: str, kind: AddressKind) -> None:
    assert classify(address) is kind
    assert is_public(address) is (kind is AddressKind.PUBLIC)


def test_classify_refuses_what_is_not_an_address() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        classify("example.com")


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("metadata.google.internal", True),
        ("printer.local", True),
        ("nas.home.arpa", True),
        ("hooks.example.com", False),
        ("localhost.example.com", False),
    ],
    ids=lambda value: str(value),
)
def test_local_names(host: str, local: bool) -> None:
    assert local_name(host) is local


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("10.0.0.5", "private"),
        ("100.64.0.1", "CGNAT"),
        ("::ffff:127.0.0.1", "loopback"),
        ("localhost", "not a public host"),
        ("metadata.google.internal", "not a public host"),
        ("x.localhost", "not a public host"),
    ],
    ids=lambda value: str(value),
)
def test_check_host_refuses_private_literals_and_local_names(host: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_host(host, DEVELOPMENT)
    check_host(host, LAB)  # allowed for tests and labs


@pytest.mark.parametrize(
    ("host", "literal"),
    [("93.184.215.14", "93.184.215.14"), ("2606:4700::1111", "2606:4700::1111"), ("ex.com", None)],
    ids=["ipv4", "ipv6", "name"],
)
def test_check_host_passes_public_literals_and_names(host: str, literal: str | None) -> None:
    found = check_host(host, STRICT)
    assert (None if found is None else str(found)) == literal


def test_check_addresses_refuses_a_name_with_any_private_address() -> None:
    check_addresses("hooks.example.com", ["93.184.215.14", "2606:4700::1111"], STRICT)
    with pytest.raises(InvalidInput, match=r"'hooks.example.com' \(10.0.0.1\).*private"):
        check_addresses("hooks.example.com", ["93.184.215.14", "10.0.0.1"], STRICT)
    check_addresses("hooks.example.com", ["10.0.0.1"], LAB)


@pytest.mark.parametrize(
    ("scheme", "policy", "allowed"),
    [
        ("https", STRICT, True),
        ("HTTPS", STRICT, True),
        ("http", STRICT, False),
        ("http", DEVELOPMENT, True),
        ("ftp", DEVELOPMENT, False),
        ("http", LAB, True),
    ],
    ids=["https-prod", "upper", "http-prod", "http-dev", "ftp", "http-lab"],
)
def test_check_scheme(scheme: str, policy: UrlPolicy, allowed: bool) -> None:
    if allowed:
        check_scheme(scheme, policy)
    else:
        with pytest.raises(InvalidInput):
            check_scheme(scheme, policy)


def test_the_module_is_pure() -> None:
    code = "import sys, unsubsvc.core.network; assert 'flask' not in sys.modules, 'flask'"
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - fixed argv
