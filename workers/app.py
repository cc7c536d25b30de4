"""
The Celery app: broker, result backend, queues and delivery guarantees.

Everything comes from ``workers.settings`` (itself read through
``spacer.config``); see that module for the time limits and the visibility
timeout. The choices made here:

- JSON only, both ways: the workers accept no pickle, so a message cannot
  run code. Optionally signed (``workers.signing``): then a worker runs only
  messages signed by a key it trusts.
- Late acknowledgement, prefetch of one, and reject-on-worker-lost: a task
  is acknowledged after it finishes, a worker holds at most one message it
  is not running, and a pool process that dies mid-task leaves its message
  to be delivered again (tasks are idempotent: artifacts are written to a
  temporary name and moved into place).
- ``task_track_started``: a caller can tell queued from running.
- With no broker configured, the in-memory transport and result cache, with
  short polling intervals; ``workers.embedded`` runs the worker in a thread.

``celery -A workers.app worker`` and ``spacer worker`` both use ``app``.
"""
from __future__ import annotations

import ssl

from celery import Celery

from spacer import config
from workers import celery_conf, routing, signing
from workers.result_backend import BACKEND_FOR_SCHEME
from workers.settings import WorkerSettings, load

# Polling of the in-memory transport and result cache; Celery's 1 s
# default makes every embedded task take a second (facts.md).
EMBEDDED_POLL_INTERVAL = 0.005
REDIS_TRANSPORT = 'workers.redis_transport:Transport'
# Seconds a result backend command may take, sending included. Results hold
# scores and locations, never features: storing a 30 MB one needs 1 MB/s.
RESULT_BACKEND_REPLY_TIMEOUT = 30
# Seconds a new pool process has to report that it is up (Celery: 4).
PROCESS_START_SECONDS = 60


def verified_tls(url: str) -> dict | None:
    """TLS options of a ``rediss://`` URL that names none: verify the server
    against the system's CAs (kombu alone would not verify at all). Options in
    the URL (``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem``) take
    precedence, and every Redis client of spacer reads them from there."""
    return {'ssl_cert_reqs': ssl.CERT_REQUIRED} if url.startswith('rediss://') else None


def celery_config(settings: WorkerSettings) -> dict:
    broker, backend = settings.broker_and_backend()
    # Signed messages (workers.signing) need a broker: the embedded worker's
    # messages never leave the process.
    signed = (signing.celery_settings(settings.signing)
              if settings.signing and not settings.embedded else {})
    transport_options: dict = {}
    if broker.startswith(('redis://', 'rediss://', 'sentinel://')):
        transport_options = {
            'visibility_timeout': settings.visibility_timeout,
            'unacked_restore_interval': settings.unacked_restore_interval,
            'unacked_restore_throttle': 1,
        }
    elif settings.embedded:
        transport_options = {'polling_interval': EMBEDDED_POLL_INTERVAL}
    return dict(
        # kombu's Redis transport, less a way to lose a message when Redis
        # goes away mid-delivery (workers.redis_transport).
        broker_transport=(REDIS_TRANSPORT if broker.startswith(('redis://', 'rediss://'))
                          else None),
        # Celery reads CELERY_BROKER_URL from the environment before
        # broker_url, but not before these: the URL chosen by the precedence
        # of workers.celery_conf is the one used (an embedded worker never
        # joins a real broker).
        broker_url=broker,
        broker_read_url=broker,
        broker_write_url=broker,
        result_backend=backend,
        broker_use_ssl=verified_tls(broker),
        redis_backend_use_ssl=verified_tls(backend),
        # Without these, a result backend host that drops packets holds a
        # connection attempt, and each command, for Celery's 120 s.
        redis_socket_connect_timeout=config.get('BROKER_CONNECT_TIMEOUT'),
        redis_socket_timeout=RESULT_BACKEND_REPLY_TIMEOUT,
        task_serializer='json',
        result_serializer='json',
        accept_content=['json'],
        result_accept_content=['json'],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_queues=routing.declare_queues(settings),
        task_default_queue=settings.queues['classify'],
        task_routes=(routing.Router(settings),),
        task_create_missing_queues=False,
        broker_transport_options=transport_options,
        result_backend_transport_options=(
            {'visibility_timeout': settings.visibility_timeout}
            if backend.startswith('redis') else {}),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        result_expires=settings.result_expires,
        result_backend_always_retry=True,
        result_backend_max_retries=20,
        # A refused (non-JSON) message fails its task instead of vanishing.
        worker_consumer='workers.consumer:RefusingConsumer',
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Warm caches live as long as the pool process: never recycle it.
        worker_max_tasks_per_child=None,
        # Celery kills a new pool process that has not said it is up within
        # 4 s. Beside a CPU hog, the child replacing one killed at its hard
        # limit took longer, and Celery killed each replacement in turn: the
        # worker kept taking messages it never ran.
        worker_proc_alive_timeout=PROCESS_START_SECONDS,
        # The embedded worker's thread and the caller must see one result
        # cache (the in-memory one is per backend object, normally per thread).
        result_backend_thread_safe=settings.embedded,
    ) | signed


def make_app(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app for ``settings`` (default: read them now)."""
    settings = settings or load()
    app = Celery('spacer')
    app.conf.update(celery_config(settings))
    app.conf.update(celery_conf.django_overrides())
    # Likewise the result backend: Celery would prefer CELERY_RESULT_BACKEND.
    app.backend_cls = settings.broker_and_backend()[1]
    app.loader.override_backends = {**app.loader.override_backends, **BACKEND_FOR_SCHEME}
    app.conf.include = ['workers.celery_tasks']
    app.spacer_settings = settings
    if signing.signs(app):
        signing.install(app, settings.signing)
    return app


app = make_app()
