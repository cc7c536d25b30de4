"""
The producer side: submit messages by task name, collect results later.

Importing this module imports neither torch nor the task code: tasks are
sent by name (``send_task``) to the queue of their kind, so a web server
stays light. With no broker configured, the first submit starts the
embedded in-process worker (``workers.embedded``) and everything else
works the same.

From Django, submit once the database row the job refers to is committed,
or a fast worker can look for it before it exists::

    from django.db import transaction
    from workers import client

    def schedule_extraction(image):
        msg = ExtractFeaturesMsg(job_token=str(image.pk), ...)

        def send():
            task_id = client.submit('extract_features', msg)
            Image.objects.filter(pk=image.pk).update(extract_task_id=task_id)

        transaction.on_commit(send)

and collect results from a periodic job with ``client.poll(task_ids)``.

A running training reports how far it got: its state is ``PROGRESS`` and
``TaskResult.progress`` holds ``{'epoch': 3, 'epochs': 10, 'ref_acc': 0.71}``
(epochs finished, epochs in all, the last epoch's reference accuracy); a
``process_job`` of trainings adds ``'task'`` and ``'tasks'`` (which training
of the job, counting from 1, and how many)::

    outcome = client.result(task_id)
    if outcome.progress:
        print(f"{outcome.progress['epoch']}/{outcome.progress['epochs']} epochs")
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from celery import states
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from kombu.exceptions import EncodeError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from spacer.exceptions import MessageError
# remote_errors: failures are read back by class name from there.
from workers import dedup, outbox, remote_errors, routing  # noqa: F401
from workers.embedded import ensure_worker
from workers.errors import BrokerUnavailableError, RemoteError, remote_error
from workers.job_state_store import store_for
from workers.queues import present_task_ids
from workers.result_wait import WaitTimedOut, wait_for_final_meta
from workers.task_states import PROGRESS


logger = logging.getLogger(__name__)

# Seconds between two looks for the message of a job key's holder.
MESSAGE_GONE_RECHECK = 0.5


@dataclass(frozen=True)
class TaskResult:
    """Where a task stands; once ready, its return message or its error."""

    id: str
    # PENDING (or unknown), STARTED, PROGRESS (running, see ``progress``),
    # RETRY, SUCCESS, FAILURE, REVOKED
    state: str
    value: Any = None  # the return message JSON, on SUCCESS
    error_type: str | None = None  # on FAILURE (and the last error on RETRY)
    error_message: str | None = None
    traceback: str | None = None
    # In state PROGRESS, what the task last reported; a training reports
    # {'epoch': epochs finished, 'epochs': epochs in all, 'ref_acc': float}.
    progress: dict | None = None

    @property
    def ready(self) -> bool:
        return self.state in states.READY_STATES

    @property
    def ok(self) -> bool:
        return self.state == states.SUCCESS

    def raise_for_error(self) -> Any:
        """The value on success; RemoteError naming the cause otherwise."""
        if self.state == states.SUCCESS:
            return self.value
        if self.ready:
            raise remote_error(self.error_type or self.state, self.error_message or '')
        raise RuntimeError(f"Task {self.id} is not finished ({self.state}).")


def to_json(message: Any) -> Any:
    """The wire form of a message object (its ``serialize()``) or JSON as given."""
    if hasattr(message, 'serialize') and callable(message.serialize):
        return message.serialize()
    if isinstance(message, dict):
        return message
    raise TypeError(f"A message must be a spacer message or a JSON dict, "
                    f"not {type(message).__name__}.")


def _error_parts(exc: Any) -> tuple[str | None, str | None]:
    if exc is None:
        return None, None
    if isinstance(exc, RemoteError):
        return exc.error_type, exc.message
    if isinstance(exc, BaseException):
        return type(exc).__name__, str(exc)
    return type(exc).__name__, repr(exc)


def task_result(task_id: str, meta: dict) -> TaskResult:
    """A TaskResult from a task's stored meta, as the backend decodes it
    (a failure's ``result`` is the exception)."""
    state = meta.get('status') or states.PENDING
    stored = meta.get('result')
    value = stored if state == states.SUCCESS else None
    error_type = error_message = tb = None
    if state in (states.FAILURE, states.RETRY, states.REVOKED):
        error_type, error_message = _error_parts(stored)
        tb = meta.get('traceback')
    progress = dict(stored) if state == PROGRESS and isinstance(stored, dict) else None
    return TaskResult(task_id, state, value, error_type, error_message, tb, progress)


# What a broker or Redis that is down or unreachable raises at the producer.
BROKER_FAULTS = (ConnectionError, TimeoutError, OperationalError,
                 RedisConnectionError, RedisTimeoutError)


class Client:
    """Submits to and reads from one Celery app (default: ``workers.app.app``)."""

    def __init__(self, app: Any = None):
        if app is None:
            # Here, not at the top: building the default app reads the
            # settings, which importing the client must not do.
            from workers.app import app as default_app
            app = default_app
        self.app = app
        self.settings = app.spacer_settings

    def _ensure_worker(self) -> None:
        if self.settings.embedded:
            ensure_worker(self.app)

    def submit(self, task_name: str | None, message: Any, *, dedup_job: bool = True,
               priority: int | None = None) -> str:
        """
        Queue ``message`` for ``task_name`` ('extract_features' or
        'spacer.extract_features'...; None: inferred from the message) and
        return the task id. While the same job (task and job token) is
        pending or running, submitting it again returns that task's id.
        ``priority``: Celery's message priority (on Redis, 0 is served
        first; RabbitMQ ignores it, its queues declare no maximum).
        """
        name = routing.full_name(task_name) if task_name else routing.task_name_for(message)
        body = to_json(message)
        kind = routing.kind_for(name, body)
        routing.check_job_tasks(name, body)
        queue = self.settings.queues[kind]
        soft, hard = self.settings.limits(kind)
        self._ensure_worker()
        task_id = str(uuid.uuid4())
        key = dedup.job_key(name, body) if dedup_job else None
        claimed_at = time.time()
        store = store_for(self.app)
        try:
            # Fail fast: Celery's own retries (publishing, subscribing to the
            # result) would hold the caller for tens of seconds, then raise
            # errors that do not say what is down. The claim reaches Redis
            # first; without one, a ping does.
            if key:
                running = dedup.claim_for_producer(
                    store, key, task_id, self.settings.dedup_ttl, self._stored_state,
                    now=claimed_at, message_gone=lambda holder: self._message_gone(queue, holder),
                    forget=self._drop_copy)
                if running is not None:
                    return running
            else:
                store.ping()
            broker_redis = outbox.broker_client(self.app)
            if broker_redis is not None:
                outbox.keep(broker_redis, task_id, name, queue, body, soft, hard, self.app)
        except BROKER_FAULTS as e:
            raise BrokerUnavailableError(self.app.conf.broker_write_url, e) from e
        try:
            options = {} if priority is None else {'priority': priority}
            self.app.send_task(name, args=[body], task_id=task_id, queue=queue,
                               argsrepr=_shown_args(body, self.app.amqp.argsrepr_maxsize),
                               exchange='', routing_key=queue,  # straight to the queue
                               soft_time_limit=soft, time_limit=hard, **options)
        except BaseException as e:
            queued = self._queued_after_fault(queue, task_id) if isinstance(e, BROKER_FAULTS) \
                else False
            if queued is None:  # unknown: the copy and the mark stay (see below)
                raise BrokerUnavailableError(
                    self.app.conf.broker_write_url, e,
                    consequence=f"the message may have been queued as task {task_id}; submit"
                                f" the job again once the broker answers: that returns the"
                                f" task if it was queued, or queues it anew") from e
            if not queued:
                self._forget_unsent(broker_redis, store, key, task_id, claimed_at)
                if isinstance(e, EncodeError):
                    raise MessageError(f"The {name} message is not JSON: {e}") from e
                if isinstance(e, BROKER_FAULTS):
                    raise BrokerUnavailableError(self.app.conf.broker_write_url, e) from e
                raise
            logger.warning("Task %s: the broker's reply to its message was lost, but the"
                           " message is queued.", task_id)
        return task_id

    def _queued_after_fault(self, queue: str, task_id: str) -> bool | None:
        """Whether a message whose send failed on a broker fault is queued
        all the same (the command reached Redis and its reply was lost;
        kombu may even have sent it twice, which the worker runs once:
        ``result_backend.queue_start``). None when the broker cannot tell
        now: the outbox copy and the job key's mark then stay, so that the
        job submitted again returns this task while its message is queued,
        and takes the key over (dropping the copy) once it is gone."""
        if outbox.broker_client(self.app) is None:
            return False  # only a Redis broker can tell, and it keeps no copy
        try:
            return not self._message_gone(queue, task_id)
        except BROKER_FAULTS:
            return None

    def _drop_copy(self, task_id: str) -> None:
        """Drop the outbox copy of a task whose job key was taken over: it
        must not be sent again by an audit."""
        broker_redis = outbox.broker_client(self.app)
        if broker_redis is not None:
            outbox.drop(broker_redis, [task_id])

    def _forget_unsent(self, broker_redis: Any, store: Any, key: str | None, task_id: str,
                       claimed_at: float) -> None:
        """Drop the outbox copy and the job key's mark of a message that
        was not queued."""
        if broker_redis is not None:
            try:
                outbox.drop(broker_redis, [task_id])
            except BROKER_FAULTS:  # an audit drops it: the task never started
                pass
        if key:
            try:
                dedup.release_unsent(store, key, task_id, claimed_at)
            except BROKER_FAULTS:  # taken over once its message is seen gone
                pass

    def _stored_state(self, task_id: str) -> str:
        return AsyncResult(task_id, app=self.app).state

    def _message_gone(self, queue: str, task_id: str) -> bool:
        """Whether a task that never started has no message left (purged):
        neither waiting in ``queue`` nor held by a worker. Only a Redis
        broker can tell; elsewhere the task counts as queued."""
        client = outbox.broker_client(self.app)
        if client is None:
            return False
        for attempt in range(2):
            if task_id in present_task_ids(client, [queue]):
                return False
            if attempt == 0:
                # A worker may have just popped it and not yet recorded it
                # as unacknowledged: look again once that has surely happened.
                time.sleep(MESSAGE_GONE_RECHECK)
                if self._stored_state(task_id) != states.PENDING:
                    return False
        return True

    def result(self, task_id: str) -> TaskResult:
        """Where one task stands, without waiting."""
        return task_result(task_id, self.app.backend.get_task_meta(task_id))

    def peek(self, task_ids: Iterable[str]) -> dict[str, TaskResult]:
        """
        Where each task stands, from one read of the result backend (a
        Redis MGET for all of them) and without the backend's retry loop:
        a periodic collector must never hang on a backend that is down.
        It gets BrokerUnavailableError at once instead.
        """
        ids = list(dict.fromkeys(task_ids))
        backend = self.app.backend
        if not ids:
            return {}
        if not isinstance(backend, RedisBackend):  # the embedded worker's, RPC
            return self.poll(ids)
        try:
            values = backend.mget([backend.get_key_for_task(i) for i in ids])
        except BROKER_FAULTS as e:
            raise self._backend_unreachable(e) from e
        return {task_id: task_result(task_id, backend.decode_result(value) if value
                                     else {'status': states.PENDING, 'result': None})
                for task_id, value in zip(ids, values)}

    def _backend_unreachable(self, fault: BaseException) -> BrokerUnavailableError:
        backend = self.app.backend
        return BrokerUnavailableError(getattr(backend, 'url', None) or self.app.conf.result_backend,
                                      fault, consequence=None, what='result backend')

    def poll(self, task_ids: Iterable[str]) -> dict[str, TaskResult]:
        """Where each task stands, without waiting."""
        return {task_id: self.result(task_id) for task_id in task_ids}

    def wait_result(self, task_id: str, timeout: float | None = None) -> TaskResult:
        """Block until the task is finished; TimeoutError after ``timeout`` s.
        A Redis result backend that goes away meanwhile is waited out
        (``workers.result_wait``); one that refuses this client's
        credentials raises BrokerUnavailableError."""
        backend = self.app.backend
        if not isinstance(backend, RedisBackend):
            return self._wait_async_result(task_id, timeout)
        try:
            return task_result(task_id, wait_for_final_meta(backend, task_id, timeout))
        except WaitTimedOut as timed_out:
            if timed_out.fault is None:
                raise _not_finished(task_id, timeout, timed_out.state) from None
            unknown = f"unknown: {self._backend_unreachable(timed_out.fault)}"
            raise _not_finished(task_id, timeout, unknown) from timed_out.fault
        except BROKER_FAULTS as e:  # refused: wrong credentials, ACL
            raise self._backend_unreachable(e) from e

    def _wait_async_result(self, task_id: str, timeout: float | None) -> TaskResult:
        """Celery's own wait, for backends other than Redis: the embedded
        worker's in-memory one (polled), RPC (pushed through the broker, to
        the waiting result object alone: a read of the stored state in
        between would find nothing and could take the message)."""
        from celery.exceptions import TimeoutError as CeleryTimeout

        waiting = AsyncResult(task_id, app=self.app)
        try:
            waiting.get(timeout=timeout, propagate=False, interval=0.005,
                        disable_sync_subtasks=False)
        except CeleryTimeout:
            current = self.result(task_id)  # a result stored at the last moment
            if current.ready:
                return current
            raise _not_finished(task_id, timeout, current.state) from None
        received = waiting._cache
        if received and received.get('status') in states.READY_STATES:
            return task_result(task_id, received)
        return self.result(task_id)

    def wait(self, task_id: str, timeout: float | None = None) -> Any:
        """
        The return message JSON of a task, once it is finished. A task that
        failed raises RemoteError naming the error class and message.
        """
        return self.wait_result(task_id, timeout).raise_for_error()


def _not_finished(task_id: str, timeout: float | None, state: str | None) -> TimeoutError:
    return TimeoutError(f"Task {task_id} not finished after {timeout} s (state {state}).")


def _shown_args(body: Any, limit: int) -> str | None:
    """The task's arguments as Flower and task events show them: the
    message's JSON, cut at Celery's ``argsrepr_maxsize``. Celery's own
    repr walks the message token by token: a tenth of a millisecond a send.
    None (Celery's repr) for a message that is not JSON: sending refuses it."""
    try:
        text = json.dumps([body])
    except (TypeError, ValueError):
        return None
    return text if len(text) <= limit else text[:max(0, limit - 3)] + '...'


_default: Client | None = None


def default_client() -> Client:
    global _default
    if _default is None:
        _default = Client()
    return _default


def submit(task_name: str | None, message: Any, *, dedup_job: bool = True,
           priority: int | None = None) -> str:
    return default_client().submit(task_name, message, dedup_job=dedup_job, priority=priority)


def poll(task_ids: Iterable[str]) -> dict[str, TaskResult]:
    return default_client().poll(task_ids)


def peek(task_ids: Iterable[str]) -> dict[str, TaskResult]:
    return default_client().peek(task_ids)


def wait(task_id: str, timeout: float | None = None) -> Any:
    return default_client().wait(task_id, timeout)


def result(task_id: str) -> TaskResult:
    return default_client().result(task_id)
