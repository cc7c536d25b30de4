"""
A producer's connection to Redis drops while it sends, without any Redis
restart (so no worker audits the outbox): real Redis behind a proxy that
loses the reply to the message's LPUSH, and a real `spacer worker`.

- The LPUSH ran and the connection comes back at once: kombu sends the
  message again, so it is queued twice under one task id; the submit
  returns that id and the task runs once.
- The LPUSH ran and the broker stays unreachable: the submit raises
  BrokerUnavailableError naming the task that may be queued, and the same
  job submitted again returns that task, which runs once.
- The LPUSH never arrived: once the send grace is over, the job submitted
  again is queued anew, and the first task's copy is dropped (no audit
  sends it later).
"""
from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import redis

from tests.workers.cutting_proxy import CuttingProxy
from tests.workers.scenario import Scenario
from tests.workers.services import client_for, wait_until, worker_env, workers
from workers import outbox
from workers.errors import BrokerUnavailableError

pytestmark = [pytest.mark.integration]


@pytest.fixture
def proxy(redis_server):
    cutting = CuttingProxy(('127.0.0.1', redis_server.port))
    yield cutting
    cutting.close()


def _fleet(redis_server, proxy, db: int, tmp_path):
    """A producer whose broker connection goes through the proxy (its
    results and job keys do not), a direct client and one image."""
    client = client_for(proxy.url(db), redis_server.url(db))
    direct = redis.Redis.from_url(redis_server.url(db))
    direct.flushdb()
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    return client, direct, scenario


def _run_counts(worker) -> Counter:
    return Counter(re.findall(r'\[([0-9a-f-]{36})\] succeeded', worker.log_text()))


def _runs_once(redis_server, db: int, tmp_path, direct, scenario, client, task_id: str,
               copies_before: int) -> None:
    """A worker runs the task's ``copies_before`` queued messages: the body
    once, every message acknowledged, the outbox copy dropped."""
    assert direct.llen('extract') == copies_before
    with workers(('w', 'extract', worker_env(redis_server.url(db)), tmp_path)) as (worker,):
        assert 'runtime' in client.wait(task_id, 60)
        wait_until(lambda: direct.llen('extract') == 0
                   and direct.hlen('unacked') == 0, 20, 'every copy taken and acknowledged')
        if copies_before > 1:
            wait_until(lambda: 'a second copy of its message' in worker.log_text(), 20,
                       "the worker's line on the second copy")
        runs = _run_counts(worker)
    assert runs == {task_id: 1}
    assert client.result(task_id).state == 'SUCCESS'
    assert direct.hlen(outbox.COPIES) == 0
    assert scenario.check_features(0).feat.shape[0] == scenario.points


def test_a_message_sent_twice_after_a_lost_reply_runs_once(redis_server, proxy, tmp_path):
    client, direct, scenario = _fleet(redis_server, proxy, 5, tmp_path)
    proxy.cut(b'LPUSH')
    task_id = client.submit('extract_features', scenario.extract_msg(0))
    assert proxy.cuts == 1
    _runs_once(redis_server, 5, tmp_path, direct, scenario, client, task_id, copies_before=2)


def test_a_send_whose_outcome_is_unknown_keeps_its_task(redis_server, proxy, tmp_path):
    client, direct, scenario = _fleet(redis_server, proxy, 6, tmp_path)
    proxy.cut(b'LPUSH', refuse_for=8)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match='may have been queued as task') as raised:
        client.submit('extract_features', scenario.extract_msg(0))
    assert time.monotonic() - started < 5
    task_id = re.search(r'as task ([0-9a-f-]{36})', str(raised.value)).group(1)
    assert direct.hexists(outbox.COPIES, task_id)
    wait_until(lambda: not proxy.refusing, 10, 'the broker to answer again')
    assert client.submit('extract_features', scenario.extract_msg(0)) == task_id
    _runs_once(redis_server, 6, tmp_path, direct, scenario, client, task_id, copies_before=1)


def test_a_send_that_never_arrived_is_queued_anew(redis_server, proxy, tmp_path):
    client, direct, scenario = _fleet(redis_server, proxy, 7, tmp_path)
    proxy.cut(b'LPUSH', delivered=False, refuse_for=3)
    with pytest.raises(BrokerUnavailableError, match='may have been queued as task') as raised:
        client.submit('extract_features', scenario.extract_msg(0))
    lost_id = re.search(r'as task ([0-9a-f-]{36})', str(raised.value)).group(1)
    wait_until(lambda: not proxy.refusing, 10, 'the broker to answer again')
    task_id = client.submit('extract_features', scenario.extract_msg(0))
    assert task_id != lost_id
    assert not direct.hexists(outbox.COPIES, lost_id)  # an audit will not send it
    _runs_once(redis_server, 7, tmp_path, direct, scenario, client, task_id, copies_before=1)
