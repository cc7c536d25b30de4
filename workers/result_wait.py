"""
Waiting for one task's result on a Redis result backend, through outages.

Celery's own wait (``AsyncResult.get``) shares one pub/sub connection per
app. When Redis goes away it retries the reconnection for up to
``result_backend_max_retries`` seconds, whatever the wait's timeout, then
raises a bare RuntimeError saying the application must be restarted. It
raises that from the wait, or later from a result's ``__del__`` wherever
the garbage collector runs it. Measured here in a 30 s outage: a 4 s wait
raised it after 21 s, and the next 4 s wait took 19 s.

Here each wait subscribes on a connection of its own and reads the stored
state once subscribed, then between messages (a published message can be
missed). While Redis cannot be reached it tries again every
``RETRY_EVERY`` seconds, and it ends by its deadline plus at most one
connect or reply timeout of the backend's client (``workers.app``).
"""
from __future__ import annotations

import time
from typing import Any

from celery import states
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A direct read of the stored state this often while subscribed.
READ_EVERY = 1.0
# While Redis cannot be reached, another try this often.
RETRY_EVERY = 0.5
REDIS_FAULTS = (RedisConnectionError, RedisTimeoutError, OSError)


class WaitTimedOut(Exception):
    """The deadline passed before the task ended. ``state`` is the last
    state read (None when none could be read); ``fault`` is the error of the
    last try when Redis could not be reached at the end."""

    def __init__(self, state: str | None, fault: BaseException | None):
        super().__init__(state, fault)
        self.state = state
        self.fault = fault


def wait_for_final_meta(backend: Any, task_id: str, timeout: float | None) -> dict:
    """The decoded meta of ``task_id`` once it is SUCCESS, FAILURE or
    REVOKED; WaitTimedOut after ``timeout`` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    key = backend.get_key_for_task(task_id)
    while True:
        try:
            # A task already ended costs one read, without subscribing.
            meta = _final(backend, backend.client.get(key))
            return meta if meta is not None else _subscribed_wait(backend, key, deadline)
        except REDIS_FAULTS as fault:
            left = _left(deadline)
            if left is not None and left <= 0:
                raise WaitTimedOut(None, fault) from fault
            time.sleep(RETRY_EVERY if left is None else min(RETRY_EVERY, left))


def _subscribed_wait(backend: Any, key: Any, deadline: float | None) -> dict:
    pubsub = backend.client.pubsub()
    try:
        pubsub.subscribe(key)
        _await_confirmation(pubsub, deadline)
        while True:
            # Read once the subscription is confirmed: a result stored
            # before it is read here, one stored after it is published.
            raw = backend.client.get(key)
            meta = _final(backend, raw)
            if meta is not None:
                return meta
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimedOut(backend.decode_result(raw)['status'] if raw
                                   else states.PENDING, None)
            read_at = time.monotonic() + READ_EVERY
            meta = _final_message(backend, pubsub,
                                  read_at if deadline is None else min(read_at, deadline))
            if meta is not None:
                return meta
    finally:
        # Closing drops the connection: no UNSUBSCRIBE to send, so nothing to
        # fail while Redis is away.
        pubsub.close()


def _await_confirmation(pubsub: Any, deadline: float | None) -> None:
    """Until Redis confirms the subscription (from then on, a result stored
    is published to this connection) or the deadline passes."""
    while True:
        left = _left(deadline)
        if left is not None and left <= 0:
            return
        message = pubsub.get_message(timeout=READ_EVERY if left is None else left)
        if message and message['type'] == 'subscribe':
            return


def _final_message(backend: Any, pubsub: Any, until: float) -> dict | None:
    """The meta of the first final state published before ``until``."""
    while (left := until - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message and message['type'] == 'message':
            meta = _final(backend, message['data'])
            if meta is not None:
                return meta
    return None


def _final(backend: Any, raw: Any) -> dict | None:
    if not raw:
        return None
    meta = backend.decode_result(raw)
    return meta if meta['status'] in states.READY_STATES else None


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()
