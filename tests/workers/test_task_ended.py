"""
failure_policy.task_ended against a real Redis: the outbox copy goes and
the job key is released (if the task still holds it), in one round trip
when broker and backend share a Redis, in two when they do not.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from workers import dedup, failure_policy, outbox
from workers.app import make_app
from workers.settings import load

pytestmark = [pytest.mark.integration]

NAME = 'spacer.classify_features'
MESSAGE = {'job_token': 'ended-1'}


@pytest.mark.parametrize('backend_db', [5, 6], ids=['one Redis', 'two databases'])
def test_the_copy_goes_and_the_key_is_released(redis_server, backend_db):
    app = make_app(replace(load(), broker_url=redis_server.url(5),
                           result_backend=redis_server.url(backend_db)))
    broker, keys = redis.Redis.from_url(redis_server.url(5)), redis.Redis.from_url(
        redis_server.url(backend_db))
    key = dedup.job_key(NAME, MESSAGE)
    try:
        for holder, released in (('task-1', True), ('task-2', False)):
            outbox.keep(broker, 'task-1', NAME, 'classify', MESSAGE, 10, 20)
            keys.set(key, holder)
            broker.config_resetstat()
            failure_policy.task_ended(app, NAME, 'task-1', MESSAGE)
            # No SCRIPT EXISTS before a pipeline (redis-py's own round trip).
            assert 'cmdstat_script|exists' not in broker.info('commandstats')
            assert not broker.hexists(outbox.COPIES, 'task-1')
            assert broker.zscore(outbox.SENT, 'task-1') is None
            # A key another task took over since stays that task's.
            assert keys.get(key) == (None if released else holder.encode())
    finally:
        broker.flushdb()
        keys.flushdb()
