"""
Waiting for one task's result on a Redis result backend, through outages.

Celery's own wait (``AsyncResult.get``) shares one pub/sub connection per
app. When Redis goes away it retries the reconnection for up to
``result_backend_max_retries`` seconds, whatever the wait's timeout, then
raises a bare RuntimeError saying the application must be restarted. It
raises that from the wait, or later from a result's ``__del__`` wherever
the garbage collector runs it. Measured here in a 30 s outage: a 4 s wait
raised it after 21 s, and the next 4 s wait took 19 s.

Here a task already ended costs one read. Otherwise the wait subscribes to
the task's channel on its thread's listening connection, reads the stored
state once Redis confirms the subscription (a state stored before that is
read, one stored after it is published), and reads it again every
``READ_EVERY`` seconds (a message can be lost with its connection). While
Redis cannot be reached it tries again every ``RETRY_EVERY`` seconds until
its deadline; a try under way when the deadline passes ends within the
backend client's connect and reply timeouts (``workers.app``). Wrong
credentials or a refused ACL are not waited out: they are raised at once.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import states
from kombu.utils.encoding import bytes_to_str
from redis.client import PubSub
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# A direct read of the stored state this often while subscribed.
READ_EVERY = 1.0
# While Redis cannot be reached, another try this often.
RETRY_EVERY = 0.5
REDIS_FAULTS = (RedisConnectionError, RedisTimeoutError, OSError)
# ConnectionErrors that waiting does not mend.
REFUSALS = (AuthenticationError, AuthorizationError)


class WaitTimedOut(Exception):
    """The deadline passed before the task ended. ``state`` is the last
    state read (None when none could be read); ``fault`` is the error of the
    last try when Redis could not be reached at the end."""

    def __init__(self, state: str | None, fault: BaseException | None) -> None:
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
            raw = backend.client.get(key)
            _outage.ended()
            meta = _final(backend, raw)
            if meta is not None:
                return meta
            if _left(deadline) is not None and _left(deadline) <= 0:
                raise WaitTimedOut(_state(backend, raw), None)
            return _subscribed_wait(backend, key, deadline)
        except REFUSALS:
            raise
        except REDIS_FAULTS as fault:
            _outage.began(fault)
            left = _left(deadline)
            if left is not None and left <= 0:
                raise WaitTimedOut(None, fault) from fault
            time.sleep(RETRY_EVERY if left is None else min(RETRY_EVERY, left))


def _subscribed_wait(backend: Any, key: bytes, deadline: float | None) -> dict:
    pubsub = _listeners.take(backend.client)
    try:
        meta = _listen(backend, pubsub, key, deadline)
    except WaitTimedOut:
        _listeners.give_back(backend.client, pubsub, key)
        raise
    except BaseException:
        # Its connection may hold a half-read reply or be dead: not reused.
        pubsub.close()
        raise
    _listeners.give_back(backend.client, pubsub, key)
    return meta


def _listen(backend: Any, pubsub: PubSub, key: bytes, deadline: float | None) -> dict:
    pubsub.subscribe(key)
    _await_confirmation(pubsub, key, _earlier(deadline, time.monotonic() + READ_EVERY))
    while True:
        raw = backend.client.get(key)
        meta = _final(backend, raw)
        if meta is not None:
            return meta
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimedOut(_state(backend, raw), None)
        meta = _final_message(backend, pubsub, key,
                              _earlier(deadline, time.monotonic() + READ_EVERY))
        if meta is not None:
            return meta


def _await_confirmation(pubsub: PubSub, key: bytes, until: float) -> None:
    """Until Redis confirms the subscription to ``key`` (from then on, a
    state stored is published to this connection), or ``until``: the
    reads that follow do not depend on it."""
    while (left := until - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message and message['type'] == 'subscribe' and _same(message['channel'], key):
            return


def _final_message(backend: Any, pubsub: PubSub, key: bytes, until: float) -> dict | None:
    """The meta of the first final state of ``key`` published before
    ``until`` (messages of an earlier wait's channel are skipped)."""
    while (left := until - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message and message['type'] == 'message' and _same(message['channel'], key):
            meta = _final(backend, message['data'])
            if meta is not None:
                return meta
    return None


class _Listeners:
    """One idle listening connection per thread, reused by its next wait:
    a wait costs a SUBSCRIBE and an UNSUBSCRIBE, not a new connection."""

    def __init__(self) -> None:
        self._local = threading.local()

    def take(self, client: Any) -> PubSub:
        idle = getattr(self._local, 'idle', None)
        self._local.idle = None
        if idle is not None:
            owner, pid, pubsub = idle
            if owner is client and pid == os.getpid():
                return pubsub
            # Another client's, or copied by a fork: redis-py shuts down
            # only the sockets its own process opened.
            pubsub.close()
        return client.pubsub()

    def give_back(self, client: Any, pubsub: PubSub, key: bytes) -> None:
        try:
            pubsub.unsubscribe(key)
        except REDIS_FAULTS:
            pubsub.close()  # the wait's outcome is in hand: a fault is the next wait's
            return
        self._local.idle = (client, os.getpid(), pubsub)


_listeners = _Listeners()


class _Outage:
    """Logs once when the result backend stops answering this process's
    waits, and once when it answers again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def began(self, fault: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        logger.warning("The result backend cannot be reached (%s: %s); waits for results"
                       " go on until their deadlines.", type(fault).__name__, fault)

    def ended(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            logger.warning("The result backend answers again, after %.0f s.",
                           time.monotonic() - since)


_outage = _Outage()


def _final(backend: Any, raw: Any) -> dict | None:
    if not raw:
        return None
    meta = backend.decode_result(raw)
    return meta if meta['status'] in states.READY_STATES else None


def _state(backend: Any, raw: Any) -> str:
    return backend.decode_result(raw)['status'] if raw else states.PENDING


def _same(channel: Any, key: bytes) -> bool:
    return bytes_to_str(channel) == bytes_to_str(key)


def _earlier(deadline: float | None, moment: float) -> float:
    return moment if deadline is None else min(deadline, moment)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()
