"""
CoralNet's queue backend on the spacer fleet.

CoralNet picks its vision-backend queue class from the Django setting
``SPACER_QUEUE_CHOICE``; with ``'workers.coralnet_queue.CeleryQueue'`` its
jobs run on the fleet instead of AWS Batch. The class has the shape of
CoralNet's ``vision_backend.queues.BaseQueue``:

- ``submit_job(job, job_id, spec_level)`` sends the JobMsg as one
  ``process_job`` task through ``workers.client`` (so dedup, the outbox and
  routing apply) and records it;
- ``get_collectable_jobs()`` lists the recorded jobs not yet collected;
- ``collect_jobs(jobs)`` (at most 100) returns the JobReturnMsgs of the
  finished ones and one status per job, in AWS Batch's words.

The record lives in Redis (the result backend's, else the broker's), never
in the web process, so a restarted web process collects what an earlier
one submitted; a collected job leaves the record, and only the collector
that removes it returns its result (two collectors never both do).
Collection never waits: one MGET of the result backend for the whole
batch. See docs/coralnet.md.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable

from spacer import exceptions
from spacer.exceptions import ConfigError
from spacer.messages import JobMsg, JobReturnMsg
from workers import outbox
from workers.client import BROKER_FAULTS, Client, TaskResult, default_client
from workers.errors import BrokerUnavailableError
from workers.job_state_store import redis_client, redis_url_of

logger = logging.getLogger(__name__)

RECORD = 'spacer:coralnet:jobs'  # hash: job id -> JSON {task_id, submitted, spec_level}
MESSAGES = 'spacer:coralnet:messages'  # hash: job id -> the JobMsg JSON
MAX_JOBS_PER_COLLECT = 100  # CoralNet's batches (AWS Batch's describe_jobs limit)
# A record without a task id is a submit that never completed (the web
# process died between the record and the send): after this long it is
# reported dropped. A live submit takes at most BROKER_CONNECT_TIMEOUT.
UNSENT_GRACE = 300.0

# CoralNet's SpacerJobSpec values -> Celery priority. On Redis, priority 0
# is served first: medium jobs (ordinary images, ordinary sources) are not
# held up behind the few huge ones ('high': very large images, the largest
# trainings), which take minutes to hours; a high job still runs as soon as
# a worker of its kind has no medium job waiting. Each kind's workers are
# already sized for its largest job, so the level needs no other queue.
PRIORITY_OF_SPEC_LEVEL = {'medium': 0, 'high': 9}

# AWS Batch's job statuses, as CoralNet's BatchQueue reports them.
SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED = (
    'SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED')
# CoralNet's BatchQueue word for a job AWS Batch no longer knows.
DROPPED = 'DROPPED'

BATCH_STATUS_OF_STATE = {
    'PENDING': RUNNABLE,  # queued: waiting for a worker of its kind
    'RECEIVED': STARTING,  # a worker took the message
    'STARTED': RUNNING,
    'PROGRESS': RUNNING,  # a training between epochs
    'RETRY': RUNNABLE,  # a transient fault: queued again after a backoff
    'SUCCESS': SUCCEEDED,
    'FAILURE': FAILED,
    'REVOKED': FAILED,  # purged by an operator: it will never run
}
FINISHED_STATES = frozenset({'SUCCESS', 'FAILURE', 'REVOKED'})

# Where the fleet's failure classes live, by name, when they are not in
# spacer.exceptions or builtins (the backend keeps only the class name).
_FLEET_ERROR_MODULES = {
    'TimeLimitExceeded': 'billiard.exceptions',
    'SoftTimeLimitExceeded': 'billiard.exceptions',
    'WorkerLostError': 'billiard.exceptions',
    'TaskRevokedError': 'celery.exceptions',
    'NotRegistered': 'celery.exceptions',
    'DuplicateJobError': 'workers.errors',
    'JobLostError': __name__,
}


class JobLostError(Exception):
    """The fleet no longer knows a recorded job: its result expired before
    it was collected, or its submit never completed."""


def batch_status(celery_state: str) -> str:
    """AWS Batch's word for a Celery state; a state a task set itself
    while working counts as RUNNING."""
    return BATCH_STATUS_OF_STATE.get(celery_state, RUNNING)


def spec_level_value(spec_level: Any) -> str:
    """'medium' or 'high' from CoralNet's SpacerJobSpec, its value or a string."""
    value = getattr(spec_level, 'value', spec_level)
    if not isinstance(value, str) or value.lower() not in PRIORITY_OF_SPEC_LEVEL:
        raise ValueError(f"spec_level must be one of {', '.join(PRIORITY_OF_SPEC_LEVEL)},"
                         f" not {spec_level!r}.")
    return value.lower()


