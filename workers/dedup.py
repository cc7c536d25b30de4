"""
One run at a time per job.

A job's key is its task name and job token(s). Before sending, the
producer claims the key with a mark naming the new task
(``claim_for_producer``): while the key exists, submitting the same job
again returns that task's id instead of queuing a second run. The worker
claims the key when the task starts, replacing its producer's mark in the
same step (a message sent by plain ``send_task`` skips the producer's
claim; a redelivered message holds the key already, under its own id), and
releases it when the task ends, however it ends. The TTL bounds how long a
key can outlive a job that vanished without ending (e.g. purged queue).
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any


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


def claim(store: Any, key: str, task_id: str, ttl: int, along: Any = None) -> str | None:
    """Hold ``key`` for ``task_id`` (a worker starting it); the id of the
    task holding it otherwise. The producer's sending mark for this very
    task is ours: the worker replaces it in the same step. ``along``:
    commands for the claim's round trip (a Redis store's ``claim``)."""
    ours = _sending_prefix(task_id)
    holder = (store.claim(key, task_id, ttl, also_ours=ours, along=along) if along
              else store.claim(key, task_id, ttl, also_ours=ours))
    return None if holder is None else _sending_id(holder) or holder


def claim_for_producer(store: Any, key: str, task_id: str, ttl: int,
                       state_of: Any, now: float | None = None,
                       message_gone: Any = None, forget: Any = None) -> str | None:
    """``claim`` as a producer does it, before sending: the key is marked
    as being sent (the worker's ``claim`` replaces the mark by the task id
    when the task starts) and the id of a task holding it is returned,
    except that a key is taken over when it was left behind:

    - by a task that has finished (its worker could not release the key:
      Redis was down at that moment), so a finished task's id is never
      handed back as if it were running;
    - by a task that never started and whose message is gone: a send that
      never completed (Redis went down between the claim and the send, and
      the release failed too, or the send's outcome could not be told), or
      a queue purged by ``celery purge``. ``message_gone(task_id)`` tells,
      looking twice (None: nothing can, and the key stands until its TTL),
      so an id whose message was never queued is never handed back, and
      one that was queued is. A producer stalled between its claim and its
      send for longer than that look may see its key taken over: its task
      then ends as a DuplicateJobError when it starts, and the job runs
      once, under the task that took the key.

    ``state_of(task_id)`` reads a task's stored state; ``forget(task_id)``
    is told of a task whose key was taken over (its outbox copy must go)."""
    mark = sending_mark(task_id, now if now is not None else time.time())
    for _ in range(3):
        holder = store.claim(key, mark, ttl)
        if holder is None:
            return None
        left_by = _sending_id(holder) or holder
        if (state := state_of(left_by)) in FINISHED:
            reason = 'finished task'
        elif state == 'PENDING' and message_gone is not None and message_gone(left_by):
            reason = 'task whose message is gone'
        else:
            return left_by
        if store.replace(key, holder, mark, ttl):
            logger.info("Job key %s was left by %s (%s); taken over.", key, reason, left_by)
            if forget is not None:
                forget(left_by)
            return None
    return _sending_id(store.holder(key) or '') or store.holder(key)


def sending_mark(task_id: str, claimed_at: float) -> str:
    """What a producer's claim made at ``claimed_at`` (time.time()) puts in
    the job key until its task starts."""
    return f'{_sending_prefix(task_id)}{claimed_at:.3f}'


def release_unsent(store: Any, key: str, task_id: str, claimed_at: float) -> None:
    """Drop the mark of a send that failed (if it is still ours)."""
    store.release(key, sending_mark(task_id, claimed_at))


def _sending_id(holder: str) -> str | None:
    if not holder.startswith(SENDING):
        return None
    return holder[len(SENDING):].rsplit(':', 1)[0]


# States after which a task never runs again.
FINISHED = frozenset({'SUCCESS', 'FAILURE', 'REVOKED'})
# How a producer's mark on a job key starts (the key holds it from the
# claim before sending until the task starts).
SENDING = 'sending:'


def release(store: Any, key: str, task_id: str) -> bool:
    """Free ``key`` if ``task_id`` holds it, started or still being sent."""
    return store.release(key, task_id, also_ours=_sending_prefix(task_id))


def queue_release(store: Any, pipe: Any, key: str, task_id: str) -> None:
    """``release``, added to a pipeline of the store's client."""
    store.queue_release(pipe, key, task_id, also_ours=_sending_prefix(task_id))


def _sending_prefix(task_id: str) -> str:
    """How every sending mark of ``task_id`` starts."""
    return f'{SENDING}{task_id}:'


def holder(store: Any, key: str) -> str | None:
    return store.holder(key)
