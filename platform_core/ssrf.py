"""Server-side request forgery guard for URLs that users give us (webhooks, cloud storage endpoints).

`vet_url(url)` resolves the host (every A/AAAA record, through getaddrinfo, so `2130706433`,
`0x7f.1` or `127.1` are seen as the address they are) and refuses the URL when any address is not
publicly routable: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud
metadata service, fe80::/10), CGNAT (100.64/10), unspecified, multicast, reserved, and those same
addresses embedded in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64). A name that does not resolve is
refused too. An endpoint is let through when settings.SSRF_PROTECTION_ALLOWLIST lists it as
`host:port`, either by the name in the URL or by the address it resolves to.

`pinned_request(vetted, ...)` then sends to the vetted address itself, never resolving the name
again: a DNS answer that changes between the check and the connection (DNS rebinding) cannot
redirect the request. The URL's name still goes in the Host header and, for https, in SNI and the
certificate check. Redirects are never followed.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}
# Not flagged by every Python's ipaddress: shared address space (RFC 6598) and NAT64 prefixes.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_REFUSED_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class UnsafeUrlError(ValueError):
    """The URL is malformed or points somewhere the server must not reach."""


@dataclass(frozen=True)
class VettedUrl:
    url: str
    scheme: str
    host: str  # as written in the URL, lowercased, without IPv6 brackets
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"

    @property
    def request_target(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def allowlist() -> frozenset[str]:
    configured = getattr(settings, "SSRF_PROTECTION_ALLOWLIST", ()) or ()
    if isinstance(configured, str):
        configured = configured.split(",")
    entries = set()
    for entry in configured:
        entry = entry.strip().lower()
        if not entry:
            continue
        host, _, port = entry.rpartition(":")
        entries.add(_endpoint(host.strip("[]"), int(port)) if port.isdigit() else entry)
    return frozenset(entries)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _NAT64):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in embedded if address is not None]


def refusal_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the server must not connect to this address, or None when it is publicly routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            if reason := refusal_reason(inner):
                return f"{reason} (embedded in {ip})"
    checks = (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast), ("reserved", ip.is_reserved), ("private", ip.is_private),
        ("shared (CGNAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
        ("not globally routable", not ip.is_global),
    )
    return next((f"{ip} is a {label} address" for label, hit in checks if hit), None)


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrlError(f"The host {host!r} cannot be resolved.") from exc
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone index
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrlError(f"The host {host!r} cannot be resolved.")
    return tuple(addresses)


def vet_url(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> VettedUrl:
    """Parse, resolve and check a URL; raise UnsafeUrlError saying why it is refused."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeUrlError("Give a URL.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"Malformed URL: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise UnsafeUrlError(f"The URL must start with {' or '.join(f'{s}://' for s in schemes)}.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrlError("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("Credentials in the URL are not allowed; send them in a header.")
    port = port or DEFAULT_PORTS[scheme]
    allowed = allowlist()
    listed = _endpoint(host, port) in allowed
    if not listed and (host in _REFUSED_NAMES or host.endswith(".localhost")):
        raise UnsafeUrlError(f"The host {host!r} is this server.")
    addresses = _resolve(host, port)
    if not listed:
        for address in addresses:
            reason = refusal_reason(ipaddress.ip_address(address))
            if reason and _endpoint(address, port) not in allowed:
                raise UnsafeUrlError(f"The URL points to a non-public address: {reason}.")
    return VettedUrl(url=url.strip(), scheme=scheme, host=host, port=port, addresses=addresses)


@dataclass(frozen=True)
class PinnedResponse:
    status: int
    headers: dict
    body: bytes  # at most `max_body` bytes


def pinned_request(vetted: VettedUrl, *, method: str, body: bytes | None = None, headers: dict | None = None,
                   timeout: float = 5.0, max_body: int = 64 * 1024) -> PinnedResponse:
    """Send one request to the vetted addresses (the first that accepts the connection).

    Connection errors and timeouts propagate as urllib3 exceptions (urllib3.exceptions.HTTPError)."""
    request_headers = {**(headers or {}), "Host": vetted.host_header}
    last_error: Exception | None = None
    for address in vetted.addresses:
        if vetted.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address, vetted.port, timeout=timeout, retries=False, maxsize=1,
                cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                server_hostname=vetted.host, assert_hostname=vetted.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, vetted.port, timeout=timeout, retries=False, maxsize=1)
        try:
            response = pool.urlopen(method, vetted.request_target, body=body, headers=request_headers,
                                    redirect=False, retries=False, preload_content=False, assert_same_host=False)
        except urllib3.exceptions.NewConnectionError as exc:
            last_error = exc  # try the host's next address
            pool.close()
            continue
        try:
            content = response.read(max_body, decode_content=False)
            return PinnedResponse(status=response.status, headers=dict(response.headers), body=content or b"")
        finally:
            response.release_conn()
            pool.close()
    assert last_error is not None
    raise last_error
