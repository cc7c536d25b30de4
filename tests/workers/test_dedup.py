"""Dedup keys on Redis semantics (fakeredis) and in process memory."""
from __future__ import annotations

import time

import fakeredis
import pytest

from workers.job_state_store import MemoryKeyStore, RedisKeyStore
from workers import dedup


@pytest.fixture(params=['redis', 'memory'])
def store(request):
    if request.param == 'redis':
        return RedisKeyStore(fakeredis.FakeRedis())
    return MemoryKeyStore()


def test_job_key_names_task_and_token():
    assert dedup.job_key('spacer.extract_features', {'job_token': 'img-7'}) \
        == 'spacer:job:extract_features:img-7'
    # The same token for another task is another job.
    assert dedup.job_key('spacer.classify_image', {'job_token': 'img-7'}) \
        != dedup.job_key('spacer.extract_features', {'job_token': 'img-7'})


def test_job_key_of_jobmsg_covers_every_task_token():
    job = {'task_name': 'extract_features', 'tasks': [{'job_token': 'a'}, {'job_token': 'b'}]}
    other = {'task_name': 'extract_features', 'tasks': [{'job_token': 'a'}]}
    assert dedup.job_key('spacer.process_job', job) != dedup.job_key('spacer.process_job', other)
    long_job = {'task_name': 'extract_features',
                'tasks': [{'job_token': f'token-{i}'} for i in range(100)]}
    assert len(dedup.job_key('spacer.process_job', long_job)) < 120


@pytest.mark.parametrize('message', [None, [], {}, {'job_token': ''},
                                     {'task_name': 'x', 'tasks': [{'job_token': None}]}])
def test_no_token_no_dedup(message):
    assert dedup.job_key('spacer.extract_features', message) is None


def test_second_claim_sees_the_first_holder(store):
    assert dedup.claim(store, 'k', 'task-1', ttl=60) is None
    assert dedup.claim(store, 'k', 'task-2', ttl=60) == 'task-1'
    assert dedup.holder(store, 'k') == 'task-1'


def test_same_task_reclaims_its_key(store):
    # A redelivered message (same task id) must run.
    assert dedup.claim(store, 'k', 'task-1', ttl=60) is None
    assert dedup.claim(store, 'k', 'task-1', ttl=60) is None


def test_release_only_by_the_holder(store):
    dedup.claim(store, 'k', 'task-1', ttl=60)
    assert not dedup.release(store, 'k', 'task-2')
    assert dedup.holder(store, 'k') == 'task-1'
    assert dedup.release(store, 'k', 'task-1')
    assert dedup.holder(store, 'k') is None
    assert dedup.claim(store, 'k', 'task-2', ttl=60) is None


def test_key_expires_after_its_ttl():
    client = fakeredis.FakeRedis()
    store = RedisKeyStore(client)
    dedup.claim(store, 'k', 'task-1', ttl=100)
    assert 0 < client.ttl('k') <= 100
    mem = MemoryKeyStore()
    dedup.claim(mem, 'k', 'task-1', ttl=1)
    time.sleep(1.05)
    assert dedup.claim(mem, 'k', 'task-2', ttl=1) is None


@pytest.mark.parametrize('state', ['PENDING', 'STARTED', 'PROGRESS', 'RETRY'])
def test_producer_gets_the_id_of_a_task_still_to_finish(store, state):
    dedup.claim(store, 'k', 'task-1', ttl=60)
    assert dedup.claim_for_producer(store, 'k', 'task-2', 60, lambda _id: state) == 'task-1'
    assert dedup.holder(store, 'k') == 'task-1'


@pytest.mark.parametrize('state', ['SUCCESS', 'FAILURE', 'REVOKED'])
def test_producer_takes_over_a_key_left_by_a_finished_task(store, state):
    """The worker could not release it (Redis was down as the task ended):
    the finished task's id must not be handed back as if it ran."""
    dedup.claim(store, 'k', 'task-1', ttl=60)
    asked = []
    assert dedup.claim_for_producer(
        store, 'k', 'task-2', 60, lambda task_id: asked.append(task_id) or state,
        now=1000.0) is None
    assert asked == ['task-1']
    assert dedup._sending_id(dedup.holder(store, 'k')) == 'task-2'
    assert dedup.claim(store, 'k', 'task-2', ttl=60) is None  # its worker starts it
    assert dedup.holder(store, 'k') == 'task-2'


def never(_task_id):
    raise AssertionError('a task being sent has no state to read')


def test_a_queued_task_is_answered_with_its_id(store):
    assert dedup.claim_for_producer(store, 'k', 'task-1', 60, never, now=1000.0) is None
    assert dedup.claim_for_producer(store, 'k', 'task-2', 60, lambda _id: 'PENDING',
                                    now=1010.0, message_gone=lambda _id: False) == 'task-1'


