"""
Whether the broker and the result backend answer, asked once and briefly.

Celery and kombu retry a lost connection for tens of seconds, logging a
traceback each time: right for a worker, wrong for a command someone typed.
Commands that need the broker ask here first (``spacer`` does it for each
such subcommand) and, when either does not answer within
``BROKER_CONNECT_TIMEOUT`` seconds, say so in one line.
"""
from __future__ import annotations

from typing import Any

from spacer import config
from workers.errors import BrokerUnavailableError


def _ping_redis(url: str, timeout: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _connect(app: Any, timeout: float) -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def ensure_reachable(app: Any) -> None:
    """Return if the broker and a Redis result backend answer; raise
    BrokerUnavailableError naming the first that does not."""
    timeout = config.get('BROKER_CONNECT_TIMEOUT')
    broker = app.conf.broker_write_url or ''
    backend = str(app.backend_cls or app.conf.result_backend or '')
    try:
        if broker.startswith(('redis://', 'rediss://')):
            _ping_redis(broker, timeout)
        else:
            _connect(app, timeout)
    except Exception as e:  # noqa: BLE001 - whatever the transport raises
        raise BrokerUnavailableError(broker, e, consequence=None) from e
    if backend.startswith(('redis://', 'rediss://')) and backend != broker:
        try:
            _ping_redis(backend, timeout)
        except Exception as e:  # noqa: BLE001
            raise BrokerUnavailableError(backend, e, consequence=None,
                                         what='result backend') from e
