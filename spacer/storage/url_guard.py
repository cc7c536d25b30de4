"""Which addresses a URL download may connect to, checked on the address
that is actually connected.

Whoever writes a task message chooses its URLs, so a worker that fetched
any URL would reach whatever its network reaches: Redis, internal services,
the cloud metadata endpoint. With ``URL_BLOCK_PRIVATE`` on, a download
refuses loopback, private (RFC 1918, RFC 4193), link-local, shared
(100.64/10), multicast, reserved and unspecified addresses, unless
``URL_ALLOWED_NETWORKS`` lists them (e.g. an internal image server). The
cloud metadata addresses are refused even with it off (no image lives
there, and a library caller fetching users' URLs must not leak
credentials), unless allow-listed.

Who is protected by default: ``spacer worker`` turns ``URL_BLOCK_PRIVATE``
on unless the operator set it (``protect_worker``), because a worker obeys
messages from anyone who reaches the broker. Library calls keep pyspacer's
behaviour (off): the caller chose the URL, and fetching from localhost or a
LAN server on a laptop is ordinary.

How the check holds (no DNS rebinding): the host is resolved once, every
address it resolves to is checked (one refused address refuses the URL),
and the socket connects to those checked addresses themselves, never to a
name resolved again. The Host header, TLS SNI and certificate check still
use the hostname. Redirects go through the same connection path, and a
redirect to a scheme other than http(s) is refused. While the check is on,
proxy environment variables are ignored (a proxy would connect for us,
past the check). Ports and credentials in URLs are not restricted: with
the addresses confined, a public host's port reaches only the internet.
"""
from __future__ import annotations

import errno
import http.client
import ipaddress
import os
import socket
import urllib.request
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Union
from urllib.parse import urlparse

from spacer import config
from spacer.exceptions import ConfigError, URLDownloadError

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

ALLOWED_SCHEMES = ('http', 'https')

# Cloud metadata services (AWS, GCP, Azure, OpenStack: 169.254.169.254;
# AWS over IPv6; Alibaba; Azure's WireServer, a public address; Oracle).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    '169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '168.63.129.16',
    '192.0.0.192'))

SHARED_NETWORK = ipaddress.ip_network('100.64.0.0/10')  # carrier-grade NAT
NAT64_NETWORK = ipaddress.ip_network('64:ff9b::/96')  # IPv4 behind a NAT64


class URLRefusedError(URLDownloadError):
    """A URL whose host resolves to an address the settings refuse; raised
    before any connection to it."""

    pyspacer_class = 'spacer.exceptions.URLDownloadError'


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches (IPv4-mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_NETWORK:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def special_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one ('loopback', 'private'...),
    or None when it is."""
    checks = (('metadata', address in METADATA_ADDRESSES),
              ('unspecified', address.is_unspecified),
              ('loopback', address.is_loopback),
              ('link-local', address.is_link_local),
              ('multicast', address.is_multicast),
              ('shared', address in SHARED_NETWORK),
              ('private', address.is_private),
              ('reserved', address.is_reserved),
              ('site-local', getattr(address, 'is_site_local', False)),
              ('non-global', not address.is_global))
    return next((kind for kind, hit in checks if hit), None)


@dataclass(frozen=True)
class AddressPolicy:
    """What the settings allow. ``block_private`` off still refuses the
    metadata addresses; ``allowed`` wins over both."""

    block_private: bool
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls) -> AddressPolicy:
        return cls(bool(config.get('URL_BLOCK_PRIVATE')),
                   parse_networks(config.get('URL_ALLOWED_NETWORKS')))

    def is_allowed(self, address: IPAddress) -> bool:
        reached = [address] + [a for a in [embedded_ipv4(address)] if a is not None]
        return any(a in net for a in reached for net in self.allowed
                   if a.version == net.version)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when it may be connected."""
        if self.is_allowed(address):
            return None
        for reached in (address, embedded_ipv4(address)):
            if reached is None:
                continue
            kind = special_kind(reached)
            if kind == 'metadata' or (kind and self.block_private):
                return f"a {kind} address"
        return None


@lru_cache(maxsize=8)
def parse_networks(text: str | None) -> tuple[IPNetwork, ...]:
    """URL_ALLOWED_NETWORKS: comma-separated addresses or CIDR networks.
    Hostnames are not accepted: a name can resolve elsewhere tomorrow."""
    networks = []
    for entry in (text or '').split(','):
        if entry.strip():
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"URL_ALLOWED_NETWORKS holds {entry.strip()!r}, which is not an IP"
                    f" address or network (e.g. 10.1.2.3 or 10.1.0.0/16).") from None
    return tuple(networks)


