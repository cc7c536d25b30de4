"""
workers.redis_transport: a message taken off its queue whose
unacknowledged record cannot be written (Redis went away in between) is
put back on its queue once Redis answers, and a message recorded normally
behaves as kombu's. Real Redis of the module's own; the one injected fault
is the failed record.
"""
from __future__ import annotations

import pytest
import redis
from kombu import Connection

from tests.workers.services import wait_until
from workers import redis_transport

TRANSPORT = 'workers.redis_transport:Transport'


def test_a_message_whose_record_failed_is_back_in_its_queue(redis_server, monkeypatch):
    record = redis_transport.kombu_redis.QoS.append
    failed = []

    def record_fails_once(self, message, delivery_tag):
        # As when Redis has just gone away: the message is off its queue and
        # its record as unacknowledged cannot be written.
        if not failed:
            failed.append(delivery_tag)
            raise redis.exceptions.ConnectionError('Connection closed by server.')
        return record(self, message, delivery_tag)

    monkeypatch.setattr(redis_transport.kombu_redis.QoS, 'append', record_fails_once)
    url = redis_server.url(5)
    with Connection(url, transport=TRANSPORT) as conn:
        queue = conn.SimpleQueue('put-back')
        queue.put({'job': 1})
        with pytest.raises(redis.exceptions.ConnectionError):
            queue.get(timeout=5)
        client = redis.Redis.from_url(url)
        wait_until(lambda: client.llen('put-back') == 1, 10, 'the message to be put back')
        again = queue.get(timeout=5)
        assert again.payload == {'job': 1}
        assert again.delivery_info.get('redelivered') or again.headers.get('redelivered')
        again.ack()
        assert client.llen('put-back') == 0 and client.hlen('unacked') == 0
        queue.close()
