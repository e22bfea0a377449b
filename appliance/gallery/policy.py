"""Which hosts a download may reach: public addresses only, unless `--allow-private-downloads`.

The host is resolved here, every address it resolves to is checked (one private address refuses
the host: DNS answers are the attacker's to choose), and the connection then goes to a checked
address, so a second lookup cannot swap in another one. Private, loopback, link-local, shared
(CGNAT), reserved, documentation, multicast and unspecified addresses are refused, and so are IPv6
forms that embed one of those (IPv4-mapped, NAT64, 6to4, Teredo).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from appliance.gallery.errors import DownloadFailed, DownloadRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: IPAddress) -> bool:
    """Whether `address` (and any IPv4 address it embeds) is a global unicast address."""
    embedded: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
    return all(ip.is_global and not ip.is_multicast for ip in embedded)


@dataclass(frozen=True)
class AddressPolicy:
    """Resolves hosts and vets their addresses; `allow_private` lifts the public-only rule."""

    allow_private: bool = False

    def vet(self, host: str, port: int) -> list[IPAddress]:
        """Every address of `host`, all checked; raises DownloadRefused naming the first bad one."""
        addresses = resolve(host, port)
        if not self.allow_private:
            for address in addresses:
                if not is_public(address):
                    raise DownloadRefused(
                        f"host {host!r} resolves to {address}, a private, loopback or otherwise non-public "
                        "address; downloads reach only public hosts unless --allow-private-downloads is set"
                    )
        return addresses


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host` (an IP literal is itself), in the resolver's order, without repeats."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal.split("%", 1)[0])]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise DownloadFailed(f"cannot resolve host {host!r}: {exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise DownloadFailed(f"host {host!r} has no address")
    return found
