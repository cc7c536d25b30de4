"""
One run at a time per job.

A job's key is its task name and job token(s). The producer sets the key
to the new task's id with SET NX before sending (``claim``): while the key
exists, submitting the same job again returns the running task's id
instead of queuing a second run. The worker claims the key again when it
starts (a message sent by plain ``send_task`` skips the producer's claim;
a redelivered message holds the key already, under its own id) and
releases it when the task ends, however it ends. The TTL bounds how long a
key can outlive a job that vanished without ending (e.g. purged queue).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any

from workers.keystore import store_for

logger = logging.getLogger(__name__)

PREFIX = 'spacer:job:'


def job_key(task_name: str, message: Any) -> str | None:
    """The dedup key of a message, or None if it carries no job token."""
    if not isinstance(message, dict):
        return None
    short = task_name.rsplit('.', 1)[-1]
    if 'tasks' in message and 'task_name' in message:
        tokens = [t.get('job_token') for t in message.get('tasks') or []
                  if isinstance(t, dict)]
        if not tokens or any(t in (None, '') for t in tokens):
            return None
        joined = '\x1f'.join(str(t) for t in tokens)
        if len(joined) > 200:
            joined = hashlib.sha256(joined.encode()).hexdigest()
        return f"{PREFIX}{short}:{message['task_name']}:{joined}"
    token = message.get('job_token')
    if token in (None, ''):
        return None
    return f"{PREFIX}{short}:{token}"


def claim(store: Any, key: str, task_id: str, ttl: int) -> str | None:
    """Hold ``key`` for ``task_id``; the id of the task holding it otherwise."""
    return store.claim(key, task_id, ttl)


def release(store: Any, key: str, task_id: str) -> bool:
    return store.release(key, task_id)


def holder(store: Any, key: str) -> str | None:
    return store.holder(key)


def _on_task_failure(sender: Any = None, task_id: str | None = None,
                     args: Any = None, **_: Any) -> None:
    """Release the key of a task that ended where its body could not (hard limit)."""
    if sender is None or not getattr(sender, 'name', '').startswith('spacer.'):
        return
    key = job_key(sender.name, args[0] if args else None)
    if key and task_id:
        try:
            release(store_for(sender.app), key, task_id)
        except Exception:
            logger.exception("Could not release job key %s", key)


def install() -> None:
    from celery.signals import task_failure
    task_failure.connect(_on_task_failure, weak=False, dispatch_uid='spacer.dedup')
