"""
workers.outbox with real Redis and a real worker: a message Redis lost
(taken off its queue by a BRPOP whose reply never arrived: here, an RPOP
nobody reads) is sent again by the audit under its own task id and runs
once; messages still queued are left alone; copies of ended tasks go.
"""
from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import redis

from tests.workers.scenario import Scenario
from tests.workers.services import client_for, wait_until, workers, worker_env
from workers import outbox

pytestmark = [pytest.mark.integration]


def test_a_message_the_broker_lost_is_sent_again_once(redis_server, tmp_path):
    url = redis_server.url(10)
    client = client_for(url)
    broker = redis.Redis.from_url(url)
    scenario = Scenario('filesystem', str(tmp_path), n_images=3)
    scenario.put_images()
    ids = [client.submit('extract_features', scenario.extract_msg(i)) for i in range(3)]
    assert broker.hlen(outbox.COPIES) == 3

    lost = broker.rpop('extract')  # the oldest message, popped and never delivered
    lost_id = re.search(rb'"id": "([0-9a-f-]+)"', lost).group(1).decode()
    assert lost_id == ids[0]
    assert outbox.audit(client.app, broker, sent_before=time.time()) == [lost_id]
    assert outbox.audit(client.app, broker, sent_before=time.time()) == []  # queued again
    assert broker.llen('extract') == 3

    with workers(('auditor', 'extract', worker_env(url), tmp_path)) as started:
        for task_id in ids:
            assert 'runtime' in client.wait(task_id, 60)
        runs = wait_until(lambda: (lambda c: c if len(c) == 3 else None)(Counter(
            re.findall(r'\[([0-9a-f-]{36})\] succeeded', started[0].log_text()))),
            10, 'the three success lines')
    assert runs == dict.fromkeys(ids, 1)
    assert broker.hlen(outbox.COPIES) == 0 and broker.zcard(outbox.SENT) == 0
    for i in range(3):
        assert scenario.check_features(i).feat.shape[0] == scenario.points
