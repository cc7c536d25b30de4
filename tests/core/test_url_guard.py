"""URL downloads refuse addresses the settings do not allow, on the address
actually connected, on every redirect, before any connection.

No test sends a packet outside 127.0.0.0/8: names resolve through a stub,
numeric hosts only with AI_NUMERICHOST (no DNS), and a recording
``connect`` refuses any other address instead of connecting to it.
"""
from __future__ import annotations

import http.server
import ipaddress
import os
import socket
import ssl
import subprocess
import threading

import pytest

from spacer import config
from spacer.exceptions import ConfigError, URLDownloadError
from spacer.storage import URLStorage
from spacer.storage.url_guard import (
    AddressPolicy, URLRefusedError, embedded_ipv4, parse_networks, protect_worker)

REAL_GETADDRINFO = socket.getaddrinfo
REAL_CONNECT = socket.socket.connect


class _Server(http.server.BaseHTTPRequestHandler):
    """/ok answers; /to?URL redirects there. Records each request's Host."""

    hosts: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).hosts.append(self.headers.get('Host'))
        if self.path.startswith('/to?'):
            self.send_response(302)
            self.send_header('Location', self.path[len('/to?'):])
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header('Content-Length', '5')
        self.end_headers()
        self.wfile.write(b'hello')


@pytest.fixture
def server():
    _Server.hosts = []
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def net(monkeypatch):
    """Stubbed resolver and recorded connections. ``net.names`` maps a
    made-up name to the address list each lookup returns in turn."""

    class Net:
        names: dict[str, list[list[str]]] = {}
        lookups: list[str] = []
        connects: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        Net.lookups.append(host)
        if host in Net.names:
            answers = Net.names[host]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_STREAM,
                     6, '', (a, port) if ':' not in a else (a, port, 0, 0))
                    for a in addresses]
        # Never DNS: numeric hosts only.
        return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    def connect(sock, address):
        Net.connects.append(address[0])
        if not ipaddress.ip_address(address[0]) in ipaddress.ip_network('127.0.0.0/8'):
            raise AssertionError(f'a test tried to connect to {address[0]}')
        return REAL_CONNECT(sock, address)

    def create_connection(address, *args, **kwargs):
        Net.connects.append(str(address[0]))
        raise AssertionError('the guard must not resolve again through create_connection')

    monkeypatch.setattr(socket, 'getaddrinfo', getaddrinfo)
    monkeypatch.setattr(socket.socket, 'connect', connect)
    monkeypatch.setattr(socket, 'create_connection', create_connection)
    Net.names, Net.lookups, Net.connects = {}, [], []
    return Net


@pytest.fixture
def guarded(monkeypatch):
    """URL_BLOCK_PRIVATE on; ``guarded(allowed)`` sets the allow-list."""
    monkeypatch.setattr(config, 'URL_BLOCK_PRIVATE', True)
    monkeypatch.setattr(config, 'URL_ALLOWED_NETWORKS', None)
    return lambda allowed: monkeypatch.setattr(config, 'URL_ALLOWED_NETWORKS', allowed)


REFUSED = ['10.0.0.1', '192.168.1.5', '172.16.0.1', '169.254.169.254', '100.64.0.1',
           'fd00:ec2::254', '::1', '0.0.0.0', '224.0.0.1', '::ffff:10.0.0.1', '127.0.0.1',
           '::ffff:127.0.0.1', '::', 'fe80::1', '240.0.0.1', '255.255.255.255',
           '2002:a00:1::1', '64:ff9b::a9fe:a9fe', '192.0.0.192', '100.100.100.200']


@pytest.mark.parametrize('address', REFUSED)
def test_a_refused_address_is_refused_before_any_connection(net, guarded, address):
    net.names['images.example.test'] = [[address]]
    url = 'http://images.example.test:8080/photo.jpg'
    with pytest.raises(URLRefusedError) as info:
        URLStorage().load(url)
    text = str(info.value)
    assert "'images.example.test'" in text and str(ipaddress.ip_address(address)) in text
    assert 'URL_BLOCK_PRIVATE' in text and 'URL_ALLOWED_NETWORKS' in text
    assert net.connects == [] and net.lookups == ['images.example.test']
    assert isinstance(info.value, URLDownloadError)
    assert not URLStorage().exists(url) and net.connects == []


