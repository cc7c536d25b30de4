"""
kombu's Redis transport with one window closed, and the restoring of dead
consumers' messages left to workers.

A Redis consumer takes a message off its queue (BRPOP) and then records it
as unacknowledged (a second round trip). When Redis goes away between the
two, kombu raises and the message, already off the queue and not yet in
the unacknowledged hash, exists only in the consumer's memory: it is lost
(``tests/workers/test_fault_suite.py`` lost one task in 500 this way while
Redis restarted). Here such a message is put back at the head of its queue
as soon as Redis answers again, from a thread of the consumer's process.

A worker's main process also records, in the same transaction as the
unacknowledged message, that it holds the message's task
(``spacer:holder:<task id>``, read by ``workers.liveness`` to tell a dead
worker's messages from a live one's): no round trip of its own, and no
moment when a taken message has no holder.

kombu has every consuming process restore the messages of dead consumers
(a SET of its mutex, then queue writes), Flower and ``spacer status``
included, which consume only broadcasts (events, remote-control replies)
and whose Redis users rightly lack those writes
(``compose/redis-users.acl``). Here only a worker's main process restores
(``restore_in_this_process``, on worker_init).

``workers.app`` uses this transport for ``redis://`` brokers; everything
else is kombu's.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)

# How long a consumer keeps trying to put back a message it could not
# record, one attempt a second.
RETURN_FOR_SECONDS = 3600


def _put_back(connection: Any, payload: dict, exchange: str, routing_key: str) -> None:
    """Push the message back on its queue through a fresh connection, once
    Redis answers; give up (and say so) after RETURN_FOR_SECONDS."""
    deadline = time.monotonic() + RETURN_FOR_SECONDS
    while True:
        fresh = connection.clone()
        try:
            channel = fresh.default_channel
            with channel.client.pipeline() as pipe:
                channel._do_restore_message(payload, exchange, routing_key, pipe,
                                            leftmost=True)
                pipe.execute()
            logger.warning("A message taken off %s while Redis went away is back in its"
                           " queue.", routing_key)
            return
        except Exception:  # noqa: BLE001 - Redis still away: try again
            if time.monotonic() > deadline:
                logger.error("Could not put back a message taken off %s: %r", routing_key,
                             payload)
                return
            time.sleep(1.0)
        finally:
            fresh.release()


# Whether this process restores dead consumers' messages: a worker's main
# process only (set once by workers.process_setup on worker_init).
_restorer = {'here': False}


def restore_in_this_process() -> None:
    _restorer['here'] = True


HOLDER_PREFIX = 'spacer:holder:'
# Who holds the messages this process takes, and for how long (seconds):
# set in a worker's main process by workers.liveness.
_holder: dict[str, Any] = {'name': None, 'seconds': None}


def hold_messages_as(name: str, seconds: int) -> None:
    _holder.update(name=name, seconds=seconds)


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        try:
            self._record_unacked(message, delivery_tag)
        except self.channel.connection_errors:
            info = message.delivery_info
            threading.Thread(
                target=_put_back, name='spacer-put-back', daemon=True,
                args=(self.channel.connection.client, message._raw, info['exchange'],
                      info['routing_key'])).start()
            raise

    def _record_unacked(self, message: Any, delivery_tag: Any) -> None:
        """kombu's record of an unacknowledged message (its index and hash,
        as kombu writes them), with the holder of its task when this
        process holds messages, in one transaction."""
        task_id = (message.headers or {}).get('id')
        if _holder['name'] is None or not task_id:
            super().append(message, delivery_tag)
            return
        delivery = message.delivery_info
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag,
                      dumps([message._raw, delivery['exchange'], delivery['routing_key']]))
            pipe.set(HOLDER_PREFIX + task_id, _holder['name'], ex=_holder['seconds'])
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        if not _restorer['here']:
            return None  # not a worker: the workers restore
        return super().restore_visible(*args, **kwargs)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