def error_class_path(error_type: str) -> str:
    """The dotted class path of a failure stored by class name, as
    pyspacer's traceback line names it (builtins bare)."""
    import builtins

    if isinstance(getattr(exceptions, error_type, None), type):
        cls = getattr(exceptions, error_type)
        return f'{cls.__module__}.{cls.__qualname__}'
    if isinstance(getattr(builtins, error_type, None), type):
        return error_type
    return f"{_FLEET_ERROR_MODULES.get(error_type, 'workers.remote_errors')}.{error_type}"


def error_message_of(error_type: str, text: str, traceback: str | None = None) -> str:
    """A failed job's error_message as pyspacer writes it: the traceback
    (when there is one), its last line ``dotted.ExceptionClass: text``."""
    last = f"{error_class_path(error_type)}: {' '.join(text.splitlines())}".rstrip()
    head = (traceback or '').rstrip('\n')
    return f"{head}\n{last}" if head else last


@dataclass(frozen=True)
class CollectableJob:
    """A submitted job not yet collected, as get_collectable_jobs lists it."""

    job_id: int
    task_id: str | None  # None while its submit has not completed
    submitted: float  # time.time() of the submit
    spec_level: str

    def __str__(self) -> str:
        return f"job {self.job_id} (task {self.task_id or 'not sent'})"


@dataclass(frozen=True)
class _Outcome:
    status: str
    result: JobReturnMsg | None = None


