"""The dead-letter list: what goes in, in what order, and how it comes out."""
from __future__ import annotations

import fakeredis
import pytest
from celery import Celery

from workers.errors import RemoteError
from workers.job_state_store import MemoryKeyStore, RedisKeyStore
from workers import dead_letters, failure_policy
from workers.failure_kinds import Failure
from workers.settings import load


@pytest.fixture(params=['redis', 'memory'])
def store(request):
    if request.param == 'redis':
        return RedisKeyStore(fakeredis.FakeRedis())
    return MemoryKeyStore()


def entry(task_id: str) -> dict:
    return dead_letters.make_entry(task_id, 'spacer.train_classifier', {'job_token': task_id},
                                   'ConnectionError', 'S3 unreachable', retries=5)


def test_newest_first_and_bounded(store):
    for i in range(5):
        dead_letters.push(store, entry(f't{i}'), maxlen=3)
    kept = dead_letters.entries(store)
    assert [e['task_id'] for e in kept] == ['t4', 't3', 't2']
    assert dead_letters.count(store) == 3
    assert kept[0]['message'] == {'job_token': 't4'}
    assert kept[0]['error_type'] == 'ConnectionError'


def test_take_removes_one_entry(store):
    for i in range(3):
        dead_letters.push(store, entry(f't{i}'), maxlen=10)
    taken = dead_letters.take(store, 't1')
    assert taken['task_id'] == 't1'
    assert [e['task_id'] for e in dead_letters.entries(store)] == ['t2', 't0']
    assert dead_letters.take(store, 'missing') is None
    dead_letters.clear(store)
    assert dead_letters.count(store) == 0


class FakeTask:
    """The attributes of a Celery task keep_dead_letter reads."""

    def __init__(self, app):
        self.app = app
        self.name = 'spacer.extract_features'
        self.request = type('Request', (), {'retries': 5, 'hostname': 'w1'})()


@pytest.fixture
def app_with_store(monkeypatch):
    app = Celery('t', broker='memory://', backend='cache+memory://')
    app.spacer_settings = load()
    store = MemoryKeyStore()
    monkeypatch.setattr(dead_letters, 'store_for', lambda _app: store)
    return app, store


def test_input_errors_are_not_kept(app_with_store):
    app, store = app_with_store
    error = RemoteError('ImageDecodeError', 'not an image')
    error.failure = Failure.INPUT
    assert not failure_policy.keep_dead_letter(FakeTask(app), 'id1', error, ({'job_token': 'a'},))
    assert dead_letters.count(store) == 0


def test_exhausted_and_internal_failures_are_kept(app_with_store):
    app, store = app_with_store
    error = RemoteError('EndpointConnectionError', 'Could not connect')
    error.failure = Failure.TRANSIENT
    assert failure_policy.keep_dead_letter(FakeTask(app), 'id1', error, ({'job_token': 'a'},))
    # A failure from outside the task body (e.g. a hard time limit) carries no kind.
    from celery.exceptions import TimeLimitExceeded
    assert failure_policy.keep_dead_letter(FakeTask(app), 'id2', TimeLimitExceeded(960),
                                       ({'job_token': 'b'},))
    kept = dead_letters.entries(store)
    assert [(e['task_id'], e['error_type'], e['retries']) for e in kept] == [
        ('id2', 'billiard.exceptions.TimeLimitExceeded', 5),
        ('id1', 'EndpointConnectionError', 5)]
    assert kept[1]['message'] == {'job_token': 'a'}


def test_dead_letters_name_the_class_path_not_an_error_type_attribute(app_with_store):
    """redis 8's errors carry an ``error_type`` (a category such as
    ExceptionType.NETWORK); the dead letter names the class."""
    import redis.exceptions
    app, store = app_with_store
    raw = redis.exceptions.ConnectionError('Connection refused')
    raw.error_type = 'ExceptionType.NETWORK'  # as redis 8 sets it
    assert failure_policy.keep_dead_letter(FakeTask(app), 'id1', raw, ({'job_token': 'a'},))
    wrapped = RemoteError.from_exception(redis.exceptions.TimeoutError('slow'))
    wrapped.failure = Failure.TRANSIENT
    assert failure_policy.keep_dead_letter(FakeTask(app), 'id2', wrapped, ({'job_token': 'b'},))
    assert [e['error_type'] for e in dead_letters.entries(store)] == [
        'redis.exceptions.TimeoutError', 'redis.exceptions.ConnectionError']
    assert wrapped.error_type == 'TimeoutError'  # what the caller reads is unchanged


def test_a_job_with_internal_failures_is_kept_once_and_keeps_every_result(
        app_with_store, monkeypatch, tmp_path):
    """workers' process_job runs every task (spacer.tasks.run_job) and keeps
    the job as one dead letter however many of its tasks hit a bug."""
    from spacer import tasks as spacer_tasks
    from spacer.data_classes import DataLocation
    from spacer.messages import ClassifyFeaturesMsg, JobMsg
    from workers import celery_tasks as worker_tasks

    _app, store = app_with_store

    def buggy(msg):  # stands in for a bug: no real input makes one on purpose
        raise RuntimeError(f'bug while classifying {msg.job_token}')

    monkeypatch.setitem(spacer_tasks.TASK_FUNCTIONS, 'classify_features', buggy)
    loc = DataLocation('filesystem', str(tmp_path / 'x'))
    job = JobMsg('classify_features', [ClassifyFeaturesMsg(token, loc, loc)
                                       for token in ('a', 'b')]).serialize()
    result = worker_tasks.process_job.apply(args=[job]).result
    assert result['ok'] is False and result['results'] == [None, None]
    assert 'bug while classifying a' in result['error_message']
    assert 'bug while classifying b' in result['error_message']
    kept = dead_letters.entries(store)
    assert [(e['task_name'], e['error_type'], e['message']) for e in kept] == [
        ('spacer.process_job', 'RuntimeError', job)]
