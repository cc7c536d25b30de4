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
    task holding it otherwise. A key its producer marked as being sent for
    this very task is ours (the message can arrive before the mark is
    cleared). ``along``: commands for the claim's round trip (a Redis
    store's ``claim``)."""
    holder = store.claim(key, task_id, ttl, along) if along else store.claim(key, task_id, ttl)
    if holder is not None and _sending_id(holder) == task_id:
        if store.replace(key, holder, task_id, ttl):
            return None
        return claim(store, key, task_id, ttl)
    return holder


def claim_for_producer(store: Any, key: str, task_id: str, ttl: int,
                       state_of: Any, now: float | None = None,
                       message_gone: Any = None, forget: Any = None) -> str | None:
    """``claim`` as a producer does it, before sending: the key is marked
    as being sent (``sent`` clears the mark) and the id of a task holding it
    is returned, except that a key is taken over when it was left behind:

    - by a task that has finished (its worker could not release the key:
      Redis was down at that moment), so a finished task's id is never
      handed back as if it were running;
    - by a send that never completed (Redis went down between the claim
      and the send, and the release failed too, or the send's outcome
      could not be told), after ``SEND_GRACE`` seconds, once its message is
      known not to be queued, so an id whose message was never queued is
      never handed back, and one that was queued is;
    - by a task that never started and whose message is gone (its queue
      was purged by ``celery purge``), when ``message_gone(task_id)`` can
      tell.

    ``state_of(task_id)`` reads a task's stored state; ``forget(task_id)``
    is told of a task whose key was taken over (its outbox copy must go)."""
    mark = sending_mark(task_id, now if now is not None else time.time())
    for _ in range(3):
        holder = store.claim(key, mark, ttl)
        if holder is None:
            return None
        sending = _sending_id(holder)
        if sending is not None and _sending_age(holder, now) <= SEND_GRACE:
            return sending  # another producer is sending it right now
        left_by = sending or holder
        if (state := state_of(left_by)) in FINISHED:
            reason = 'finished task'
        elif state == 'PENDING' and message_gone is not None and message_gone(left_by):
            reason = 'a send that never completed' if sending else 'task whose message is gone'
        elif sending and message_gone is None:
            reason = 'a send that never completed'  # nothing can tell: the grace decides
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
    the job key until the message is queued."""
    return f'{SENDING}{task_id}:{claimed_at:.3f}'


def sent(store: Any, key: str, task_id: str, ttl: int, claimed_at: float) -> None:
    """The task's message is queued: its key now names it plainly (unless a
    worker got there first, or the mark was taken over). One round trip."""
    store.replace(key, sending_mark(task_id, claimed_at), task_id, ttl)


def release_unsent(store: Any, key: str, task_id: str, claimed_at: float) -> None:
    """Drop the mark of a send that failed (if it is still ours)."""
    store.release(key, sending_mark(task_id, claimed_at))


def _sending_id(holder: str) -> str | None:
    if not holder.startswith(SENDING):
        return None
    return holder[len(SENDING):].rsplit(':', 1)[0]


def _sending_age(holder: str, now: float | None) -> float:
    try:
        stamp = float(holder.rsplit(':', 1)[1])
    except (IndexError, ValueError):
        return float('inf')
    return (now if now is not None else time.time()) - stamp


# States after which a task never runs again.
FINISHED = frozenset({'SUCCESS', 'FAILURE', 'REVOKED'})
# A producer's mark on a job key while it sends the message, and how long a
# send may take before the mark counts as left behind.
SENDING = 'sending:'
SEND_GRACE = 30.0


def release(store: Any, key: str, task_id: str) -> bool:
    return store.release(key, task_id)


def holder(store: Any, key: str) -> str | None:
    return store.holder(key)
