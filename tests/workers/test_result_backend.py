"""
workers.result_backend against a real Redis: each state write is one Lua
script, and it keeps what Celery's own two-step write promises: the value
and expiry Celery would store, the same message published to waiting
clients, and a stored success never overwritten by a later write.
"""
from __future__ import annotations

import datetime
import json
import math
import uuid
from types import SimpleNamespace

import pytest
import redis
from celery import Celery, states
from celery.backends.redis import RedisBackend

from tests.workers.services import client_for
from workers import dedup
from workers.job_state_store import RedisKeyStore
from workers.result_backend import (ATTEMPT_PREFIX, DUPLICATE, SUCCEEDED_ALREADY,
                                     RedisResultBackend)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def backend(redis_server):
    return client_for(redis_server.url(3)).app.backend


@pytest.fixture
def raw(redis_server):
    client = redis.Redis.from_url(redis_server.url(3))
    yield client
    client.flushdb()


def _stored(raw, backend, task_id: str) -> dict:
    return json.loads(raw.get(backend.get_key_for_task(task_id)))


def test_spacers_app_takes_this_backend_for_redis_urls(backend):
    assert type(backend) is RedisResultBackend


def test_each_write_is_stored_and_published_as_celery_would(backend, raw):
    task_id = str(uuid.uuid4())
    key = backend.get_key_for_task(task_id)
    listener = raw.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(key)
    listener.get_message(timeout=1)
    backend.store_result(task_id, {'pid': 1, 'hostname': 'w@h'}, states.STARTED)
    backend.mark_as_done(task_id, {'scores': [[1, 2, [0.5]]]})
    heard = [listener.get_message(timeout=2) for _ in range(2)]
    assert [json.loads(m['data'])['status'] for m in heard] == [states.STARTED, states.SUCCESS]
    assert json.loads(heard[-1]['data']) == _stored(raw, backend, task_id)
    assert backend.get_task_meta(task_id)['result'] == {'scores': [[1, 2, [0.5]]]}
    assert 0 < raw.ttl(key) <= backend.expires


@pytest.mark.parametrize('late', [states.STARTED, states.FAILURE, states.RETRY, 'PROGRESS'])
def test_a_success_is_never_overwritten(backend, raw, late):
    """A redelivered copy of a finished task, or a late progress report,
    must not replace its result (Celery's own promise, kept atomically)."""
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, {'ok': True})
    listener = raw.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(backend.get_key_for_task(task_id))
    listener.get_message(timeout=1)
    result = ValueError('late') if late == states.FAILURE else {'epoch': 1}
    backend.store_result(task_id, result, late)
    assert _stored(raw, backend, task_id)['status'] == states.SUCCESS
    assert _stored(raw, backend, task_id)['result'] == {'ok': True}
    assert listener.get_message(timeout=0.5) is None  # nothing published either


def test_a_success_with_nan_in_its_result_still_counts(backend, raw):
    """Python's JSON writes NaN and Infinity; the script must still read the
    stored status (a refused parse would count as "no success")."""
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, {'ref_acc': float('nan'), 'loss': float('inf')})
    backend.store_result(task_id, {'pid': 1}, states.STARTED)
    stored = raw.get(backend.get_key_for_task(task_id)).decode()
    assert stored.startswith('{"status": "SUCCESS"') and 'NaN' in stored


def test_states_before_a_success_are_replaced(backend, raw):
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, {'epoch': 1}, 'PROGRESS')
    backend.mark_as_failure(task_id, ValueError('bad input'))
    assert _stored(raw, backend, task_id)['status'] == states.FAILURE
    backend.mark_as_done(task_id, {'ok': True})  # a retry that succeeded
    assert _stored(raw, backend, task_id)['status'] == states.SUCCESS


RESULTS = [
    {'scores': [[10, 20, [0.25, 0.0003412345678901234]]], 'classes': [1, 2], 'runtime': 0.5},
    {'ref_acc': float('nan')},                      # kombu writes NaN
    {'at': datetime.datetime(2026, 12, 6, 1, 2, 3)},  # kombu tags the type
    {'big': 2 ** 70, 'id': uuid.UUID(int=5)},
]


