"""The address a request comes from, for the failed-authentication throttle.

The peer's address is the truth unless the peer is a proxy we were told to trust:

* on Lambda behind the Web Adapter (`AWS_LWA_PORT` is set and the peer is loopback: the adapter itself), the
  adapter's `x-amzn-request-context` header holds the request context of the Function URL (`http.sourceIp`) or of
  API Gateway (`identity.sourceIp`), else the right-most `x-forwarded-for` entry (the one AWS's front end added);
* when the peer is listed in `TRUSTED_PROXY_IPS`, the right-most `x-forwarded-for` entry that is not itself a
  trusted proxy (entries to its left were written by the client and prove nothing); with `*` every peer on a
  private network (loopback, RFC 1918, link-local, IPv6 ULA: where reverse proxies and containers sit) is one proxy
  and its own (right-most) entry is taken. A peer with a public address is never trusted by `*`: it could name any
  address it likes. Anyone who can reach the gateway directly from a private network still can, so `*` is only for
  a gateway reachable through its proxies alone; list the proxies' addresses otherwise. (What a forged address
  buys since valid keys pass blocked addresses: it moves where its own guesses are counted, nothing more.)
* otherwise headers are ignored: a client cannot pose as another address (and so lock its owner out).

IPv6 addresses count by their /64 network: one subscriber usually holds a whole /64 and could rotate through it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.types import Scope

UNKNOWN = "unknown"


def normalise(raw: str) -> str | None:
    """The address as counted (IPv4, or the IPv6 /64 network), None when `raw` is not an IP address."""
    try:
        address = ipaddress.ip_address(raw.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _forwarded_for(scope: Scope) -> list[str]:
    """Every `x-forwarded-for` entry, left to right, over all such headers."""
    entries: list[str] = []
    for key, value in scope.get("headers") or ():
        if key == b"x-forwarded-for":
            entries += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    return entries


def _context_source_ip(raw: str) -> str | None:
    try:
        context = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(context, dict):
        return None
    for section in ("http", "identity"):  # Function URL / HTTP API v2, then API Gateway REST
        part = context.get(section)
        if isinstance(part, dict) and isinstance(part.get("sourceIp"), str):
            return normalise(part["sourceIp"])
    return None


def parse_trusted(setting: str) -> frozenset[str]:
    """`TRUSTED_PROXY_IPS`: comma-separated addresses (normalised like sources), or `*`."""
    trusted = set()
    for part in setting.split(","):
        part = part.strip()
        if part == "*":
            trusted.add("*")
        elif part:
            address = normalise(part)
            if address is None:
                raise ValueError(f"{part!r} is not an IP address")
            trusted.add(address)
    return frozenset(trusted)


def _private(peer: str) -> bool:
    address = ipaddress.ip_network(peer, strict=False).network_address
    return address.is_private or address.is_loopback or address.is_link_local


def source_address(scope: Scope, trusted: Iterable[str] = (), behind_web_adapter: bool = False) -> str:
    """Where the request comes from, as the throttle counts it."""
    client = scope.get("client")
    peer = normalise(client[0]) if client else None
    if peer is None:
        return UNKNOWN
    trusted_set = frozenset(trusted)
    if behind_web_adapter and ipaddress.ip_address(peer.split("/")[0]).is_loopback:
        from_context = _context_source_ip(_header(scope, b"x-amzn-request-context"))
        if from_context:
            return from_context
        forwarded = _forwarded_for(scope)
        return (normalise(forwarded[-1]) if forwarded else None) or peer
    if "*" in trusted_set and _private(peer):  # any private peer is a proxy: one hop, its own entry
        forwarded = _forwarded_for(scope)
        return (normalise(forwarded[-1]) if forwarded else None) or peer
    if peer in trusted_set:
        for entry in reversed(_forwarded_for(scope)):
            address = normalise(entry)
            if address is None:
                break  # garbage from here on leftwards: stop at the last trusted hop
            if address not in trusted_set:
                return address
            peer = address
    return peer
