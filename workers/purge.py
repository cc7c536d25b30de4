"""
Emptying a queue without stranding its jobs.

``celery purge`` deletes messages but not the job keys that guard them, so
submitting a purged job again would hand back the id of a task that will
never run. Here each message is taken off the queue, its task is stored as
REVOKED (whoever polls it learns it will not run), its job key is
released, so the next submit of the same job queues it anew, and its
outbox copy is dropped, so no audit sends it again (``workers.outbox``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from workers import outbox, signing
from workers.job_state_store import store_for
from workers import dedup

logger = logging.getLogger(__name__)

REASON = 'purged from its queue by an operator'


@dataclass(frozen=True)
class Purged:
    queue: str
    messages: int
    tasks_revoked: int
    job_keys_released: int


def _task_of(app: Any, message: Any) -> tuple[str | None, str | None, Any]:
    """(task id, task name, first argument) of a Celery protocol-2 message,
    as far as they can be read; the body is decoded only if it is JSON (or,
    with signed messages on, signed by a trusted key)."""
    headers = message.headers or {}
    task_id, name = headers.get('id'), headers.get('task')
    first = None
    try:
        if message.content_type == 'application/json':
            body = json.loads(message.body)
        elif message.content_type == signing.SIGNED_CONTENT_TYPE and signing.signs(app):
            body = message.decode()  # only a trusted signature decodes, to JSON only
        else:
            body = None
        first = body[0][0] if body and body[0] else None
    except Exception:  # noqa: BLE001 - malformed, or a signature not trusted
        first = None
    return (task_id if isinstance(task_id, str) else None,
            name if isinstance(name, str) else None, first)


def purge_queue(app: Any, queue: str) -> Purged:
    """Take every message off ``queue``: REVOKED results, job keys released."""
    store = store_for(app)
    messages = revoked = released = 0
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            messages += 1
            task_id, name, first = _task_of(app, message)
            if task_id is None:
                continue
            app.backend.mark_as_revoked(task_id, REASON)
            outbox.ended(app, task_id)
            revoked += 1
            key = dedup.job_key(name, first) if name else None
            if key and dedup.release(store, key, task_id):
                released += 1
    logger.info("Purged %d message(s) from %s.", messages, queue)
    return Purged(queue, messages, revoked, released)
