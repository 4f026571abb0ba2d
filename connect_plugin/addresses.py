"""Host names and IP addresses: how the HTTP guards and session feedback compare and judge them.

Pure functions without I/O, shared by the settings (which parse host lists and
networks), the ``Host`` allow-list, the trusted-proxy check and the feedback
resolver.  A host is compared in one normal form: lower case, no port, no
brackets, no trailing dot, an IPv6 address in its canonical text.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost"})

#: Cloud instance-metadata services: never a feedback receiver, whatever the settings say.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, Azure, Google Cloud, OpenStack, ...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS instance metadata over IPv6
    "100.100.100.200",  # Alibaba Cloud
))

#: IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and RFC 8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def ip_or_none(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv6 may carry brackets), else None."""
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def normalise_host(text: str) -> str | None:
    """A host as compared, from a ``Host`` header or a setting; None when it is no host at all.

    ``Example.NL.:8443`` -> ``example.nl``; ``[0:0::1]:80`` -> ``::1``; a bare
    IPv6 address (``::1``, as a setting may hold it) is accepted too.
    """
    text = text.strip().lower()
    if not text:
        return None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and _PORT.match(rest[1:]))):
            return None
        address = ip_or_none(inside)
        return str(address) if isinstance(address, ipaddress.IPv6Address) else None
    if text.count(":") > 1:  # a bare IPv6 address: never in a Host header, fine in a setting
        address = ip_or_none(text)
        return str(address) if isinstance(address, ipaddress.IPv6Address) else None
    name, colon, port = text.partition(":")
    if colon and not _PORT.match(port):
        return None
    if name.endswith("."):
        name = name[:-1]
    address = ip_or_none(name)
    if address is not None:
        return str(address)
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return None
    return name


def is_loopback_host(host: str) -> bool:
    """True for a normalised host that can only mean this machine (``localhost``, ``127.x``, ``::1``)."""
    if host in LOOPBACK_NAMES:
        return True
    address = ip_or_none(host)
    return address is not None and _unwrapped(address).is_loopback


def _unwrapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address that traffic to an IPv6 address reaches (IPv4-mapped, NAT64, 6to4), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_public_address(address: IPAddress) -> bool:
    """True for an address on the public internet.

    Never loopback, private, link-local, shared (CGNAT, 100.64/10),
    multicast, reserved, unspecified or documentation addresses, nor a cloud
    metadata service.  An IPv6 address that stands for an IPv4 one is judged
    by that IPv4 address.
    """
    if address in METADATA_ADDRESSES:
        return False
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public_address(inner)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified or address.is_loopback
        or address.is_link_local or address.is_private
    )


def parse_network(text: str) -> IPNetwork | None:
    """``10.0.0.0/8``, ``192.0.2.7`` or ``2001:db8::/32`` as a network (an address is a /32 or /128)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def in_networks(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    """True when the address ``address`` lies in one of ``networks`` (False for anything not an address)."""
    parsed = ip_or_none(address)
    if parsed is None:
        return False
    candidates = {parsed, _unwrapped(parsed)}
    return any(candidate in network for candidate in candidates for network in networks
               if candidate.version == network.version)