def test_one_refused_address_among_several_refuses_the_name(net, guarded):
    net.names['mixed.example.test'] = [['127.0.0.1', '10.0.0.1']]
    guarded('127.0.0.1')
    with pytest.raises(URLRefusedError, match='10.0.0.1'):
        URLStorage().load('http://mixed.example.test/x')
    assert net.connects == []


@pytest.mark.parametrize('host', ['127.0.0.1', '2130706433', '0x7f.1', '127.1', '[::1]',
                                  '[::ffff:127.0.0.1]'])
def test_loopback_in_any_spelling_is_refused_and_the_server_sees_nothing(
        net, guarded, server, host):
    with pytest.raises(URLRefusedError):
        URLStorage().load(f'http://{host}:{server}/ok')
    assert net.connects == [] and _Server.hosts == []


def test_an_allowed_address_is_fetched_with_the_hostname_in_the_host_header(
        net, guarded, server):
    net.names['images.example.test'] = [['127.0.0.1']]
    guarded('127.0.0.0/8, 10.1.2.3')
    assert URLStorage().load(f'http://images.example.test:{server}/ok').read() == b'hello'
    assert net.connects == ['127.0.0.1']
    assert _Server.hosts == [f'images.example.test:{server}']


def test_dns_rebinding_connects_only_to_the_address_checked(net, guarded, server):
    """The name answers 127.0.0.1 (allowed), then 10.0.0.1: each download
    resolves once and connects to what it checked; the second is refused."""
    net.names['rebind.example.test'] = [['127.0.0.1'], ['10.0.0.1']]
    guarded('127.0.0.1')
    url = f'http://rebind.example.test:{server}/ok'
    assert URLStorage().load(url).read() == b'hello'
    assert net.connects == ['127.0.0.1'] and net.lookups == ['rebind.example.test']
    with pytest.raises(URLRefusedError, match='10.0.0.1'):
        URLStorage().load(url)
    assert net.connects == ['127.0.0.1']


def test_a_redirect_to_a_refused_address_is_refused_at_the_redirect(net, guarded, server):
    net.names['internal.example.test'] = [['10.0.0.1']]
    guarded('127.0.0.1')
    target = 'http://internal.example.test/latest/meta-data/'
    with pytest.raises(URLRefusedError) as info:
        URLStorage().load(f'http://127.0.0.1:{server}/to?{target}')
    assert target in str(info.value) and '10.0.0.1' in str(info.value)
    assert net.connects == ['127.0.0.1'] and len(_Server.hosts) == 1


def test_a_redirect_to_an_allowed_address_is_followed(net, guarded, server):
    guarded('127.0.0.1')
    assert URLStorage().load(
        f'http://127.0.0.1:{server}/to?http://127.0.0.1:{server}/ok').read() == b'hello'
    assert net.connects == ['127.0.0.1', '127.0.0.1']


@pytest.mark.parametrize('target', ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'gopher://h/'])
@pytest.mark.parametrize('block', [True, False])
def test_a_redirect_to_another_scheme_is_refused(net, monkeypatch, server, target, block):
    monkeypatch.setattr(config, 'URL_BLOCK_PRIVATE', block)
    monkeypatch.setattr(config, 'URL_ALLOWED_NETWORKS', '127.0.0.1')
    with pytest.raises(URLDownloadError, match='(?i)redirect'):
        URLStorage().load(f'http://127.0.0.1:{server}/to?{target}')
    assert net.connects == ['127.0.0.1']


