"""
Noticing a dead worker within a minute or two, not after the visibility
timeout (hours, because it must outlast the longest training).

With Redis as the broker, a message a worker has taken but not yet
acknowledged (acks are late, so every running task's message) sits in
kombu's ``unacked`` index until its worker acknowledges it or the
visibility timeout brings it back. When a whole worker dies (kill -9 of
its main process, a host lost), only that timeout would recover its tasks.
Here every worker on Redis:

- keeps a heartbeat key, ``spacer:worker:<hostname>``, alive
  (``DEAD_WORKER_AFTER`` seconds of TTL, renewed four times as often), and
  enters itself in the roll of workers (``spacer:workers``, hostname ->
  this run of it), leaving it when it stops;
- records, for each message it receives, which worker holds it
  (``spacer:holder:<task id>``, as long as the visibility timeout), in the
  transaction where kombu records the message as unacknowledged
  (``workers.redis_transport``);
- every ``DEAD_WORKER_AFTER / 2`` seconds, returns to its queue every
  unacknowledged message older than ``DEAD_WORKER_AFTER`` whose holder's
  heartbeat has expired, or that it holds itself but no longer tracks
  (kombu's own atomic ``restore_by_tag``);
- settles on a fresh channel the messages whose channel closed while their
  task ran (``settle_on_fresh_channel``);
- notices when Redis restarted (its ``run_id`` changed) or could not be
  reached, and ``DEAD_WORKER_AFTER`` seconds later, once the fleet has
  settled, has one worker audit the outbox (``workers.outbox``): messages
  Redis lost in the fault are sent again;
- audits the outbox on its next round (``DEAD_WORKER_AFTER / 4``) when it
  has struck off the roll a worker whose heartbeat expired (one reaper
  does), or when it finds its own hostname on the roll under an earlier run
  (that run died; a restarted container keeps its hostname). A worker
  killed between popping a message (BRPOP) and recording it as
  unacknowledged took it from Redis with nothing left to restore: seen once
  in a batch of 200 with a kill -9 of a main process.

The message keeps its task id: the client waiting on it sees it run again,
and dedup keeps answering that id. A worker that was only paused longer
than ``DEAD_WORKER_AFTER`` (SIGSTOP) may finish a task that another worker
has started again; outputs are written atomically, so the result is whole.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from spacer import config
from workers import outbox, redis_transport
from workers.redis_transport import HOLDER_PREFIX

logger = logging.getLogger(__name__)

WORKER_PREFIX = 'spacer:worker:'
ROLL = 'spacer:workers'  # hash: hostname -> which run of it (pid@start time)

# Take a worker off the roll only if the roll still names the same run of it:
# the reaper that succeeds is the one that audits for it.
_STRIKE_OFF_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
# Free the audit lock if this worker still holds it.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Liveness:
    """Heartbeat and reaper threads of one worker's main process."""

    def __init__(self, app: Any, hostname: str):
        import redis

        self.app = app
        self.hostname = hostname
        self.settings = app.spacer_settings
        self.dead_after = self.settings.dead_worker_after
        # The broker's Redis: kombu's unacked index lives there.
        self.client = redis.Redis.from_url(
            app.conf.broker_write_url, socket_timeout=10,
            socket_connect_timeout=config.get('BROKER_CONNECT_TIMEOUT'))
        self.stopped = threading.Event()
        self.run = f'{os.getpid()}@{time.time():.6f}'  # this run of the worker, on the roll
        self.run_id: str | None = None  # Redis's, as last seen
        self.fault_seen_at: float | None = None  # an outbox audit is due after it
        # A worker was lost: audit what was sent before this, next round.
        self.loss_sent_before: float | None = None
        self.threads = [
            threading.Thread(target=self._every, args=(self.dead_after / 4, self.beat),
                             name='spacer-heartbeat', daemon=True),
            threading.Thread(target=self._every, args=(self.dead_after / 2, self.reap_round),
                             name='spacer-reaper', daemon=True),
            threading.Thread(target=self._every, args=(self.dead_after / 4, self.audit_if_due),
                             name='spacer-outbox-audit', daemon=True)]

    def start(self) -> None:
        """Beat, look for an earlier run of this worker on the roll, start
        the threads. Redis down here must not leave the worker without
        them (its held messages would look abandoned)."""
        started_at = time.time()
        try:
            earlier = _text(self.client.hget(ROLL, self.hostname))
            self.beat()
        except Exception:  # noqa: BLE001 - the audit after the fault covers an earlier run
            self._fault_seen()
            logger.warning("Could not reach the broker's Redis as the worker started;"
                           " trying again.", exc_info=True)
        else:
            if earlier is not None and earlier != self.run:
                self._worker_lost(self.hostname, 'an earlier run of this worker ended'
                                  ' without stopping', sent_before=started_at)
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(WORKER_PREFIX + self.hostname)
                pipe.eval(_STRIKE_OFF_SCRIPT, 1, ROLL, self.hostname, self.run)
                pipe.execute()
        except Exception:  # noqa: BLE001 - the key expires; the roll entry is struck off
            pass

    def _every(self, seconds: float, work: Any) -> None:
        while not self.stopped.wait(seconds):
            try:
                work()
            except Exception:  # noqa: BLE001 - Redis down: try again next time
                logger.warning("Liveness %s failed; trying again in %.0f s.",
                               work.__name__, seconds, exc_info=True)

    def beat(self) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.set(WORKER_PREFIX + self.hostname, '1', ex=self.dead_after)
                pipe.hset(ROLL, self.hostname, self.run)
                # Gone a while after the last worker stops, like every key of ours.
                pipe.expire(ROLL, self.settings.visibility_timeout)
                pipe.execute()
            run_id = self.client.info('server').get('run_id')
        except Exception:
            self._fault_seen()
            raise
        if self.run_id is not None and run_id != self.run_id:
            self._fault_seen()
        self.run_id = run_id

    def _fault_seen(self) -> None:
        if self.fault_seen_at is None:
            self.fault_seen_at = time.time()

    def audit_if_due(self) -> list[str]:
        """The audit thread's work: after a lost worker, and after a Redis
        fault once the fleet has settled. Ids sent again."""
        return self._audit_loss() + self._audit_fault()

    def _audit_loss(self) -> list[str]:
        """Audit for a lost worker, unless another worker audits now (then
        next round). The lock is freed after: each loss needs its audit."""
        sent_before = self.loss_sent_before
        if sent_before is None:
            return []
        if not self.client.set(outbox.AUDIT_LOCK, self.hostname, nx=True, ex=self.dead_after):
            return []
        try:
            resent = outbox.audit(self.app, self.client, sent_before=sent_before)
        finally:
            self.client.eval(_RELEASE_SCRIPT, 1, outbox.AUDIT_LOCK, self.hostname)
        if self.loss_sent_before == sent_before:  # no later loss meanwhile
            self.loss_sent_before = None
        return resent

    def _audit_fault(self) -> list[str]:
        """After a Redis fault, once the fleet has settled, audit the outbox
        (one worker per fault: the first to take the lock)."""
        seen = self.fault_seen_at
        if seen is None or time.time() < seen + self.dead_after:
            return []
        self.fault_seen_at = None
        if not self.client.set(outbox.AUDIT_LOCK, self.hostname, nx=True, ex=self.dead_after):
            return []  # another worker audits this fault
        try:
            return outbox.audit(self.app, self.client, sent_before=seen)
        except Exception:
            self._fault_seen()  # try again next time
            self.client.delete(outbox.AUDIT_LOCK)
            raise

    def _worker_lost(self, hostname: str, why: str, sent_before: float) -> None:
        """Have the next audit look for what a dead worker had popped but
        not yet recorded: in no queue and held by no one. Its recorded
        messages are still unacknowledged (the reaper returns them), so the
        audit leaves them be."""
        logger.warning("Worker %s is gone (%s); looking for messages it took unrecorded.",
                       hostname, why)
        self.loss_sent_before = max(self.loss_sent_before or 0.0, sent_before)

    def reap_round(self) -> None:
        """The reaper thread's work: dead workers' messages back to their
        queues, then the dead struck off the roll."""
        self.reap()
        self.strike_off_dead()

    def strike_off_dead(self) -> list[str]:
        """Take the workers whose heartbeat expired off the roll (the one
        reaper that does audits for them). Their hostnames."""
        # A dead worker's last beat is DEAD_WORKER_AFTER old, and it died
        # within a beat (a quarter of that) after: what it took was sent
        # before this. Leaving out later sends spares the audit a task
        # whose producer has kept its copy and not yet sent it.
        sent_before = time.time() - self.dead_after / 4
        struck_off = []
        for hostname, run in self.client.hgetall(ROLL).items():
            hostname, run = _text(hostname), _text(run)
            if hostname == self.hostname or self._alive(hostname):
                continue
            if self.client.eval(_STRIKE_OFF_SCRIPT, 1, ROLL, hostname, run):
                self._worker_lost(hostname, 'it stopped beating', sent_before)
                struck_off.append(hostname)
        return struck_off

    def hold(self, task_id: str) -> None:
        """Record this worker as the holder of a task's message (the
        transport does it as it takes each message)."""
        self.client.set(HOLDER_PREFIX + task_id, self.hostname,
                        ex=self.settings.visibility_timeout)

    def reap(self) -> list[str]:
        """Return to their queues the messages nobody will finish: those of
        dead workers, and this worker's own that it no longer tracks (a
        lost broker connection drops the prefetched ones from memory, and
        kombu cannot put them back while the broker is down). Their task ids."""
        with self.app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            oldest = time.time() - self.dead_after
            tags = self.client.zrangebyscore(qos.unacked_index_key, 0, oldest)
            restored = []
            tracked = _tracked_task_ids() if tags else set()
            for tag in tags:
                task_id = self._task_id(qos.unacked_key, tag)
                if task_id is None:
                    continue
                holder = self._holder(task_id)
                if holder == self.hostname:
                    if task_id in tracked:
                        continue
                    why = "was dropped by this worker when its broker connection was lost"
                elif holder is not None and self._alive(holder):
                    continue
                else:
                    why = "was held by a worker that stopped beating"
                if not self._restore_if_still_stale(qos, tag, oldest):
                    continue  # restored by another worker, or delivered anew since
                restored.append(task_id)
                logger.warning("Task %s %s; its message is back in its queue.", task_id, why)
            return restored

    def _restore_if_still_stale(self, qos: Any, tag: Any, oldest: float) -> bool:
        """Put the message of ``tag`` back in its queue if it is still
        unacknowledged since before ``oldest``; whether it was put back.

        A restored message keeps its delivery tag: once another worker has
        restored it and a third has received it, the tag is unacknowledged
        again, under a new time. Restoring it then (from a list of tags read
        earlier) would queue a second copy of a task that is running, so the
        time is checked again, watched with the message, in the transaction
        that restores it (kombu's ``restore_by_tag`` checks neither)."""
        restored = False

        def restore(pipe: Any) -> None:
            nonlocal restored
            since = pipe.zscore(qos.unacked_index_key, tag)
            raw = pipe.hget(qos.unacked_key, tag)
            pipe.multi()
            restored = since is not None and since <= oldest and raw is not None
            if restored:
                payload, exchange, routing_key = loads(bytes_to_str(raw))
                qos._remove_from_indices(tag, pipe)
                qos.channel._do_restore_message(payload, exchange, routing_key, pipe)

        self.client.transaction(restore, qos.unacked_key, qos.unacked_index_key)
        return restored

    def _task_id(self, unacked_key: str, tag: Any) -> str | None:
        raw = self.client.hget(unacked_key, tag)
        if raw is None:
            return None  # acknowledged or restored meanwhile
        try:
            message = json.loads(raw)[0]
            return message['headers']['id']
        except (ValueError, LookupError, TypeError):
            return None  # not a task message of ours: left to the visibility timeout

    def _holder(self, task_id: str) -> str | None:
        return _text(self.client.get(HOLDER_PREFIX + task_id))

    def _alive(self, hostname: str) -> bool:
        return bool(self.client.exists(WORKER_PREFIX + hostname))


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _tracked_task_ids() -> set[str]:
    """The task ids this worker process is running, holds prefetched, or has
    scheduled for later (a retry's countdown); read from the reaper thread
    while the consumer changes them, so copied until a copy succeeds."""
    from celery.worker.state import requests, scheduled_requests
    while True:
        try:
            return set(requests) | {request.id for request in list(scheduled_requests)}
        except RuntimeError:  # changed size during the copy
            continue


