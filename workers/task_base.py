"""
The base class of every spacer task: the failure policies around the body.

Around ``run(message)``:
1. store STARTED and, in the same round trip, claim the job key (dedup: a
   second run of a pending/running job fails at once with
   DuplicateJobError, and runs nothing); a second copy of the same message
   (a publish that reached Redis twice) is acknowledged and runs nothing;
2. on an exception, by its kind (``policies.failures``): bad input fails
   now; a transient fault is retried with backoff until ``RETRY_MAX``
   retries are spent; anything else fails now. A failure is raised as
   ``RemoteError(class name, message)`` so the caller reads both intact;
3. release the job key unless a retry is coming.
A failure other than bad input is kept as a dead letter before its result
is stored; the ``task_failure`` hook (``policies.dead_letters``) keeps the
failures the body never saw (hard time limits, retries of a dead process
spent).

Before the body, in the worker's main process: a message over its task's
size limit fails unread (``size_checked_strategy``), and a redelivered
message of a finished task is acknowledged unrun (``SpacerRequest``).
"""
from __future__ import annotations

import logging
import os
import traceback
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Task, states
from celery.exceptions import Ignore, Reject, Retry, TimeLimitExceeded
from celery.worker.request import Request
from celery.worker.state import task_ready

from spacer.exceptions import MessageError
# remote_errors: failures are read back by class name from there.
from workers import dedup, failure_policy, metrics
from workers import remote_errors, signing  # noqa: F401
from workers.errors import DuplicateJobError, RemoteError, remote_error
from workers.failure_kinds import Failure
from workers.job_state_store import RedisKeyStore, store_for
from workers.liveness import on_redis, settle_on_fresh_channel
from workers.result_backend import DUPLICATE, SUCCEEDED_ALREADY, RedisResultBackend

logger = logging.getLogger(__name__)


