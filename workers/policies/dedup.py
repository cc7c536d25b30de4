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
SEPARATOR = '\x1f'  # between a JobMsg's tokens (unit separator)
MAX_KEY_PART = 200  # characters of a key part kept as is; longer parts are hashed


def job_key(task_name: str, message: Any) -> str | None:
    """
    The dedup key of a message, or None if it carries no usable job token.

    Never raises: the producer calls it before any check of the message and
    the worker before the task body, so a malformed message must go on to
    the task's own parse, which rejects it naming what is wrong. A message
    whose tokens are not strings (or integers) is not deduplicated.
    """
    if not isinstance(task_name, str) or not isinstance(message, dict):
        return None
    short = task_name.rsplit('.', 1)[-1]
    if 'tasks' in message and 'task_name' in message:
        return _job_msg_key(short, message)
    token = _token(message.get('job_token'))
    return None if token is None else f"{PREFIX}{short}:{_key_part(token)}"


def _job_msg_key(short: str, message: dict) -> str | None:
    """A JobMsg's key: its task name and every task's token, or None if malformed."""
    inner, tasks = message['task_name'], message['tasks']
    if not isinstance(inner, str) or not inner or not isinstance(tasks, list) or not tasks:
        return None
    tokens = [_token(t.get('job_token')) if isinstance(t, dict) else None for t in tasks]
    if any(t is None for t in tokens):
        return None
    return f"{PREFIX}{short}:{_key_part(inner)}:{_key_part(SEPARATOR.join(tokens))}"


def _token(value: Any) -> str | None:
    """A job token as text; None for a missing, empty or non-scalar one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # str() of an int past 4300 digits raises; such a token is not a job's.
        return str(value) if abs(value) < 10 ** 100 else None
    return value if isinstance(value, str) and value else None


def _key_part(text: str) -> str:
    """``text``, or its sha256 if it is long or not valid UTF-8 (a lone surrogate)."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        pass
    else:
        if len(text) <= MAX_KEY_PART:
            return text
    return hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()


def claim(store: Any, key: str, task_id: str, ttl: int) -> str | None:
    """Hold ``key`` for ``task_id``; the id of the task holding it otherwise."""
    return store.claim(key, task_id, ttl)


def claim_for_producer(store: Any, key: str, task_id: str, ttl: int,
                       state_of: Any) -> str | None:
    """``claim`` as a producer does it: a key still held by a task that has
    finished (its worker could not release it: Redis was down at that
    moment) is taken over, so a finished task's id is never handed back as
    if it were running. ``state_of(task_id)`` reads a task's stored state."""
    for _ in range(3):
        holder_id = store.claim(key, task_id, ttl)
        if holder_id is None or state_of(holder_id) not in FINISHED:
            return holder_id
        if store.replace(key, holder_id, task_id, ttl):
            logger.info("Job key %s was left by finished task %s; taken over.", key, holder_id)
            return None
    return store.holder(key)


# States after which a task never runs again.
FINISHED = frozenset({'SUCCESS', 'FAILURE', 'REVOKED'})


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
