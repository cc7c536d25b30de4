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
  (``DEAD_WORKER_AFTER`` seconds of TTL, renewed four times as often);
- records, for each message it receives, which worker holds it
  (``spacer:holder:<task id>``, as long as the visibility timeout);
- every ``DEAD_WORKER_AFTER / 2`` seconds, returns to its queue every
  unacknowledged message older than ``DEAD_WORKER_AFTER`` whose holder's
  heartbeat has expired (kombu's own atomic ``restore_by_tag``).

The message keeps its task id: the client waiting on it sees it run again,
and dedup keeps answering that id. A worker that was only paused longer
than ``DEAD_WORKER_AFTER`` (SIGSTOP) may finish a task that another worker
has started again; outputs are written atomically, so the result is whole.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

WORKER_PREFIX = 'spacer:worker:'
HOLDER_PREFIX = 'spacer:holder:'


class Liveness:
    """Heartbeat and reaper threads of one worker's main process."""

    def __init__(self, app: Any, hostname: str):
        import redis

        from spacer import config

        self.app = app
        self.hostname = hostname
        self.settings = app.spacer_settings
        self.dead_after = self.settings.dead_worker_after
        # The broker's Redis: kombu's unacked index lives there.
        self.client = redis.Redis.from_url(
            app.conf.broker_url, socket_timeout=10,
            socket_connect_timeout=config.get('BROKER_CONNECT_TIMEOUT'))
        self.stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._every, args=(self.dead_after / 4, self.beat),
                             name='spacer-heartbeat', daemon=True),
            threading.Thread(target=self._every, args=(self.dead_after / 2, self.reap),
                             name='spacer-reaper', daemon=True)]

    def start(self) -> None:
        self.beat()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.client.delete(WORKER_PREFIX + self.hostname)
        except Exception:  # noqa: BLE001 - the key expires anyway
            pass

    def _every(self, seconds: float, work: Any) -> None:
        while not self.stopped.wait(seconds):
            try:
                work()
            except Exception:  # noqa: BLE001 - Redis down: try again next time
                logger.warning("Liveness %s failed; trying again in %.0f s.",
                               work.__name__, seconds, exc_info=True)

    def beat(self) -> None:
        self.client.set(WORKER_PREFIX + self.hostname, '1', ex=self.dead_after)

    def hold(self, task_id: str) -> None:
        self.client.set(HOLDER_PREFIX + task_id, self.hostname,
                        ex=self.settings.visibility_timeout)

    def reap(self) -> list[str]:
        """Return the messages of dead workers to their queues; their task ids."""
        with self.app.connection_for_write() as connection:
            channel = connection.default_channel
            qos = channel.qos
            oldest = time.time() - self.dead_after
            tags = self.client.zrangebyscore(qos.unacked_index_key, 0, oldest)
            restored = []
            for tag in tags:
                task_id = self._task_id(qos.unacked_key, tag)
                if task_id is None or self._holder_alive(task_id):
                    continue
                qos.restore_by_tag(tag, client=self.client)
                restored.append(task_id)
                logger.warning("Task %s was held by a worker that stopped beating;"
                               " its message is back in its queue.", task_id)
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

    def _holder_alive(self, task_id: str) -> bool:
        holder = self.client.get(HOLDER_PREFIX + task_id)
        if holder is None:
            return False
        name = holder.decode() if isinstance(holder, bytes) else holder
        return bool(self.client.exists(WORKER_PREFIX + name))


_current: dict[str, Liveness] = {}


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, 'app', None)
    broker = str(getattr(app, 'conf', {}).get('broker_url') or '') if app else ''
    if not broker.startswith(('redis://', 'rediss://')) or \
            not hasattr(app, 'spacer_settings'):
        return  # RabbitMQ redelivers when a consumer's connection drops
    liveness = Liveness(app, sender.hostname)
    liveness.start()
    _current['worker'] = liveness


def _on_task_received(request: Any = None, **_: Any) -> None:
    liveness = _current.get('worker')
    if liveness is None or request is None:
        return
    try:
        liveness.hold(request.id)
    except Exception:  # noqa: BLE001 - then the visibility timeout recovers it
        logger.warning("Could not record the holder of task %s", request.id, exc_info=True)


def _on_worker_shutdown(**_: Any) -> None:
    liveness = _current.pop('worker', None)
    if liveness is not None:
        liveness.stop()


def install() -> None:
    from celery.signals import task_received, worker_ready, worker_shutdown
    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid='spacer.liveness.ready')
    task_received.connect(_on_task_received, weak=False, dispatch_uid='spacer.liveness.received')
    worker_shutdown.connect(_on_worker_shutdown, weak=False,
                            dispatch_uid='spacer.liveness.shutdown')