@pytest.mark.parametrize('gone', [True, False, None])
def test_a_send_that_never_completed_is_taken_over_once_its_message_is_not_queued(store, gone):
    """Redis went down between the claim and the send, and the release
    failed too, or the send's outcome was unknown (its reply was lost): the
    mark must not stand for a task that was never queued, nor be taken
    from one that was. With no way to look (``gone`` None), the grace
    stands. The task taken over is forgotten (its outbox copy dropped)."""
    assert dedup.claim_for_producer(store, 'k', 'task-1', 60, never, now=1000.0) is None
    later = 1000.0 + 1
    forgotten = []
    holder = dedup.claim_for_producer(
        store, 'k', 'task-2', 60, lambda _id: 'PENDING', now=later,
        message_gone=None if gone is None else (lambda _id: gone), forget=forgotten.append)
    if not gone:
        assert holder == 'task-1' and forgotten == []
        assert dedup._sending_id(dedup.holder(store, 'k')) == 'task-1'
    else:
        assert holder is None and forgotten == ['task-1']
        assert dedup._sending_id(dedup.holder(store, 'k')) == 'task-2'


def test_a_worker_owns_a_key_marked_as_being_sent_for_its_task(store):
    """The mark stays until the task starts; its worker takes the key in
    the same step, and renews its TTL."""
    assert dedup.claim_for_producer(store, 'k', 'task-1', 5, never, now=1000.0) is None
    assert dedup.claim(store, 'k', 'task-1', ttl=60) is None
    assert dedup.holder(store, 'k') == 'task-1'
    if isinstance(store, RedisKeyStore):
        assert 5 < store.client.ttl('k') <= 60
    assert dedup.claim(store, 'k', 'task-9', ttl=60) == 'task-1'


def test_another_task_sees_the_id_behind_a_sending_mark(store):
    assert dedup.claim_for_producer(store, 'k', 'task-1', 60, never, now=1000.0) is None
    assert dedup.claim(store, 'k', 'task-2', ttl=60) == 'task-1'
    assert dedup._sending_id(dedup.holder(store, 'k')) == 'task-1'


def test_release_frees_a_key_still_marked_as_being_sent(store):
    """A task refused before it started (or purged) holds its key only
    through its producer's mark; ending it frees the key, and another
    task's mark is left alone."""
    assert dedup.claim_for_producer(store, 'k', 'task-1', 60, never, now=1000.0) is None
    assert not dedup.release(store, 'k', 'task-2')
    assert not dedup.release(store, 'k', 'task')  # a prefix of the id is not the id
    assert dedup.release(store, 'k', 'task-1')
    assert dedup.holder(store, 'k') is None


def test_a_failed_send_drops_only_its_own_mark(store):
    assert dedup.claim_for_producer(store, 'k', 'task-1', 60, never, now=1000.0) is None
    dedup.release_unsent(store, 'k', 'task-2', 1000.0)
    assert dedup._sending_id(dedup.holder(store, 'k')) == 'task-1'
    dedup.release_unsent(store, 'k', 'task-1', 1000.0)
    assert dedup.holder(store, 'k') is None


def test_replace_only_from_the_holder(store):
    dedup.claim(store, 'k', 'task-1', ttl=60)
    assert not store.replace('k', 'task-9', 'task-2', 60)
    assert store.replace('k', 'task-1', 'task-2', 60)
    assert dedup.holder(store, 'k') == 'task-2'


def test_a_release_fault_does_not_fail_a_finished_task(tmp_path, monkeypatch):
    import redis
    from PIL import Image

    from spacer.data_classes import DataLocation
    from spacer.extractors.dummy import DummyExtractor
    from spacer.messages import ExtractFeaturesMsg
    from workers import task_base
    from workers import celery_tasks as worker_tasks

    store = RedisKeyStore(fakeredis.FakeRedis())
    monkeypatch.setattr(task_base, 'store_for', lambda _app: store)

    def release_during_an_outage(*_args):
        raise redis.exceptions.ConnectionError('Error 111 connecting to redis')

    monkeypatch.setattr(task_base.dedup, 'release', release_during_an_outage)
    Image.new('RGB', (64, 48), (10, 200, 30)).save(tmp_path / 'a.png')
    msg = ExtractFeaturesMsg(
        job_token='a.png', extractor=DummyExtractor(feature_dim=8), rowcols=[(10, 10)],
        image_loc=DataLocation('filesystem', str(tmp_path / 'a.png')),
        feature_loc=DataLocation('filesystem', str(tmp_path / 'a.feats')))
    result = worker_tasks.extract_features.apply(args=[msg.serialize()])
    assert result.state == 'SUCCESS', result.result
    assert (tmp_path / 'a.feats').exists()
    assert dedup.holder(store, dedup.job_key('spacer.extract_features', msg.serialize()))
