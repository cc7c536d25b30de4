"""
Copies of sent messages, kept until their task ends, to send again what
the broker lost.

A Redis consumer takes a message with BRPOP. If Redis stops (a restart, a
failover) or the connection drops just after serving that BRPOP, the pop
is done and persisted but the reply never reaches the worker: the message
is gone from Redis and was never received (``tests/workers/test_fault_suite.py``
lost one task in 500, one restart in three). kombu cannot prevent it. So:

- the producer (``workers.client``) keeps a copy of each message in the
  broker's Redis when it sends it (``keep``);
- a worker drops the copy when the task has ended (``drop``);
- after Redis restarts or a worker loses its broker connection, once the
  fleet has settled, one worker audits the outbox (``audit``): a task
  still PENDING or RETRY, sent before the fault, whose message is neither
  waiting in a queue nor held by any worker, is sent again under its own
  task id (a task in RETRY as its next attempt). Copies of tasks that ended
  are dropped on the way.

Messages sent by other producers (plain ``send_task``) have no copy and are
not covered. With signed messages on (``workers.signing``), the producer signs
its copy, and the audit sends again only a copy whose signature it trusts
(and made for that task id), signed anew with the worker's own key: a copy
planted in Redis by anyone else is refused, not laundered. ``spacer purge``
drops the copies of what it removes; ``celery purge`` does not, so the next
audit may send those messages again.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterable

from workers import signing
from workers.job_state_store import redis_client
from workers.queues import present_task_ids

logger = logging.getLogger(__name__)

# hash: task id -> JSON [task id, task name, queue, message, soft, hard], signed
# when the producer signs (workers.signing)
COPIES = 'spacer:outbox'
SENT = 'spacer:outbox:sent'  # sorted set: task id -> when it was sent
AUDIT_LOCK = 'spacer:outbox:audit'
# States in which a task needs its message: not started, or waiting to retry.
WAITING_STATES = frozenset({'PENDING', 'RETRY'})
# Seconds between the two looks for a missing message: a worker that has
# just popped one records it as unacknowledged within milliseconds.
RECHECK_SECONDS = 1.0


def keep(client: Any, task_id: str, task_name: str, queue: str, message: Any,
         soft: int, hard: int, app: Any = None) -> None:
    """Keep the copy of a message about to be sent; signed by this producer
    when ``app`` signs its messages (``workers.signing``)."""
    copy = json.dumps([task_id, task_name, queue, message, soft, hard])
    if app is not None:
        copy = signing.seal(app, copy)
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(COPIES, task_id, copy)
        pipe.zadd(SENT, {task_id: time.time()})
        pipe.execute()


def drop(client: Any, task_ids: Iterable[str]) -> None:
    """Forget the copies of tasks that ended (or were never sent)."""
    ids = list(task_ids)
    if not ids:
        return
    with client.pipeline(transaction=False) as pipe:
        queue_drop(pipe, ids)
        pipe.execute()


def queue_drop(pipe: Any, task_ids: list[str]) -> None:
    """``drop``'s commands, added to a pipeline that also does other work."""
    pipe.hdel(COPIES, *task_ids)
    pipe.zrem(SENT, *task_ids)


def broker_client(app: Any) -> Any:
    """The Redis client of the app's broker, which keeps the copies; None
    for other brokers (they keep none)."""
    broker = app.conf.broker_write_url or ''
    return redis_client(broker) if broker.startswith(('redis://', 'rediss://')) else None


def ended(app: Any, task_id: str | None) -> None:
    """A worker's task has ended: drop its copy. A fault here is harmless
    (the next audit drops copies of tasks that ended)."""
    client = broker_client(app)
    if not task_id or client is None:
        return
    try:
        drop(client, [task_id])
    except Exception:  # noqa: BLE001 - bookkeeping after the work is done
        logger.warning("Could not drop the outbox copy of task %s.", task_id, exc_info=True)


def _read_copy(app: Any, task_id: str, raw: Any) -> list | None:
    """[task name, queue, message, soft, hard] of a stored copy, or None
    (said in one line) when it is not fit to send: with signed messages on,
    a copy its producer did not sign, or signed for another task id, would
    otherwise go out under the auditing worker's own signature."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        fields = json.loads(signing.unseal(app, text))
        if len(fields) == 6:  # [task id, ...] since copies are signed
            copied_id, *fields = fields
            if copied_id != task_id:
                raise ValueError(f"it was made for task {copied_id!r:.64}")
        task_name, queue, message, soft, hard = fields
    except Exception as e:  # noqa: BLE001 - unsigned, forged or malformed
        logger.warning("Task %s: its outbox copy is refused (%s); not sent again.",
                       task_id, str(e)[:200])
        return None
    return [task_name, queue, message, soft, hard]


def _attempts_started(app: Any, task_id: str) -> int:
    """The retry count the message sent again carries. The copy is of the
    first attempt's message; a task in RETRY lost its retry's message, and
    that attempt must not pass for a second copy of one already started.
    (The retry's countdown is not kept: the message goes at once.)"""
    counted = getattr(app.backend, 'attempts_started', None)
    return counted(task_id) if counted is not None else 0


def audit(app: Any, client: Any, sent_before: float) -> list[str]:
    """Send again the messages lost of tasks sent before ``sent_before``
    (a time.time()); drop the copies of tasks that ended. The ids sent again."""
    ids = [i.decode() if isinstance(i, bytes) else i
           for i in client.zrangebyscore(SENT, 0, sent_before)]
    if not ids:
        return []
    state_of = {task_id: app.AsyncResult(task_id).state for task_id in ids}
    drop(client, [i for i, state in state_of.items() if state not in WAITING_STATES])
    waiting = [i for i, state in state_of.items() if state in WAITING_STATES]
    queues = list(app.spacer_settings.queues.values())
    missing = set(waiting) - present_task_ids(client, queues)
    if not missing:
        return []
    time.sleep(RECHECK_SECONDS)
    missing -= present_task_ids(client, queues)
    resent = []
    for task_id in sorted(missing):
        # Read before the state: an attempt that starts in between writes
        # both at once: either the state shows it, or what is sent here is
        # dropped as a second copy of that attempt.
        retries = _attempts_started(app, task_id)
        if app.AsyncResult(task_id).state not in WAITING_STATES:
            continue
        raw = client.hget(COPIES, task_id)
        if raw is None:
            continue  # ended and dropped meanwhile
        copy = _read_copy(app, task_id, raw)
        if copy is None:
            drop(client, [task_id])
            continue
        task_name, queue, message, soft, hard = copy
        app.send_task(task_name, args=[message], task_id=task_id, queue=queue,
                      exchange='', routing_key=queue,  # straight to the queue
                      soft_time_limit=soft, time_limit=hard, retries=retries)
        client.zadd(SENT, {task_id: time.time()})
        resent.append(task_id)
        logger.warning("Task %s: its message was in no queue and held by no worker (lost by"
                       " the broker, or taken by a worker that died); sent again.", task_id)
    return resent