def settle_on_fresh_channel(app: Any, delivery_tag: str, requeue: bool) -> None:
    """Acknowledge, or put back in its queue, a Redis message whose channel
    was closed (the broker connection was lost and made again while its
    task ran). kombu would do either through the closed channel: an ack
    fails, and a requeue removes the message from the unacked index without
    pushing it back, losing it. A fresh channel does both atomically."""
    with app.connection_for_write() as connection:
        qos = connection.default_channel.qos
        if requeue:
            qos.restore_by_tag(delivery_tag, leftmost=True)
        else:
            qos.ack(delivery_tag)


_current: dict[str, Liveness] = {}


def on_redis(app: Any) -> bool:
    """Whether app's broker is Redis (RabbitMQ redelivers by itself when a
    consumer's connection drops, and its channels need none of this)."""
    broker = str(app.conf.broker_write_url or '') if app else ''
    return broker.startswith(('redis://', 'rediss://'))


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, 'app', None)
    if not on_redis(app) or not hasattr(app, 'spacer_settings'):
        return
    liveness = Liveness(app, sender.hostname)
    redis_transport.hold_messages_as(sender.hostname, app.spacer_settings.visibility_timeout)
    liveness.start()
    _current['worker'] = liveness


def _on_worker_shutdown(**_: Any) -> None:
    liveness = _current.pop('worker', None)
    if liveness is not None:
        liveness.stop()


def install() -> None:
    from celery.signals import worker_ready, worker_shutdown
    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid='spacer.liveness.ready')
    worker_shutdown.connect(_on_worker_shutdown, weak=False,
                            dispatch_uid='spacer.liveness.shutdown')
