"""
workers.result_backend against a real Redis: each state write is one Lua
script, and it keeps what Celery's own two-step write promises: the value
and expiry Celery would store, the same message published to waiting
clients, and a stored success never overwritten by a later write.
"""
from __future__ import annotations

import json
import uuid

import pytest
import redis
from celery import states

from tests.workers.services import client_for
from workers.result_backend import RedisResultBackend

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
