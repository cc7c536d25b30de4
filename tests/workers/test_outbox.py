"""
workers.outbox with real Redis and a real worker: a message Redis lost
(taken off its queue by a BRPOP whose reply never arrived: here, an RPOP
nobody reads) is sent again by the audit under its own task id and runs
once; messages still queued are left alone; copies of ended tasks go. The
same for a message a worker took just before it died: a live worker
audits once it sees the worker gone.
"""
from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import redis

from tests.workers.scenario import Scenario
from tests.workers.services import client_for, hostname_of, wait_until, workers, worker_env
from workers import liveness, outbox
from workers.result_backend import ATTEMPT_PREFIX

pytestmark = [pytest.mark.integration]


def queued_survey(url: str, tmp_path, n_images: int):
    """n extractions queued on ``url`` with no worker yet: (client, the
    broker's Redis, the scenario, their task ids)."""
    client = client_for(url)
    scenario = Scenario('filesystem', str(tmp_path), n_images=n_images)
    scenario.put_images()
    ids = [client.submit('extract_features', scenario.extract_msg(i)) for i in range(n_images)]
    return client, redis.Redis.from_url(url), scenario, ids


def lose_the_oldest(broker) -> str:
    """Pop the oldest extract message as a worker's BRPOP does and record
    it nowhere (the reply never arrived, or the worker died before kombu
    recorded it as unacknowledged); its task id."""
    lost = broker.rpop('extract')
    return re.search(rb'"id": "([0-9a-f-]+)"', lost).group(1).decode()


def test_a_message_the_broker_lost_is_sent_again_once(redis_server, tmp_path):
    url = redis_server.url(10)
    client, broker, scenario, ids = queued_survey(url, tmp_path, 3)
    assert broker.hlen(outbox.COPIES) == 3

    lost_id = lose_the_oldest(broker)
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
        # A task drops its copy after its success line (in after_return);
        # stopping the worker (SIGTERM to its group) before then would
        # leave a copy for the next audit to drop.
        wait_until(lambda: broker.hlen(outbox.COPIES) == 0 and broker.zcard(outbox.SENT) == 0,
                   10, 'the three copies dropped')
    assert runs == dict.fromkeys(ids, 1)
    for i in range(3):
        assert scenario.check_features(i).feat.shape[0] == scenario.points


def test_a_message_a_dead_worker_took_unrecorded_is_sent_again(redis_server, tmp_path):
    """Seen once in a batch of 200 with a kill -9 of a worker's main process:
    the killed worker had popped a message and not yet recorded it. A live
    worker strikes the dead one off the roll and audits at once."""
    url = redis_server.url(11)
    client, broker, _, ids = queued_survey(url, tmp_path, 2)
    assert lose_the_oldest(broker) == ids[0]
    broker.hset(liveness.ROLL, 'ghost@host', '1@0')  # on the roll, no heartbeat
    env = worker_env(url, DEAD_WORKER_AFTER=5)
    with workers(('survivor', 'extract', env, tmp_path)) as (survivor,):
        for task_id in ids:
            assert 'runtime' in client.wait(task_id, 60)
        wait_until(lambda: survivor.log_text().count('succeeded') == 2, 10,
                   'two success lines')
        roll = broker.hgetall(liveness.ROLL)
    log = survivor.log_text()
    assert 'Worker ghost@host is gone (it stopped beating)' in log
    assert f'Task {ids[0]}: its message was in no queue and held by no worker' in log
    assert roll.keys() == {survivor.name.encode()}


def test_a_restarted_worker_looks_for_what_its_earlier_run_took(redis_server, tmp_path):
    """A container restarted after a kill keeps its hostname: its heartbeat
    never lapses for the others to see, so the worker itself, finding its
    name on the roll under another run, has its first audit look."""
    url = redis_server.url(12)
    client, broker, _, (task_id,) = queued_survey(url, tmp_path, 1)
    assert lose_the_oldest(broker) == task_id
    broker.hset(liveness.ROLL, hostname_of('again'), '1@0')
    with workers(('again', 'extract', worker_env(url), tmp_path)) as (worker,):
        assert 'runtime' in client.wait(task_id, 60)
        assert broker.hget(liveness.ROLL, worker.name) != b'1@0'  # this run, now
    assert 'an earlier run of this worker ended without stopping' in worker.log_text()


def test_a_lost_retry_is_sent_again_as_the_next_attempt(redis_server, tmp_path):
    """The first attempt started and asked for a retry, whose message the
    broker lost. The copy is of the first attempt's message: sent again as
    it is, it would pass for a second copy of a started attempt and be
    dropped, leaving the task in RETRY for good."""
    url = redis_server.url(13)
    client, broker, scenario, (task_id,) = queued_survey(url, tmp_path, 1)
    assert lose_the_oldest(broker) == task_id
    broker.set(ATTEMPT_PREFIX + task_id, 0)  # as the first attempt's start left it
    client.app.backend.mark_as_retry(task_id, OSError('storage timed out'))

    assert outbox.audit(client.app, broker, sent_before=time.time()) == [task_id]
    with workers(('retrier', 'extract', worker_env(url), tmp_path)) as (worker,):
        assert 'runtime' in client.wait(task_id, 60)
    assert 'a second copy of its message' not in worker.log_text()
    assert broker.get(ATTEMPT_PREFIX + task_id) == b'1'
    assert scenario.check_features(0).feat.shape[0] == scenario.points