class CeleryQueue:
    """CoralNet's BaseQueue on the fleet (``SPACER_QUEUE_CHOICE``)."""

    def __init__(self, client: Client | None = None):
        self.client = client or default_client()
        url = redis_url_of(self.client.app)
        if url is None:
            raise ConfigError(
                "CeleryQueue keeps its record of submitted jobs in Redis: set "
                "SPACER_BROKER_URL (or SPACER_RESULT_BACKEND) to a redis:// URL.")
        self.redis_url = url
        self.redis = redis_client(url)

    def submit_job(self, job: JobMsg, job_id: int, spec_level: Any) -> str:
        """Record the job, then send it as a process_job task; its task id.
        A job not sent (the broker down: BrokerUnavailableError) leaves the
        record, so it is reported by the exception alone."""
        level = spec_level_value(spec_level)
        message = job.serialize() if isinstance(job, JobMsg) else dict(job)
        field = str(int(job_id))
        entry = {'task_id': None, 'submitted': time.time(), 'spec_level': level}
        self._write(field, entry, json.dumps(message))
        try:
            task_id = self.client.submit('process_job', message,
                                         priority=PRIORITY_OF_SPEC_LEVEL[level])
        except BaseException:
            try:
                self._forget([field])
            except BrokerUnavailableError:  # left unsent: reported DROPPED later
                pass
            raise
        self._write(field, dict(entry, task_id=task_id))
        return task_id

    def get_collectable_jobs(self) -> list[CollectableJob]:
        """Every recorded job not yet collected, by job id."""
        raw = self._redis(lambda: self.redis.hgetall(RECORD))
        jobs = [_job(field, entry) for field, entry in raw.items()]
        return sorted(jobs, key=lambda job: job.job_id)

    def collect_jobs(self, jobs: Iterable[CollectableJob | int]
                     ) -> tuple[list[JobReturnMsg], list[str]]:
        """
        One status per job, in order, and the JobReturnMsgs of those that
        finished (SUCCEEDED: every task succeeded; FAILED: ok=False, its
        error_message's last line ``dotted.ExceptionClass: text``). A job
        the record does not hold (collected already, or never submitted
        here) is DROPPED, with no result; a recorded job the fleet lost is
        DROPPED with an ok=False result, so CoralNet can finish it.
        """
        fields = [str(job.job_id if isinstance(job, CollectableJob) else int(job))
                  for job in jobs]
        if len(fields) > MAX_JOBS_PER_COLLECT:
            raise ValueError(f"collect_jobs takes at most {MAX_JOBS_PER_COLLECT} jobs,"
                             f" got {len(fields)}.")
        if not fields:
            return [], []
        raw = self._redis(lambda: self.redis.hmget(RECORD, fields))
        recorded = {f: _job(f, e) for f, e in zip(fields, raw) if e is not None}
        states = self.client.peek(job.task_id for job in recorded.values() if job.task_id)
        gone = self._messages_gone([task_id for task_id, state in states.items()
                                    if state.state == 'PENDING'])
        outcomes = {f: self._outcome(job, states.get(job.task_id), job.task_id in gone)
                    for f, job in recorded.items()}
        unanswered = [f for f, outcome in outcomes.items()
                      if outcome.result is None and outcome.status in (FAILED, DROPPED)]
        if unanswered:  # failures and losses answer with the JobMsg they were sent
            messages = self._redis(lambda: self.redis.hmget(MESSAGES, unanswered))
            for f, message in zip(unanswered, messages):
                job = recorded[f]
                outcomes[f] = self._failed_outcome(job, states.get(job.task_id),
                                                   outcomes[f].status, message)
        done = [f for f, outcome in outcomes.items() if outcome.result is not None]
        # Only the collector whose HDEL removed a job returns its result.
        ours = {f for f, removed in zip(done, self._forget(done)) if removed}
        results, statuses = [], []
        for f in fields:
            if f not in outcomes:
                logger.warning("CoralNet job %s is not in the record (collected already,"
                               " or never submitted here): reported %s.", f, DROPPED)
                statuses.append(DROPPED)
                continue
            statuses.append(outcomes[f].status)
            if f in ours:
                results.append(outcomes[f].result)
                ours.discard(f)  # a job listed twice is returned once
        return results, statuses

    def _outcome(self, job: CollectableJob, state: TaskResult | None,
                 message_gone: bool) -> _Outcome:
        """Where a recorded job stands, with the result of a clean success
        (other endings are answered by _failed_outcome)."""
        if job.task_id is None or state is None:
            lost = time.time() - job.submitted > UNSENT_GRACE
            return _Outcome(DROPPED if lost else SUBMITTED)
        if message_gone:
            return _Outcome(DROPPED)
        if state.state == 'SUCCESS':
            try:
                result = JobReturnMsg.deserialize(state.value)
            except Exception:  # noqa: BLE001 - answered as a failure
                logger.exception("Task %s of CoralNet job %s returned an unreadable"
                                 " JobReturnMsg.", job.task_id, job.job_id)
                return _Outcome(FAILED)
            return _Outcome(SUCCEEDED if result.ok else FAILED, result)
        return _Outcome(batch_status(state.state))

    def _failed_outcome(self, job: CollectableJob, state: TaskResult | None,
                        status: str, message: bytes | None) -> _Outcome:
        if message is None:  # the record was written by no submit_job of ours
            logger.error("CoralNet job %s has no JobMsg in the record.", job.job_id)
            return _Outcome(status)
        original = JobMsg.deserialize(json.loads(message))
        if status == DROPPED:
            why = ('its submit never completed' if job.task_id is None else
                   f'task {job.task_id} is neither queued, running nor finished'
                   ' (its result expired before it was collected, or Redis lost it)')
            error = error_message_of('JobLostError', f"Job {job.job_id}: {why}.")
        elif state is not None and state.state == 'SUCCESS':
            error = error_message_of('MessageError', f"Task {job.task_id} returned a"
                                     " result that is not a JobReturnMsg.")
        else:
            error = error_message_of(state.error_type or state.state,
                                     state.error_message or state.state, state.traceback)
        return _Outcome(status, JobReturnMsg(original_job=original, ok=False,
                                             results=None, error_message=error))

    def _messages_gone(self, task_ids: list[str]) -> set[str]:
        """Those of tasks that read PENDING that have no message left: the
        producer keeps a copy in the outbox until the task ends, so PENDING
        without a copy is a result that expired (or a Redis that lost it).
        Only a Redis broker can tell; elsewhere every task counts as queued."""
        broker = outbox.broker_client(self.client.app)
        if broker is None or not task_ids:
            return set()

        def look():
            with broker.pipeline(transaction=False) as pipe:
                for task_id in task_ids:
                    pipe.hexists(outbox.COPIES, task_id)
                return pipe.execute()
        return {task_id for task_id, kept in zip(task_ids, self._redis(look)) if not kept}

    def _write(self, field: str, entry: dict, message: str | None = None) -> None:
        def write():
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(RECORD, field, json.dumps(entry))
                if message is not None:
                    pipe.hset(MESSAGES, field, message)
                pipe.execute()
        self._redis(write)

    def _forget(self, fields: list[str]) -> list[bool]:
        """Remove jobs from the record; for each, whether this call did."""
        if not fields:
            return []

        def forget():
            with self.redis.pipeline(transaction=True) as pipe:
                for field in fields:
                    pipe.hdel(RECORD, field)
                pipe.hdel(MESSAGES, *fields)
                return [bool(n) for n in pipe.execute()[:len(fields)]]
        return self._redis(forget)

    def _redis(self, call: Any) -> Any:
        try:
            return call()
        except BROKER_FAULTS as e:
            raise BrokerUnavailableError(self.redis_url, e, consequence=None) from e


def _job(field: Any, entry: Any) -> CollectableJob:
    field = field.decode() if isinstance(field, bytes) else field
    data = json.loads(entry)
    return CollectableJob(job_id=int(field), task_id=data.get('task_id'),
                          submitted=float(data['submitted']), spec_level=data['spec_level'])
