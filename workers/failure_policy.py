"""
What happens when a spacer task fails: the one failure policy.

Every place that sees a failure asks here: the task wrapper
(``workers.task_base.SpacerTask``), ``process_job`` for each task of a job,
and Celery's ``task_failure`` signal for the failures no task body saw (a
hard time limit, a pool process lost with its retries spent).

- Bad input: fail now; no retry, no dead letter (the caller's error result
  names the cause, and nothing on our side needs fixing).
- A transient fault (``workers.failure_kinds``): retried with capped,
  jittered backoff (``workers.backoff``) while ``RETRY_MAX`` lasts, then
  handled as our own fault.
- Anything else: fail now and keep the message as a dead letter
  (``workers.dead_letters``) for an operator to resend.

Whenever a task ends with no retry coming, its job key is released
(``workers.dedup``) and its outbox copy dropped (``workers.outbox``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workers import dead_letters, dedup, outbox
from workers.backoff import backoff_delay, should_retry
from workers.failure_kinds import Failure, classify
from workers.job_state_store import store_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """What to do about one failure."""
    kind: Failure
    retry: bool

    @property
    def dead_letter(self) -> bool:
        """Whether the message is kept for an operator."""
        return not self.retry and self.kind != Failure.INPUT


def kind_of(exc: BaseException) -> Failure:
    """The kind of a failure; one already sorted (a ``RemoteError`` carrying
    ``failure``) keeps its kind."""
    return getattr(exc, 'failure', None) or classify(exc)


def decide(exc: BaseException, retries: int, retry_max: int) -> Decision:
    """The decision for ``exc`` after ``retries`` retries."""
    kind = kind_of(exc)
    return Decision(kind, kind == Failure.TRANSIENT and should_retry(retries, retry_max))


def retry_delay(retries: int, settings: Any) -> float:
    """Seconds before retry number ``retries + 1``."""
    return backoff_delay(retries, settings.retry_backoff, settings.retry_backoff_max)


def keep_dead_letter(task: Any, task_id: str | None, exc: BaseException, args: Any,
                     traceback: str | None = None) -> bool:
    """Keep the message of a task that failed for good, unless it failed on
    bad input; whether it was kept."""
    if not task_id or kind_of(exc) == Failure.INPUT:
        return False
    return dead_letters.record_failure(task, task_id, exc, args, traceback=traceback)


def task_ended(app: Any, task_name: str, task_id: str | None, message: Any) -> None:
    """Bookkeeping once a task ends with no retry coming: drop its outbox copy
    and release its job key. A fault here must not turn a finished task into
    a failed one; a key left behind is harmless (the producer takes over a
    key whose holder has finished, and it expires with ``DEDUP_TTL``).
    When the copies and the keys share a Redis, one round trip does both."""
    key = dedup.job_key(task_name, message) if task_id else None
    store = store_for(app) if key else None
    broker = outbox.broker_client(app) if key else None
    if broker is not None and getattr(store, 'client', None) is broker:
        try:
            with broker.pipeline(transaction=False) as pipe:
                outbox.queue_drop(pipe, [task_id])
                dedup.queue_release(store, pipe, key, task_id)
                pipe.execute()
        except Exception:  # noqa: BLE001 - bookkeeping after the work is done
            logger.warning("Could not drop the outbox copy and release job key %s of task"
                           " %s; an audit drops the copy, and the producer takes the key"
                           " over once it sees the task finished.", key, task_id,
                           exc_info=True)
        return
    outbox.ended(app, task_id)
    if not key:
        return
    try:
        dedup.release(store, key, task_id)
    except Exception:  # noqa: BLE001 - bookkeeping after the work is done
        logger.warning("Could not release job key %s of task %s; the producer takes it"
                       " over once it sees the task finished.", key, task_id, exc_info=True)


def _on_task_failure(sender: Any = None, task_id: str | None = None,
                     exception: BaseException | None = None, args: Any = None,
                     einfo: Any = None, **_: Any) -> None:
    """Failures the task body never saw (or saw and kept already)."""
    if sender is None or not getattr(sender, 'name', '').startswith('spacer.'):
        return
    if not hasattr(sender.app, 'spacer_settings'):
        return
    if not getattr(exception, 'dead_lettered', False):  # the body kept it already
        keep_dead_letter(sender, task_id, exception, args,
                         traceback=getattr(einfo, 'traceback', None))
    task_ended(sender.app, sender.name, task_id, args[0] if args else None)


def install() -> None:
    """Hook the policy on Celery's ``task_failure`` signal (once per process)."""
    from celery.signals import task_failure
    task_failure.connect(_on_task_failure, weak=False, dispatch_uid='spacer.failure_policy')
