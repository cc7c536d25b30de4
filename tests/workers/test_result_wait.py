"""
Waiting for a result on a real Redis result backend (a private server),
including while that Redis is away: the wait ends by its deadline, a result
stored once Redis is back is returned, and nothing is logged as if the
application had to be restarted.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
import uuid

import pytest
from celery import states

from tests.workers.services import client_for

pytestmark = [pytest.mark.integration]

# Generous for a busy machine; each test asserts its own tighter bound.
LATE = 10


@pytest.fixture
def client(redis_server):
    client = client_for(redis_server.url(3))
    yield client
    client.app.backend.client.flushdb()


def store_later(client, task_id: str, seconds: float, state: str = states.SUCCESS,
                result: object = None) -> None:
    def store():
        time.sleep(seconds)
        client.app.backend.store_result(task_id, result or {'answer': 42}, state)
    threading.Thread(target=store, daemon=True).start()


def test_a_result_stored_before_the_wait_is_returned_at_once(client):
    task_id = str(uuid.uuid4())
    client.app.backend.store_result(task_id, {'answer': 42}, states.SUCCESS)
    outcome = client.wait_result(task_id, timeout=0)
    assert (outcome.state, outcome.value) == (states.SUCCESS, {'answer': 42})


def test_a_result_stored_during_the_wait_is_pushed(client):
    task_id = str(uuid.uuid4())
    store_later(client, task_id, 0.3)
    began = time.monotonic()
    outcome = client.wait_result(task_id, timeout=LATE)
    assert outcome.value == {'answer': 42}
    # Not the whole timeout (a busy machine allows no tighter bound).
    assert time.monotonic() - began < LATE / 2


def test_a_result_whose_message_was_never_published_is_read(client):
    """A stored state without its message (a missed pub/sub message) is
    found by the direct read between messages."""
    task_id = str(uuid.uuid4())
    backend = client.app.backend
    meta = backend.encode({'status': states.SUCCESS, 'result': {'answer': 42},
                           'task_id': task_id, 'traceback': None, 'children': []})

    def store_silently():
        time.sleep(0.3)
        backend.client.set(backend.get_key_for_task(task_id), meta)
    threading.Thread(target=store_silently, daemon=True).start()
    assert client.wait_result(task_id, timeout=LATE).value == {'answer': 42}


def test_intermediate_states_do_not_end_the_wait(client):
    task_id = str(uuid.uuid4())
    client.app.backend.store_result(task_id, None, states.STARTED)
    not_finished = rf'{task_id} not finished after 0.5 s \(state STARTED\)'
    with pytest.raises(TimeoutError, match=not_finished):
        client.wait_result(task_id, timeout=0.5)
    store_later(client, task_id, 0.2, states.FAILURE, ValueError('no such label'))
    outcome = client.wait_result(task_id, timeout=LATE)
    assert (outcome.state, outcome.error_type, outcome.error_message) == (
        states.FAILURE, 'ValueError', 'no such label')


def test_a_wait_outlasts_a_redis_restart_and_gets_the_result(client, redis_server):
    task_id = str(uuid.uuid4())
    outcome: list = []
    waiter = threading.Thread(
        target=lambda: outcome.append(client.wait_result(task_id, timeout=60)), daemon=True)
    waiter.start()
    time.sleep(0.5)
    redis_server.restart(down_for=3)
    client.app.backend.store_result(task_id, {'answer': 42}, states.SUCCESS)
    waiter.join(LATE)
    assert [o.value for o in outcome] == [{'answer': 42}]


def test_a_wait_while_redis_is_down_ends_at_its_deadline_naming_the_backend(
        client, redis_server, caplog):
    """No CRITICAL 'must be restarted' log, no error from a collected
    result, and the wait takes its timeout, not Celery's twenty retries."""
    task_id = str(uuid.uuid4())
    client.app.backend  # made before Redis goes
    redis_server.stop()
    try:
        with caplog.at_level(logging.WARNING):
            began = time.monotonic()
            with pytest.raises(TimeoutError) as raised:
                client.wait_result(task_id, timeout=2)
            took = time.monotonic() - began
            unraisable: list = []
            previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
            try:
                gc.collect()
            finally:
                sys.unraisablehook = previous_hook
    finally:
        redis_server.start()
    assert 2 <= took < 2 + 5  # the deadline, plus at most one connect timeout
    message = str(raised.value)
    assert f'{task_id}: no result after 2 s, state unknown' in message
    assert f'Cannot reach the result backend at {redis_server.url(3)}' in message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert unraisable == []
