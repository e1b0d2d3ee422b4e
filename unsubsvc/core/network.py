"""Where a webhook may be sent: public addresses only, and https in production.

A webhook URL is chosen by whoever holds an API key, and the deliverer POSTs
to it from inside the sender's network. Without a policy that is server-side
request forgery: ``http://127.0.0.1:6379/``, ``http://10.0.0.5/admin`` or the
cloud metadata service at ``169.254.169.254`` would all be reached. This
module decides, without any I/O, whether an address or a host name may be
used; the service resolves names and asks it about every address it got.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from unsubsvc.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressKind(StrEnum):
    """What an address is; only PUBLIC may be sent to unless private ones are allowed."""

    PUBLIC = "public"
    LOOPBACK = "loopback"
    #: RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 unique local fc00::/7 (RFC 4193).
    PRIVATE = "private"
    #: 169.254/16 (RFC 3927) and fe80::/10 (RFC 4291 §2.5.6).
    LINK_LOCAL = "link-local"
    #: A cloud provider's instance metadata service (credentials live there).
    METADATA = "metadata"
    UNSPECIFIED = "unspecified"
    MULTICAST = "multicast"
    #: 100.64/10, carrier-grade NAT (RFC 6598): inside some provider's network.
    SHARED = "shared (CGNAT)"
    #: Anything else IANA's special-purpose registries say is not globally reachable.
    RESERVED = "reserved"


#: Instance metadata services: AWS/GCP/Azure/OpenStack/DigitalOcean 169.254.169.254, AWS
#: ECS task metadata 169.254.170.2, AWS DNS 169.254.169.253, AWS over IPv6 fd00:ec2::254,
#: Alibaba Cloud 100.100.100.200, Oracle Cloud 192.0.0.192.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.169.253",
        "169.254.170.2",
        "fd00:ec2::254",
        "fd00:ec2::253",
        "100.100.100.200",
        "192.0.0.192",
    )
)

_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: RFC 6052 §2.1 well-known NAT64 prefix: the last 32 bits are the IPv4 address a
#: NAT64 gateway forwards to. (RFC 8215's local-use 64:ff9b:1::/48 is not global.)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

#: Names that are not on the public Internet whatever a resolver says: "localhost"
#: and its subdomains (RFC 6761 §6.3), mDNS ".local" (RFC 6762), ".home.arpa"
#: (RFC 8375), ".internal" (ICANN's private-use TLD; GCP's metadata.google.internal).
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "metadata", "instance-data"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".home.arpa", ".internal")


@dataclass(frozen=True)
class UrlPolicy:
    """Where webhooks may go: ``https_only`` (production), ``allow_private`` (tests, labs)."""

    https_only: bool = True
    allow_private: bool = False


def parse_address(value: str | IPAddress) -> IPAddress | None:
    """Return ``value`` as an IP address (an IPv6 zone like ``%eth0`` dropped), or None."""
    if not isinstance(value, str):
        return value
    text = value.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def classify(address: str | IPAddress) -> AddressKind:
    """Return what ``address`` is; an IPv4 address embedded in IPv6 is judged as itself.

    Raises ValueError if ``address`` is not an IP address.
    """
    ip = parse_address(address)
    if ip is None:
        raise ValueError(f"not an IP address: {address!r}")
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind = classify(embedded)
            if kind is not AddressKind.PUBLIC:
                return kind
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return kind  # reaches that public IPv4 address
    if ip in METADATA_ADDRESSES:
        return AddressKind.METADATA
    if ip.is_unspecified:
        return AddressKind.UNSPECIFIED
    if ip.is_loopback:
        return AddressKind.LOOPBACK
    if ip.is_link_local:
        return AddressKind.LINK_LOCAL
    if ip.is_multicast:
        return AddressKind.MULTICAST
    if any(ip in net for net in _PRIVATE):
        return AddressKind.PRIVATE
    if ip in _SHARED:
        return AddressKind.SHARED
    if ip in _NAT64_LOCAL:
        return AddressKind.RESERVED
    # The special-purpose registries (RFC 6890) as the ipaddress module knows them.
    if ip.is_reserved or ip.is_private or not ip.is_global:
        return AddressKind.RESERVED
    return AddressKind.PUBLIC


def is_public(address: str | IPAddress) -> bool:
    """Return whether ``address`` is a public Internet address."""
    return classify(address) is AddressKind.PUBLIC


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address leads to: mapped, 6to4 or NAT64."""
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # 2002:aabb:ccdd::/48 (RFC 3056)
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def local_name(host: str) -> bool:
    """Return whether ``host`` names this machine or a private network by convention."""
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)


def check_scheme(scheme: str, policy: UrlPolicy) -> None:
    """Raise InvalidInput unless ``scheme`` is allowed: https, or http outside production."""
    allowed = ("https",) if policy.https_only else ("http", "https")
    if scheme.lower() not in allowed:
        if policy.https_only and scheme.lower() == "http":
            raise InvalidInput("in production a webhook URL must use https://")
        raise InvalidInput("a webhook URL must start with http:// or https://")


def check_host(host: str, policy: UrlPolicy) -> IPAddress | None:
    """Raise InvalidInput for a host that is a non-public literal or a local name.

    Returns the address if ``host`` is an IP literal (nothing to resolve), else None.
    """
    address = parse_address(host)
    if policy.allow_private:
        return address
    if address is not None:
        kind = classify(address)
        if kind is not AddressKind.PUBLIC:
            raise InvalidInput(_refusal(host, kind))
        return address
    if local_name(host):
        raise InvalidInput(f"a webhook cannot be sent to {host!r}: it is not a public host")
    return None


def check_addresses(host: str, addresses: Iterable[str | IPAddress], policy: UrlPolicy) -> None:
    """Raise InvalidInput if any address ``host`` resolved to is not public.

    Every address counts, not only the first: a client may try them in any
    order, and a name with one public and one private address is an attack.
    """
    if policy.allow_private:
        return
    for each in addresses:
        kind = classify(each)
        if kind is not AddressKind.PUBLIC:
            raise InvalidInput(_refusal(host, kind, each))


def _refusal(host: str, kind: AddressKind, address: str | IPAddress | None = None) -> str:
    where = f"{host!r}" if address is None or str(address) == host else f"{host!r} ({address})"
    return (
        f"a webhook cannot be sent to {where}: it is a {kind.value} address, not a public one "
        "(UNSUBSVC_WEBHOOK_ALLOW_PRIVATE=1 allows it, for tests only)"
    )