@pytest.mark.parametrize('result', RESULTS)
def test_results_read_the_same_here_and_by_celerys_own_backend(redis_server, backend, raw,
                                                               result):
    """orjson where it is exact, kombu otherwise: a stock Celery client reads
    what this backend stores, and this backend reads what stock Celery
    stores, as the same values."""
    stock = Celery(broker=redis_server.url(3), backend=redis_server.url(3)).backend
    assert type(stock) is RedisBackend
    for writer, reader in ((backend, stock), (stock, backend)):
        task_id = str(uuid.uuid4())
        writer.mark_as_done(task_id, result)
        read = reader.get_task_meta(task_id)['result']
        if 'ref_acc' in result:
            assert math.isnan(read['ref_acc'])
        else:
            assert read == result


def test_sending_subscribes_to_nothing_and_a_later_wait_still_gets_the_result(
        redis_server, backend, raw):
    """No subscription per sent task; the wait subscribes, then reads the
    stored state, so a result stored between the send and the wait counts."""
    app = backend.app
    task_id = str(uuid.uuid4())
    sent = app.send_task('spacer.classify_features', args=[{}], task_id=task_id,
                         queue=app.spacer_settings.queues['classify'])  # no worker here
    key = backend.get_key_for_task(task_id)
    assert raw.pubsub_numsub(key) == [(key, 0)]
    backend.mark_as_done(task_id, {'ok': True})
    assert sent.get(timeout=5, disable_sync_subtasks=False) == {'ok': True}


def _request(task_id: str, retries: int = 0, redelivered: bool = False):
    """What a worker's task request tells ``queue_start``."""
    return SimpleNamespace(id=task_id, retries=retries, delivery_info={'redelivered': redelivered},
                           group=None, parent_id=None, root_id=None)


def _start(raw, backend, request, started: dict) -> int:
    with raw.pipeline(transaction=False) as pipe:
        assert backend.queue_start(pipe, request, started)
        return pipe.execute()[0]


def test_a_state_write_rides_in_the_job_key_claims_round_trip(redis_server, backend, raw):
    """A worker stores STARTED in the pipeline that claims the job key: two
    EVALs (the state, the claim) in one round trip, and no SCRIPT EXISTS of
    redis-py's own."""
    store = RedisKeyStore(redis.Redis.from_url(redis_server.url(3)))
    task_id = str(uuid.uuid4())
    raw.config_resetstat()
    replies = []

    def start_attempt(pipe):
        backend.queue_start(pipe, _request(task_id), {'pid': 7, 'hostname': 'w@h'})
        return replies.extend
    holder = dedup.claim(store, 'spacer:job:t:1', task_id, 60, along=start_attempt)
    assert holder is None and replies == [1]
    stats = raw.info('commandstats')
    assert stats['cmdstat_eval']['calls'] == 2 and 'cmdstat_script|exists' not in stats
    assert raw.get('spacer:job:t:1') == task_id.encode()
    stored = _stored(raw, backend, task_id)
    assert (stored['status'], stored['result']) == (states.STARTED, {'pid': 7, 'hostname': 'w@h'})
    backend.mark_as_done(task_id, {'ok': True})
    # A late STARTED of a later attempt changes nothing, and says so.
    assert _start(raw, backend, _request(task_id, retries=1), {'pid': 8}) == SUCCEEDED_ALREADY
    assert _stored(raw, backend, task_id)['status'] == states.SUCCESS


def test_a_second_copy_of_a_started_message_starts_nothing(backend, raw):
    """The same message delivered twice (its publish reached Redis twice):
    the second copy is told it is one, and writes nothing; a redelivered
    message and the next attempt (a retry) start as usual."""
    task_id = str(uuid.uuid4())
    assert _start(raw, backend, _request(task_id), {'pid': 1}) == 1
    backend.store_result(task_id, {'epoch': 1}, 'PROGRESS')
    assert _start(raw, backend, _request(task_id), {'pid': 2}) == DUPLICATE
    assert _stored(raw, backend, task_id)['status'] == 'PROGRESS'
    assert _start(raw, backend, _request(task_id, redelivered=True), {'pid': 3}) == 1
    assert _stored(raw, backend, task_id)['result'] == {'pid': 3}
    backend.mark_as_retry(task_id, ValueError('transient'))
    assert _start(raw, backend, _request(task_id, retries=1), {'pid': 4}) == 1
    assert _start(raw, backend, _request(task_id, retries=1), {'pid': 5}) == DUPLICATE
    assert _start(raw, backend, _request(task_id, retries=0), {'pid': 6}) == DUPLICATE
    assert _stored(raw, backend, task_id)['result'] == {'pid': 4}
    assert 0 < raw.ttl(ATTEMPT_PREFIX + task_id) <= backend.expires  # as long as the result