def size_checked_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy for a task's messages, after one check of the
    raw body: a message larger than its task's limit fails unread. Celery's
    own handler decodes every body in the worker's main process (to tell
    old-style messages apart), so a hostile list of a million points would
    cost hundreds of megabytes there before any check of ours ran."""
    from celery.worker.strategy import default

    handle = default(task, app, consumer, **kwargs)
    limit = app.spacer_settings.message_byte_limit(task.name)
    if signing.signs(app):  # the same message, base64 and signature added
        limit = signing.signed_size(limit)

    def task_message_handler(message: Any, body: Any, ack: Any, reject: Any,
                             callbacks: Any, **options: Any) -> Any:
        size = len(message.body or b'')
        if size <= limit:
            return handle(message, body, ack, reject, callbacks, **options)
        _refuse_oversized(app, task.name, message, size, limit)
        ack()
        return None

    return task_message_handler


def _refuse_oversized(app: Any, task_name: str, message: Any, size: int, limit: int) -> None:
    task_id = (message.headers or {}).get('id')
    error = remote_error('DataLimitError', f"The {task_name} message is {size} bytes, over"
                         f" the {limit}-byte limit for it; it was not read.")
    logger.warning("Task %s[%s] refused: %s", task_name, task_id, error.message)
    metrics.count_refused(task_name, error.error_type)
    if isinstance(task_id, str) and task_id:
        try:
            app.backend.mark_as_failure(task_id, error)
        except Exception:  # noqa: BLE001 - the message is dropped either way
            logger.exception("Could not store the failure of refused task %s", task_id)


class SpacerRequest(Request):
    """How a worker's main process handles one delivered message, before and
    after the pool runs it:

    - a redelivered message whose task already finished is acknowledged
      without running again (``revoked``);
    - a hard time limit is reported once (``on_timeout``, ``on_failure``);
    - a message whose Redis channel closed while its task ran (the broker
      connection was lost) is acknowledged or requeued on a fresh channel.

    When the hard limit kills a pool process, Celery hears of it twice (the
    pool sets the job's result to ``TimeLimitExceeded``, then its timeout
    handler runs), and later the pool may report the killed process as
    lost. Left alone, that fires ``task_failure`` (a dead letter) twice, or
    retries the task (``retry_on_worker_lost``) and runs a stuck message
    again and again."""

    limit_reported = False

    def revoked(self) -> bool:
        """Revoked, or finished already: a message redelivered after its task
        stored a final result (its worker died before acknowledging it, and
        the visibility timeout brought it back) is acknowledged without
        running again; the stored result stays as it was."""
        if super().revoked():
            return True
        if not self.delivery_info.get('redelivered'):
            # A first delivery cannot have run before (a retry is a new
            # message of state RETRY): no backend read on the hot path.
            # Every way a message comes back (kombu's restores, the
            # liveness reaper, a rejected message requeued) marks it.
            return False
        state = self._stored_state()
        if state in (states.SUCCESS, states.FAILURE):
            logger.warning("Task %s[%s] already finished (%s); its redelivered message is"
                           " acknowledged without running again.", self.name, self.id, state)
            self._already_revoked = True  # later checks answer at once
            task_ready(self)
            self.acknowledge()
            return True
        return False

    def _stored_state(self) -> str | None:
        """The state in the result backend, or None when it cannot be read
        now (then the task runs: at least once beats at most once)."""
        try:
            # One read, not the backend's retry loop: the consumer waits on it.
            return self.task.backend._get_task_meta_for(self.id).get('status')
        except Exception:  # noqa: BLE001 - an unreadable backend must not stop work
            logger.warning("Could not read the stored state of task %s; running it.",
                           self.id, exc_info=True)
            return None

    def acknowledge(self) -> None:
        if not self.acknowledged and self._channel_closed():
            self._settle_on_fresh_channel(requeue=False)
            return
        super().acknowledge()

    def reject(self, requeue: bool = False) -> None:
        if not self.acknowledged and self._channel_closed():
            self._settle_on_fresh_channel(requeue)
            self.send_event('task-rejected', requeue=requeue)
            return
        super().reject(requeue)

    def _channel_closed(self) -> bool:
        """Whether the Redis channel that delivered the message has closed
        since (the broker connection was lost and made again)."""
        return bool(getattr(self._message.channel, 'closed', False)) and on_redis(self.app)

    def _settle_on_fresh_channel(self, requeue: bool) -> None:
        self.acknowledged = True
        try:
            settle_on_fresh_channel(self.app, self._message.delivery_tag, requeue)
        except Exception:  # noqa: BLE001 - the reaper returns it to its queue later
            logger.warning("Could not %s the message of task %s[%s] after its broker"
                           " connection was lost; the liveness reaper will requeue it.",
                           'requeue' if requeue else 'acknowledge', self.name, self.id,
                           exc_info=True)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if soft or not self.limit_reported:
            self.limit_reported = self.limit_reported or not soft
            super().on_timeout(soft, timeout)
            return
        task_ready(self)  # stored and reported already: just let it go
        logger.error("Hard time limit (%ss) exceeded for %s[%s]", timeout, self.name, self.id)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        limit_hit = isinstance(exc, TimeLimitExceeded)
        if self.limit_reported and (limit_hit or isinstance(exc, WorkerLostError)):
            if self.task.acks_late:
                self.acknowledge()  # the failure is final; nothing to redeliver
            return
        self.limit_reported = limit_hit
        super().on_failure(exc_info, send_failed_event=send_failed_event,
                           return_ok=return_ok)


class SpacerTask(Task):
    abstract = True
    Request = SpacerRequest
    Strategy = 'workers.task_base:size_checked_strategy'
    # Failures are logged here, once, with the right level.
    throws = (RemoteError,)
    # STARTED is stored by ``_start``, not by Celery's tracer: with the
    # job-key claim, in one round trip.
    track_started = False
    # The "succeeded" log line shows the start of the result; Celery's 1024
    # characters of a score list cost a third of a millisecond a task.
    resultrepr_maxsize = 200

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            message, args = args[0], args[1:]
        elif 'message' in kwargs:
            message = kwargs.pop('message')
        else:  # a raw send_task without the message
            exc = MessageError(f"{self.name} takes one argument, the message"
                               f" (a JSON object); it was sent none.")
            raise self._failure(exc, Failure.INPUT, 0) from None
        task_id = self.request.id
        store = store_for(self.app) if task_id else None
        key = dedup.job_key(self.name, message) if store else None
        try:
            running = self._start(store, key)
        except Ignore:
            raise
        except Exception as exc:
            # Redis down before the body ran: nothing happened yet, so a
            # transient fault is retried like one in the body.
            retries = self.request.retries or 0
            if failure_policy.decide(exc, retries, self.app.spacer_settings.retry_max).retry:
                raise self._retry(exc, retries) from None
            raise
        if running is not None:
            exc = DuplicateJobError(key, running)
            logger.warning("%s", exc)
            error = RemoteError.from_exception(exc)
            error.failure = Failure.INPUT
            raise error
        try:
            return self.run(message, *args, **kwargs)
        except Retry:
            raise
        except Exception as exc:
            retries = self.request.retries or 0
            decision = failure_policy.decide(exc, retries, self.app.spacer_settings.retry_max)
            if decision.retry:
                raise self._retry(exc, retries)
            raise self._failure(exc, decision.kind, retries) from exc

    def _start(self, store: Any, key: str | None) -> str | None:
        """Store the STARTED state (``task_track_started``) and claim the
        job key: one round trip when the result backend is Redis (the key
        store is then on the backend's server and database:
        ``job_state_store.redis_url_of``). The id of the task holding the
        key, if not this one. Raises Ignore, running nothing, for a second
        copy of a message whose attempt has started or finished already
        (``result_backend.queue_start``)."""
        request = self.request
        ttl = self.app.spacer_settings.dedup_ttl
        started = None
        if (self.app.conf.task_track_started and not request.is_eager
                and not request.called_directly
                and not (self.ignore_result or request.ignore_result)):
            started = {'pid': os.getpid(), 'hostname': request.hostname}
        if not (started and isinstance(self.backend, RedisResultBackend)):
            if started:
                self.backend.store_result(request.id, started, states.STARTED, request=request)
            return dedup.claim(store, key, request.id, ttl) if key else None
        replies: list = []

        def start_attempt(pipe: Any) -> Any:
            replies.append(self.backend.queue_start(pipe, request, started))
            return replies.extend
        if key and isinstance(store, RedisKeyStore):
            running = dedup.claim(store, key, request.id, ttl, along=start_attempt)
        else:
            with self.backend.client.pipeline(transaction=False) as pipe:
                start_attempt(pipe)
                replies.extend(pipe.execute())
            running = dedup.claim(store, key, request.id, ttl) if key else None
        if replies[0] is False:  # results not in JSON: stored the usual way
            self.backend.store_result(request.id, started, states.STARTED, request=request)
        elif replies[1] in (DUPLICATE, SUCCEEDED_ALREADY):
            self._skip_duplicate(store, key, replies[1])
        return running

    def _skip_duplicate(self, store: Any, key: str | None, reply: int) -> None:
        """A second copy of a message that has started (or finished): run
        nothing, store nothing (Ignore: the message is acknowledged). The
        job key, if this copy's claim took it after the first finished, is
        given back."""
        state = self.backend._get_task_meta_for(self.request.id).get('status')
        if key and state in dedup.FINISHED:
            dedup.release(store, key, self.request.id)
        logger.warning("Task %s[%s]: a second copy of its message (%s), not run.",
                       self.name, self.request.id,
                       'it succeeded already' if reply == SUCCEEDED_ALREADY
                       else f'this attempt has started already; state {state}')
        raise Ignore()

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any,
                     einfo: Any) -> None:
        """The task ended for good (success or failure; Celery skips this
        for a retry or a requeue), and its state is stored: the caller has
        its result, and only then is the bookkeeping done."""
        message = args[0] if args else (kwargs or {}).get('message')
        failure_policy.task_ended(self.app, self.name, task_id, message)

    def _retry(self, exc: Exception, retries: int) -> Retry:
        settings = self.app.spacer_settings
        delay = failure_policy.retry_delay(retries, settings)
        logger.warning("Task %s[%s] hit a transient fault (%s: %s); retry %d of %d in %.1f s.",
                       self.name, self.request.id, type(exc).__name__, exc,
                       retries + 1, settings.retry_max, delay)
        # exc=... keeps the cause in the RETRY state the caller can poll.
        try:
            return self.retry(exc=RemoteError.from_exception(exc), countdown=delay,
                              max_retries=settings.retry_max, throw=False)
        except Reject as rejected:
            # Celery could not queue the retry (the broker is down too) and
            # would drop the message as failed; put it back instead, to be
            # delivered again once the broker answers (benchmarks/faults.py
            # lost one task in 2000 this way during Redis restarts).
            logger.warning("Task %s[%s]: its retry could not be queued (%s); the message"
                           " goes back to its queue.", self.name, self.request.id,
                           rejected.reason)
            raise Reject(rejected.reason, requeue=True) from None

    def _failure(self, exc: Exception, kind: Failure, retries: int) -> RemoteError:
        if kind == Failure.INPUT:
            logger.warning("Task %s[%s] rejected its input: %s: %s",
                           self.name, self.request.id, type(exc).__name__, exc)
        else:
            logger.error("Task %s[%s] failed (%s, after %d retries)", self.name,
                         self.request.id, kind.value, retries, exc_info=exc)
        error = RemoteError.from_exception(exc)
        error.failure = kind
        # Kept before the failure is stored, so a caller who sees FAILURE
        # finds the dead letter; the task_failure hook then skips it.
        error.dead_lettered = failure_policy.keep_dead_letter(
            self, self.request.id, error, (self.request.args or [None])[:1],
            traceback=traceback.format_exc())
        return error
