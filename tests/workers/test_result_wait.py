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

from tests.workers.services import client_for, wait_until
from workers import result_wait
from workers.errors import BrokerUnavailableError
from workers.task_states import PROGRESS

pytestmark = [pytest.mark.integration]

# Generous for a busy machine; each test asserts its own tighter bound.
LATE = 10
ANSWER = {'answer': 42}


@pytest.fixture
def client(redis_server):
    client = client_for(redis_server.url(3))
    yield client
    client.app.backend.client.flushdb()


def store_later(client, task_id: str, seconds: float, state: str = states.SUCCESS,
                result: object = ANSWER) -> None:
    def store():
        time.sleep(seconds)
        client.app.backend.store_result(task_id, result, state)
    threading.Thread(target=store, daemon=True).start()


def in_thread(call) -> tuple[threading.Thread, list]:
    """Runs ``call`` in a thread; the list gets what it returned or raised."""
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except Exception as e:  # noqa: BLE001 - the test reads it
            outcome.append(e)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def subscribers(client, task_id: str) -> int:
    key = client.app.backend.get_key_for_task(task_id)
    return dict(client.app.backend.client.pubsub_numsub(key))[key]


def test_a_result_stored_before_the_wait_is_returned_at_once(client):
    task_id = str(uuid.uuid4())
    client.app.backend.store_result(task_id, ANSWER, states.SUCCESS)
    outcome = client.wait_result(task_id, timeout=0)
    assert (outcome.state, outcome.value) == (states.SUCCESS, ANSWER)
    assert subscribers(client, task_id) == 0  # one read, no subscription


def test_a_result_stored_during_the_wait_is_pushed(client, monkeypatch):
    """With the direct reads a minute apart, only the published message
    can end the wait in time."""
    monkeypatch.setattr(result_wait, 'READ_EVERY', 60)
    task_id = str(uuid.uuid4())
    store_later(client, task_id, 0.3)
    began = time.monotonic()
    assert client.wait_result(task_id, timeout=120).value == ANSWER
    assert time.monotonic() - began < 30


def test_a_result_whose_message_was_never_published_is_read(client):
    """A stored state without its message (a message lost with its
    connection) is found by the direct read between messages."""
    task_id = str(uuid.uuid4())
    backend = client.app.backend
    meta = backend.encode({'status': states.SUCCESS, 'result': ANSWER, 'task_id': task_id,
                           'traceback': None, 'children': []})

    def store_silently():
        time.sleep(0.3)
        backend.client.set(backend.get_key_for_task(task_id), meta)
    threading.Thread(target=store_silently, daemon=True).start()
    assert client.wait_result(task_id, timeout=None).value == ANSWER


def test_states_before_the_end_do_not_end_the_wait(client):
    task_id = str(uuid.uuid4())
    client.app.backend.store_result(task_id, None, states.STARTED)
    not_finished = rf'{task_id} not finished after 0.5 s \(state STARTED\)'
    with pytest.raises(TimeoutError, match=not_finished):
        client.wait_result(task_id, timeout=0.5)
    store_later(client, task_id, 0.1, PROGRESS, {'epoch': 1, 'epochs': 2})
    store_later(client, task_id, 0.4, states.FAILURE, ValueError('no such label'))
    outcome = client.wait_result(task_id, timeout=LATE)
    assert (outcome.state, outcome.error_type, outcome.error_message) == (
        states.FAILURE, 'ValueError', 'no such label')


def test_waits_share_one_listening_connection_and_leave_no_subscription(client):
    backend = client.app.backend
    ids = [str(uuid.uuid4()) for _ in range(20)]
    for task_id in ids[:10]:  # ten waits that end, ten that time out
        store_later(client, task_id, 0.05)
        client.wait_result(task_id, timeout=LATE)
    opened = backend.client.info('stats')['total_connections_received']
    for task_id in ids[10:]:
        with pytest.raises(TimeoutError):
            client.wait_result(task_id, timeout=0.05)
    assert backend.client.info('stats')['total_connections_received'] == opened
    wait_until(lambda: all(subscribers(client, i) == 0 for i in ids), 5,
               'every subscription ended')


def test_a_wait_outlasts_a_redis_restart_and_gets_the_result(client, redis_server):
    task_id = str(uuid.uuid4())
    waiter, outcome = in_thread(lambda: client.wait_result(task_id, timeout=30))
    time.sleep(0.5)
    redis_server.restart(down_for=3)
    client.app.backend.store_result(task_id, ANSWER, states.SUCCESS)
    waiter.join(LATE)
    assert [getattr(o, 'value', o) for o in outcome] == [ANSWER]


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
    assert (f'{task_id} not finished after 2 s (state unknown: Cannot reach the result'
            f' backend at {redis_server.url(3)}') in str(raised.value)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert unraisable == []
    assert 'The result backend cannot be reached' in caplog.text


def test_refused_credentials_are_raised_at_once(redis_server):
    client = client_for(f'redis://nobody:wrong@127.0.0.1:{redis_server.port}/3')
    began = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match='AuthenticationError') as raised:
        client.wait_result(str(uuid.uuid4()), timeout=30)
    assert time.monotonic() - began < LATE
    assert 'wrong' not in str(raised.value)  # the password is not shown


def test_a_forked_child_waits_on_its_own_connection(client):
    """A fork copies the parent's idle listening connection: the child
    opens its own, and the parent's still serves the parent."""
    import multiprocessing
    first, in_child, after = (str(uuid.uuid4()) for _ in range(3))
    store_later(client, first, 0.05)
    client.wait_result(first, timeout=LATE)  # leaves an idle listener
    listener = result_wait._listeners._local.idle[2]

    def child() -> None:
        store_later(client, in_child, 0.05)
        sys.exit(0 if client.wait_result(in_child, timeout=LATE).value == ANSWER else 1)
    process = multiprocessing.get_context('fork').Process(target=child)
    process.start()
    process.join(LATE * 2)
    assert process.exitcode == 0
    store_later(client, after, 0.05)
    assert client.wait_result(after, timeout=LATE).value == ANSWER
    idle = result_wait._listeners._local.idle
    assert idle is not None and idle[2] is listener  # no fault made the parent replace it
