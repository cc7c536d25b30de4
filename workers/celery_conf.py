"""
Celery's own configuration, read the way Celery users set it.

A Django or Docker host that already runs Celery sets ``CELERY_BROKER_URL``
(the environment variable Celery itself reads) or Django settings under
the ``CELERY_`` namespace. spacer honours both, after its own names:

1. ``SPACER_BROKER_URL`` / ``SPACER_RESULT_BACKEND`` (and the other sources
   of ``spacer.config``: ``secrets.json``, Django's ``settings.SPACER``);
2. the environment variables ``CELERY_BROKER_URL`` / ``CELERY_RESULT_BACKEND``;
3. Django's ``settings.CELERY_BROKER_URL`` / ``settings.CELERY_RESULT_BACKEND``.

Celery's names are read only when spacer's name no broker: a host that
sets ``SPACER_BROKER_URL`` (``memory://`` for the embedded worker
included) uses spacer's broker and result backend whatever Celery's say.

Any other Django ``CELERY_<SETTING>`` (``CELERY_BROKER_USE_SSL``,
``CELERY_WORKER_SEND_TASK_EVENTS``...) is applied to the app as Celery's
``<setting>``, except the few that carry spacer's promises (``PROTECTED``),
which are ignored with a warning.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from spacer import config

logger = logging.getLogger(__name__)

NAMESPACE = 'CELERY_'

# Settings a host may not change: JSON only (no message runs code), late
# acknowledgement (nothing lost), the queues and routes that QUEUE_* name,
# the limits and visibility timeout of workers.settings, and the consumer
# that fails refused messages.
PROTECTED = frozenset({
    'broker_url', 'result_backend', 'broker_read_url', 'broker_write_url', 'broker_transport',
    'task_serializer', 'result_serializer', 'accept_content', 'result_accept_content',
    'task_acks_late', 'task_reject_on_worker_lost', 'task_track_started',
    'task_queues', 'task_routes', 'task_default_queue', 'task_create_missing_queues',
    'broker_transport_options', 'result_backend_transport_options',
    'worker_consumer', 'worker_max_tasks_per_child',
    # Read as the SIGNING_* settings (workers.signing).
    'security_key', 'security_certificate', 'security_cert_store',
})
# Protected settings spacer reads from Django itself: ignored without a warning.
READ_ELSEWHERE = frozenset({'broker_url', 'result_backend', 'security_key',
                            'security_certificate', 'security_cert_store'})


def standard_url(name: str) -> tuple[str | None, str]:
    """Celery's own value for ``name`` ('BROKER_URL' or 'RESULT_BACKEND') and
    where it came from; (None, '') when neither source sets it."""
    value = os.getenv(NAMESPACE + name)
    if value:
        return value, f'environment variable {NAMESPACE}{name}'
    settings = config.django_settings()
    value = getattr(settings, NAMESPACE + name, None) if settings is not None else None
    if isinstance(value, str) and value:
        return value, f'Django settings.{NAMESPACE}{name}'
    return None, ''


def django_overrides() -> dict[str, Any]:
    """Django's ``CELERY_*`` settings as Celery setting names, less the
    protected ones (each ignored with a warning)."""
    settings = config.django_settings()
    if settings is None:
        return {}
    overrides = {}
    for attr in dir(settings):
        if not attr.startswith(NAMESPACE) or not attr.isupper():
            continue
        key = attr[len(NAMESPACE):].lower()
        if key in PROTECTED:
            if key not in READ_ELSEWHERE:
                logger.warning("Django setting %s is ignored: spacer sets %s itself.",
                               attr, key)
            continue
        overrides[key] = getattr(settings, attr)
    return overrides
