"""
The Celery tasks: message JSON in, return message JSON out.

One Celery task per entry of the task table (``spacer.task_table``), plus
``process_job``. Each is thin: build the message from its JSON, call the
library's ``spacer.tasks`` function, serialize what it returns. Queues are
the business of ``workers.routing``; retries, dedup and dead letters of
``workers.failure_policy`` (applied by ``workers.task_base``); warm caches
and devices of ``workers.process_setup``.
Only workers import this module (it pulls in the library's task code);
producers send by name (``workers.client``).
"""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from spacer import messages
from spacer import tasks as spacer_tasks
from spacer.exceptions import MessageError, SpacerError
from spacer.task_table import TASKS, TaskSpec
from workers import control, failure_policy, liveness, metrics, process_setup, startup_guard
from workers.app import app
from workers.failure_kinds import Failure, classify
from workers.routing import PREFIX, PROCESS_JOB
from workers.task_base import SpacerTask
from workers.task_states import PROGRESS

logger = logging.getLogger(__name__)

failure_policy.install()
liveness.install()
process_setup.install()
startup_guard.install()
control.install()
metrics.install()

# Tasks are shared: they bind to whichever app a worker runs (the module's
# ``app``, or an embedded or test app built by ``make_app``). Default time
# limits come from the module app's settings; the producer sends each
# message's own limits with it.
_settings = app.spacer_settings


def _limits(kind: str) -> dict:
    """Time limits, and the retry budget a task spends when its pool process dies."""
    soft, hard = _settings.limits(kind)
    return {'soft_time_limit': soft, 'time_limit': hard,
            # A message that kills its process each time (out of memory, a
            # crash in native code) is retried this many times, then fails
            # and becomes a dead letter instead of looping forever.
            'retry_on_worker_lost': True, 'max_retries': _settings.retry_max,
            'default_retry_delay': _settings.retry_backoff}


CAUSE_CHARS = 500  # of a deserializer's error text, in a MessageError


def parse(message_class: type, message: Any) -> Any:
    """
    The message object of ``message`` (a JSON dict), or MessageError.

    Whatever a deserializer raises on malformed data (an AttributeError
    deep in a nested dict included) is the message's fault: it becomes a
    MessageError naming the message class, so the task fails as bad input
    (no retry, no dead letter). Only what is not the message's fault is
    left as it is: the worker short of memory or out of time, a transient
    fault, and spacer's own errors, which already say what is wrong.
    """
    name = message_class.__name__
    if not isinstance(message, dict):
        raise MessageError(
            f"{name} must arrive as a JSON object, not {type(message).__name__}.")
    try:
        return message_class.deserialize(message)
    except (SpacerError, MemoryError, SoftTimeLimitExceeded):
        raise
    except Exception as e:  # noqa: BLE001 - any other failure means malformed input
        if classify(e) == Failure.TRANSIENT:
            raise
        cause = str(e)
        if len(cause) > CAUSE_CHARS:  # a huge value quoted back must not bloat the result
            cause = cause[:CAUSE_CHARS] + '...'
        raise MessageError(f"Malformed {name}: {type(e).__name__}: {cause}") from e


PROGRESS_INTERVAL = 0.25  # seconds: fast epochs are reported at most this often


def epoch_reporter(task: SpacerTask,
                   job_tasks: int | None = None) -> Callable[..., None] | None:
    """
    An ``on_epoch`` callback that stores the state PROGRESS with meta
    ``{'epoch', 'epochs', 'ref_acc'}`` for ``task``'s caller to poll; None
    when the task runs without an id (called directly). For a job of
    ``job_tasks`` trainings the callback takes the task's index first and
    the meta adds ``'task'`` (counting from 1) and ``'tasks'``. Progress is
    best effort: a result backend that fails to store it is logged, and the
    training goes on.
    """
    task_id = task.request.id
    if not task_id:
        return None
    last = [float('-inf')]

    def store(meta: dict) -> None:
        now = time.monotonic()
        if meta['epoch'] != 1 and meta['epoch'] != meta['epochs'] \
                and now - last[0] < PROGRESS_INTERVAL:
            return
        last[0] = now
        try:
            task.update_state(task_id=task_id, state=PROGRESS, meta=meta)
        except Exception as exc:  # noqa: BLE001 - progress must not fail the task
            logger.warning("Task %s could not report its progress: %s: %s",
                           task_id, type(exc).__name__, exc)

    def report(epoch: int, epochs: int, ref_acc: float) -> None:
        store({'epoch': epoch, 'epochs': epochs, 'ref_acc': float(ref_acc)})

    def report_in_job(index: int, epoch: int, epochs: int, ref_acc: float) -> None:
        store({'task': index + 1, 'tasks': job_tasks, 'epoch': epoch,
               'epochs': epochs, 'ref_acc': float(ref_acc)})

    return report if job_tasks is None else report_in_job


def _celery_task(spec: TaskSpec) -> Any:
    """The Celery task of one task table entry."""
    message_class = messages.task_message_class(spec.name)

    def run(self: SpacerTask, message: dict) -> dict:
        msg = parse(message_class, message)
        function = getattr(spacer_tasks, spec.name)  # looked up late: tests patch it
        if spec.reports_epochs:
            return function(msg, on_epoch=epoch_reporter(self)).serialize()
        return function(msg).serialize()

    run.__name__ = run.__qualname__ = spec.name
    run.__doc__ = f"spacer.tasks.{spec.name} on a {spec.message_class} in JSON."
    return shared_task(name=PREFIX + spec.name, base=SpacerTask, bind=True,
                       **_limits(spec.queue_kind))(run)


TASK_OF_NAME = {name: _celery_task(spec) for name, spec in TASKS.items()}
globals().update(TASK_OF_NAME)  # workers.celery_tasks.extract_features, ...


# A JobMsg's own limits come with it from the producer (per its task
# name); a bare send_task gets the longest, so no legitimate job is cut.
@shared_task(name=PROCESS_JOB, base=SpacerTask, bind=True, **_limits('train'))
def process_job(self: SpacerTask, message: dict) -> dict:
    """
    pyspacer's process_job (``spacer.tasks.process_job``: every task runs,
    failures become a JobReturnMsg with ok=False and the tracebacks), except
    that a transient fault retries the whole job first (its tasks are
    idempotent), and the job is kept once as a dead letter when a task fails
    for a reason other than bad input.
    """
    job = parse(messages.JobMsg, message)
    dead_lettered = False

    def on_failure(task: Any, exc: Exception) -> None:
        nonlocal dead_lettered
        if failure_policy.decide(exc, self.request.retries or 0,
                                 self.app.spacer_settings.retry_max).retry:
            raise exc  # SpacerTask retries with backoff
        if not dead_lettered:
            dead_lettered = failure_policy.keep_dead_letter(
                self, self.request.id, exc, (message,), traceback=traceback.format_exc())

    return spacer_tasks.run_job(
        job, on_failure, epoch_reporter(self, job_tasks=len(job.tasks))).serialize()
