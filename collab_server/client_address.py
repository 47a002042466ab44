"""Who a connection really comes from: the client address behind trusted proxies.

Behind a balancer every socket arrives from the balancer's address; a per-address quota
would then count all users as one. The balancer names the real client in
``X-Forwarded-For``; that header is believed only when the socket comes from an address in
``trusted_proxies`` (anyone else could write it). The list is read right to left, skipping
trusted hops, and the first untrusted address is the client.

A socket from a trusted address that names no client (a local process, a balancer that
sets no header) cannot be told apart from its neighbours: it is not *attributable*, and
per-address quotas do not apply to it (they would cap the whole deployment instead).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ClientAddress:
    ip: str
    attributable: bool  # False: a trusted proxy or local process that named no client


class TrustedProxies:
    """Addresses and networks (``10.0.0.0/8``) whose forwarding headers are believed; ``*``: any."""

    def __init__(self, spec: str) -> None:
        entries = [item.strip() for item in spec.split(",") if item.strip()]
        self.any = "*" in entries
        self._networks: list[Network] = []
        for entry in entries:
            if entry != "*":
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as exc:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an address or network") from exc

    def __contains__(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def resolve(self, peer: str, forwarded_for: Iterable[str]) -> ClientAddress:
        """The client of a socket from ``peer`` carrying ``X-Forwarded-For`` values (in order)."""
        if peer not in self:
            return ClientAddress(peer, True)
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        if not hops:
            return ClientAddress(peer, False)
        for hop in reversed(hops):
            if hop not in self:
                return ClientAddress(_without_port(hop), True)
        return ClientAddress(_without_port(hops[0]), True)  # every hop trusted: the farthest one


def _without_port(hop: str) -> str:
    if hop.startswith("["):  # [v6]:port
        return hop[1 : hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop


def client_of(trusted: TrustedProxies, client: object, headers: dict[str, str]) -> tuple[ClientAddress, str]:
    """A socket's client (from the ASGI ``client`` and lower-cased headers) and a label for logs."""
    host, port = client if isinstance(client, (tuple, list)) and len(client) == 2 else ("?", "?")
    forwarded = headers.get("x-forwarded-for")
    address = trusted.resolve(str(host), [forwarded] if forwarded else [])
    label = f"{address.ip} via {host}" if address.ip != str(host) else f"{host}:{port}"
    return address, label