def test_library_calls_keep_pyspacers_behaviour_but_refuse_metadata(net, monkeypatch, server):
    monkeypatch.setattr(config, 'URL_BLOCK_PRIVATE', False)
    monkeypatch.setattr(config, 'URL_ALLOWED_NETWORKS', None)
    assert URLStorage().load(f'http://127.0.0.1:{server}/ok').read() == b'hello'
    for metadata in ('169.254.169.254', 'fd00:ec2::254'):
        net.names['metadata.example.test'] = [[metadata]]
        with pytest.raises(URLRefusedError, match='metadata'):
            URLStorage().load('http://metadata.example.test/latest/')
    assert net.connects == ['127.0.0.1']


def test_public_addresses_pass_and_embedded_ipv4_is_judged_as_ipv4():
    policy = AddressPolicy(block_private=True,
                           allowed=parse_networks('127.0.0.1,fd12::/64'))
    for public in ('93.184.216.34', '2606:2800:220:1::1', '8.8.8.8'):
        assert policy.refusal(ipaddress.ip_address(public)) is None
    assert policy.refusal(ipaddress.ip_address('::ffff:127.0.0.1')) is None  # allowed
    assert policy.refusal(ipaddress.ip_address('fd12::5')) is None
    assert 'private' in policy.refusal(ipaddress.ip_address('::ffff:10.0.0.1'))
    assert embedded_ipv4(ipaddress.ip_address('2002:a00:1::')) == ipaddress.ip_address('10.0.0.1')


@pytest.mark.parametrize('bad', ['images.internal', '10.0.0.1/40', '10.0.0.1;rm'])
def test_a_bad_allow_list_is_a_config_error_naming_the_setting(bad):
    with pytest.raises(ConfigError, match='URL_ALLOWED_NETWORKS'):
        parse_networks(bad)


def test_protect_worker_turns_blocking_on_unless_the_operator_set_it(monkeypatch):
    # Empty counts as unset, and monkeypatch then removes what protect_worker sets.
    monkeypatch.setenv('SPACER_URL_BLOCK_PRIVATE', '')
    monkeypatch.setattr(config, 'URL_BLOCK_PRIVATE', False)
    assert protect_worker().block_private is True
    assert os.environ['SPACER_URL_BLOCK_PRIVATE'] == 'true'  # pool processes too
    monkeypatch.setenv('SPACER_URL_BLOCK_PRIVATE', 'false')
    monkeypatch.setattr(config, 'URL_BLOCK_PRIVATE', False)
    assert protect_worker().block_private is False


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    key, cert = tmp_path / f'{name}.key', tmp_path / f'{name}.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-keyout', str(key), '-out', str(cert), '-subj', f'/CN={name}',
                    '-addext', f'subjectAltName=DNS:{name}'],
                   check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def tls_server(tmp_path):
    cert, key = _certificate(tmp_path, 'images.example.test')
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], cert
    httpd.shutdown()
    httpd.server_close()


def test_https_checks_the_certificate_against_the_hostname(net, guarded, tls_server,
                                                          monkeypatch):
    port, cert = tls_server
    monkeypatch.setenv('SSL_CERT_FILE', cert)
    guarded('127.0.0.1')
    net.names['images.example.test'] = [['127.0.0.1']]
    net.names['other.example.test'] = [['127.0.0.1']]
    assert URLStorage().load(f'https://images.example.test:{port}/ok').read() == b'hello'
    with pytest.raises(URLDownloadError, match='certificate'):
        URLStorage().load(f'https://other.example.test:{port}/ok')
    assert net.connects == ['127.0.0.1', '127.0.0.1']


def test_proxies_are_ignored_while_private_addresses_are_blocked(net, guarded, server,
                                                                monkeypatch):
    """A proxy would connect for us, past the check: it is not used then."""
    monkeypatch.setenv('http_proxy', 'http://127.0.0.2:9')
    guarded('127.0.0.1')
    assert URLStorage().load(f'http://127.0.0.1:{server}/ok').read() == b'hello'
    assert net.connects == ['127.0.0.1']


def test_a_refusal_prints_as_pyspacers_url_download_error():
    from spacer.exceptions import pyspacer_class_path
    error = URLRefusedError('refused', ValueError('address 10.0.0.1 is not allowed'))
    assert pyspacer_class_path(error) == 'spacer.exceptions.URLDownloadError'
