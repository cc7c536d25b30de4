"""
Keys and certificates made by the tests (cryptography): self-signed ones
for message signing, and a CA with a server certificate for Redis TLS.
"""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, issuer: str, public_key, signing_key, serial: int,
                 ca: bool = False, ip: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(public_key).serial_number(serial)
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def signing_identity(folder: Path, name: str, serial: int | None = None,
                     issuer: str | None = None) -> tuple[Path, Path]:
    """(key file, self-signed certificate file) for ``name``. ``serial`` and
    ``issuer`` let a test copy another identity's signer id."""
    key = _key()
    cert = _certificate(name, issuer or name, key.public_key(), key,
                        serial or x509.random_serial_number())
    return _write_key(key, folder / f'{name}.key'), _write_cert(cert, folder / f'{name}.pem')


def tls_server_files(folder: Path) -> dict[str, Path]:
    """A CA, and a server certificate for 127.0.0.1 that it signed."""
    ca_key, server_key = _key(), _key()
    ca = _certificate('spacer test CA', 'spacer test CA', ca_key.public_key(), ca_key,
                      x509.random_serial_number(), ca=True)
    server = _certificate('127.0.0.1', 'spacer test CA', server_key.public_key(), ca_key,
                          x509.random_serial_number(), ip='127.0.0.1')
    return {'ca': _write_cert(ca, folder / 'ca.pem'),
            'cert': _write_cert(server, folder / 'redis.pem'),
            'key': _write_key(server_key, folder / 'redis.key')}