def checked_addresses(url: str, host: str, port: int,
                      policy: AddressPolicy) -> list[tuple]:
    """``getaddrinfo``'s answers for (host, port), once; URLRefusedError
    naming the host, the address and the setting when any is refused."""
    # A name that does not resolve raises socket.gaierror, as before.
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split('%')[0])
        reason = policy.refusal(address)
        if reason:
            setting = ('URL_BLOCK_PRIVATE is on' if policy.block_private
                       else 'metadata addresses are always refused')
            raise URLRefusedError(
                f"Refused to download from the URL '{url}': its host {host!r} resolves"
                f" to {address}, {reason} ({setting}; list it in"
                f" SPACER_URL_ALLOWED_NETWORKS to allow it).",
                ValueError(f'address {address} is not allowed'))
    return infos


def connect_checked(url: str, host: str, port: int, timeout: float | None,
                    source_address: tuple | None, policy: AddressPolicy) -> socket.socket:
    """A socket connected to one of the checked addresses of ``host``, as
    ``socket.create_connection`` would, without resolving it again."""
    error: OSError | None = None
    for family, type_, proto, _, sockaddr in checked_addresses(url, host, port, policy):
        sock = socket.socket(family, type_, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            error = e
            sock.close()
    raise error if error is not None else OSError(f'no address for {host!r}')


class GuardedHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, connecting only to checked addresses."""

    policy = AddressPolicy(block_private=False)
    url = ''

    def connect(self) -> None:
        self.sock = connect_checked(self.url, self.host, self.port, self.timeout,
                                    self.source_address, self.policy)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:
                raise
        if self._tunnel_host:
            self._tunnel()


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    """TLS over a checked connection; SNI and the certificate check use
    the hostname, not the address connected."""

    policy = AddressPolicy(block_private=False)
    url = ''

    def connect(self) -> None:
        GuardedHTTPConnection.connect(self)  # type: ignore[arg-type]
        server_hostname = self._tunnel_host or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)


def _guarded(cls: type, policy: AddressPolicy, url: str, *args, **kwargs):
    """A ``cls`` connection for ``url`` (named in refusals), held to ``policy``."""
    connection = cls(*args, **kwargs)
    connection.policy, connection.url = policy, url
    return connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: AddressPolicy):
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request):
        return self.do_open(partial(_guarded, GuardedHTTPConnection, self.policy,
                                    req.full_url), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: AddressPolicy):
        super().__init__()
        self.policy = policy

    def https_open(self, req: urllib.request.Request):
        return self.do_open(partial(_guarded, GuardedHTTPSConnection, self.policy,
                                    req.full_url), req, context=self._context)


class _HTTPOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects to ftp too; only http(s) here. The target
    is then opened by the same guarded handlers, so it is checked again."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlparse(newurl).scheme
        if scheme and scheme not in ALLOWED_SCHEMES:
            raise URLDownloadError(
                f"Failed to download from the URL '{req.full_url}': it redirects to"
                f" '{newurl}'.", ValueError(
                    f"only http and https redirects are followed, not {scheme!r}"))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def opener(policy: AddressPolicy | None = None) -> urllib.request.OpenerDirector:
    """An opener for http(s) only, each connection checked by ``policy``
    (the settings' when None). Proxies from the environment are used only
    while private addresses are not blocked."""
    policy = policy if policy is not None else AddressPolicy.from_settings()
    director = urllib.request.OpenerDirector()
    handlers = [_GuardedHTTPHandler(policy), _GuardedHTTPSHandler(policy),
                _HTTPOnlyRedirectHandler(), urllib.request.HTTPDefaultErrorHandler(),
                urllib.request.HTTPErrorProcessor(), urllib.request.UnknownHandler()]
    if not policy.block_private:
        handlers.insert(0, urllib.request.ProxyHandler())
    for handler in handlers:
        director.add_handler(handler)
    return director


def protect_worker() -> AddressPolicy:
    """For ``spacer worker``: URL_BLOCK_PRIVATE on unless the operator set
    it (environment, secrets.json or Django), in this process and those it
    starts; a bad URL_ALLOWED_NETWORKS fails here, at start."""
    if config.get_config_value('URL_BLOCK_PRIVATE', bool, None) is None:
        os.environ['SPACER_URL_BLOCK_PRIVATE'] = 'true'
        config.URL_BLOCK_PRIVATE = True
    return AddressPolicy.from_settings()
