"""
Signed task messages, as an option (Celery's ``auth`` serializer).

Off by default: task messages are plain JSON. With ``SIGNING_KEY``,
``SIGNING_CERT`` and ``SIGNING_CERT_STORE`` all set, every task message
this process publishes is signed with the key, and a worker runs only
messages signed by a key whose certificate is in the store; any other
message (plain JSON, pickle, a forged or tampered signature, a signer
outside the store, an expired certificate) is dropped unread with one log
line (``workers.consumer``).

Who signs: producers (``workers.client``, ``spacer submit``, a Django app)
and the workers themselves, because a worker publishes too: a transient
fault is retried by re-publishing the message, and the outbox audit sends
again what Redis lost. So every producer and every worker has a key pair of
its own, and one store holding all their certificates is given to all of
them (``docs/operations.md``, section Signed messages). Remote-control
commands (``spacer status``'s inspect, Flower's) are signed the same way.

What it does not do: hide the messages (use TLS, ``rediss://``) or stop a
replay of a message that was signed once (whoever can read a queue can push
a copy; tasks are idempotent, and Redis ACLs keep producers from reading
queues). Results stay JSON.

Stricter than Celery's own serializer in one way: the signed body must be
JSON. Celery would load whatever content type a trusted signer wrapped,
pickle included; spacer never unpickles a message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spacer import config
from spacer.exceptions import ConfigError

SIGNED_CONTENT_TYPE = 'application/data'  # Celery's auth serializer's
JSON_CONTENT_TYPE = 'application/json'
# A stored copy of a message (workers.outbox) signed by its producer.
SEALED_PREFIX = 'auth:'
SETTING_NAMES = ('SIGNING_KEY', 'SIGNING_CERT', 'SIGNING_CERT_STORE')


@dataclass(frozen=True)
class SigningFiles:
    key: str
    cert: str
    cert_store: str


def configured() -> SigningFiles | None:
    """The signing files the settings name; None when signing is off. Some
    but not all of the three set is a ConfigError naming those missing."""
    values = {name: config.get_config_value(name, str, None) for name in SETTING_NAMES}
    if not any(values.values()):
        values = _django_celery_names()
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(SETTING_NAMES):
        return None
    if missing:
        raise ConfigError(
            "Signed messages need SIGNING_KEY, SIGNING_CERT and SIGNING_CERT_STORE together;"
            f" missing: {', '.join(missing)}.")
    return SigningFiles(values['SIGNING_KEY'], values['SIGNING_CERT'],
                        values['SIGNING_CERT_STORE'])


# Celery's own names of the same files, as a Django project that already
# signs its Celery messages sets them (read when no SIGNING_* is set).
DJANGO_CELERY_NAMES = {'SIGNING_KEY': 'CELERY_SECURITY_KEY',
                       'SIGNING_CERT': 'CELERY_SECURITY_CERTIFICATE',
                       'SIGNING_CERT_STORE': 'CELERY_SECURITY_CERT_STORE'}


def _django_celery_names() -> dict[str, str | None]:
    settings = config.django_settings()
    return {name: (getattr(settings, celery_name, None) or None) if settings is not None
            else None for name, celery_name in DJANGO_CELERY_NAMES.items()}


def celery_settings(files: SigningFiles) -> dict:
    """The Celery settings of signed task messages with JSON results."""
    return dict(
        security_key=files.key,
        security_certificate=files.cert,
        security_cert_store=files.cert_store,
        security_digest='sha256',
        task_serializer='auth',
        accept_content=['auth'],
        result_serializer='json',
        result_accept_content=['json'],
    )


def signs(app: Any) -> bool:
    """Whether ``app`` publishes and accepts signed task messages only."""
    return getattr(app.conf, 'task_serializer', None) == 'auth'


def _json_only_serializer(files: SigningFiles) -> Any:
    from celery.exceptions import SecurityError
    from celery.security.certificate import Certificate, FSCertStore
    from celery.security.utils import reraise_errors
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding
    from kombu.serialization import loads
    from celery.security.key import PrivateKey
    from celery.security.serialization import SecureSerializer

    class JsonOnlySecureSerializer(SecureSerializer):
        """Celery's signed serializer (same wire form), refusing a signed body
        that is not JSON, and saying plainly when a signature does not match
        (Celery 5.7's own check fails there with a TypeError)."""

        def deserialize(self, data: Any) -> Any:
            with reraise_errors('Unable to deserialize: {0!r}', (Exception,)):
                payload = self._unpack(data)
                if payload['content_type'] != JSON_CONTENT_TYPE:
                    raise SecurityError(f"Signed body of content type"
                                        f" {payload['content_type']!r:.60} refused: spacer"
                                        " accepts JSON only.")
                cert = self._cert_store[payload['signer']]  # Unknown certificate
                if cert.has_expired():
                    raise SecurityError('Expired certificate')
                pad = padding.PSS(mgf=padding.MGF1(self._digest),
                                  salt_length=padding.PSS.MAX_LENGTH)
                try:
                    cert.get_pubkey().verify(payload['signature'], payload['body'], pad,
                                             self._digest)
                except InvalidSignature:
                    raise SecurityError('Bad signature') from None
            return loads(payload['body'], JSON_CONTENT_TYPE, payload['content_encoding'],
                         force=True)

    with open(files.key) as key_file, open(files.cert) as cert_file:
        return JsonOnlySecureSerializer(PrivateKey(key_file.read()),
                                        Certificate(cert_file.read()),
                                        FSCertStore(files.cert_store), 'sha256',
                                        serializer='json')


def install(app: Any, files: SigningFiles) -> None:
    """Sign and verify through ``app`` (and, since kombu's serializer registry
    is global, through every Celery app of this process). A file that cannot
    be read, or an expired certificate, is a ConfigError saying which."""
    from kombu.serialization import registry

    try:
        app.setup_security(allowed_serializers=['json'], digest='sha256',
                           serializer='json')
        serializer = _json_only_serializer(files)
    except Exception as e:  # noqa: BLE001 - unreadable file, bad PEM, expired certificate
        raise ConfigError(f"Signed messages: could not load SIGNING_KEY {files.key},"
                          f" SIGNING_CERT {files.cert} or SIGNING_CERT_STORE"
                          f" {files.cert_store}: {e}") from e
    registry.register('auth', serializer.serialize, serializer.deserialize,
                      content_type=SIGNED_CONTENT_TYPE, content_encoding='utf-8')


def seal(app: Any, text: str) -> str:
    """``text`` signed by this process, for a copy kept in Redis that a
    worker will publish again (``workers.outbox``); unchanged when ``app``
    does not sign."""
    if not signs(app):
        return text
    from kombu.serialization import dumps
    _, _, signed = dumps(text, serializer='auth')
    signed = signed.decode() if isinstance(signed, bytes) else signed
    return SEALED_PREFIX + signed


def unseal(app: Any, stored: str) -> str:
    """The text of a stored copy. When ``app`` signs, the copy must carry a
    trusted signature (celery.exceptions.SecurityError otherwise): a copy
    written into Redis by anyone else is never published with a worker's
    signature. When it does not sign, a sealed copy is read unverified."""
    import json

    from celery.exceptions import SecurityError
    from kombu.serialization import loads

    sealed = stored.startswith(SEALED_PREFIX)
    if signs(app):
        if not sealed:
            raise SecurityError("The stored copy is not signed.")
        try:
            return loads(stored[len(SEALED_PREFIX):], SIGNED_CONTENT_TYPE, 'utf-8',
                         accept=[SIGNED_CONTENT_TYPE])
        except Exception as e:  # noqa: BLE001 - kombu wraps the SecurityError
            raise SecurityError(f"The stored copy's signature is refused: {e}") from e
    if not sealed:
        return stored
    from celery.security.serialization import SecureSerializer
    body = SecureSerializer()._unpack(stored[len(SEALED_PREFIX):])['body']
    return json.loads(body)


def signed_size(limit: int) -> int:
    """The size a message of ``limit`` bytes can reach once signed: base64
    of the body, the signature and the signer's name."""
    return limit * 4 // 3 + 4096


def body_is_signed(message: Any) -> bool:
    return (getattr(message, 'content_type', None) or SIGNED_CONTENT_TYPE) == SIGNED_CONTENT_TYPE


def refusal_reason(message: Any, exc: BaseException) -> str:
    """Why a worker that takes signed messages only refused ``message``, in
    a few words (the body is never quoted)."""
    if not body_is_signed(message):
        return f"not signed (content type {message.content_type})"
    text = str(exc)
    if 'accepts JSON only' in text:
        return "its signed body is not JSON"
    if 'Unknown certificate' in text:
        return "signed by a certificate outside SIGNING_CERT_STORE"
    if 'Bad signature' in text or 'InvalidSignature' in text:
        return "its signature does not match its body (forged or altered)"
    if 'Expired certificate' in text:
        return "signed by an expired certificate"
    return f"its signature could not be checked ({type(exc).__name__}: {text[:200]!r})"
