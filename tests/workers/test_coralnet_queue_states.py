"""
workers.coralnet_queue without workers: the Celery-state to AWS Batch word
mapping, the error line CoralNet parses, and the job record in a Redis of
this module's own (results are stored the way workers store them, through
the real result backend), including a restart of the web process, two
collectors at once and a Redis that is down.
"""
from __future__ import annotations

import enum
import itertools
import json
import subprocess
import sys
import time

import pytest
import redis

from spacer.data_classes import DataLocation
from spacer.extractors import DummyExtractor
from spacer.messages import (ExtractFeaturesMsg, ExtractFeaturesReturnMsg, JobMsg,
                             JobReturnMsg)
from tests.conftest import free_port
from tests.workers.services import ROOT, client_for
from workers import coralnet_queue, outbox
from workers.coralnet_queue import CeleryQueue, CollectableJob
from workers.errors import BrokerUnavailableError, remote_error
from workers.queues import REDIS_PRIORITY_SEP


class SpacerJobSpec(enum.Enum):
    """CoralNet's config.constants.SpacerJobSpec."""
    MEDIUM = 'medium'
    HIGH = 'high'


@pytest.mark.parametrize('state, word', [
    ('PENDING', 'RUNNABLE'), ('RECEIVED', 'STARTING'), ('STARTED', 'RUNNING'),
    ('PROGRESS', 'RUNNING'), ('RETRY', 'RUNNABLE'), ('SUCCESS', 'SUCCEEDED'),
    ('FAILURE', 'FAILED'), ('REVOKED', 'FAILED'), ('SOMETHING_A_TASK_SET', 'RUNNING')])
def test_celery_states_map_to_aws_batch_words(state, word):
    assert coralnet_queue.batch_status(state) == word


def test_spec_levels_accept_the_enum_its_value_or_a_string():
    assert coralnet_queue.spec_level_value(SpacerJobSpec.HIGH) == 'high'
    assert coralnet_queue.spec_level_value(SpacerJobSpec.MEDIUM.value) == 'medium'
    assert coralnet_queue.spec_level_value('HIGH') == 'high'
    for bad in ('low', None, 3):
        with pytest.raises(ValueError, match='spec_level'):
            coralnet_queue.spec_level_value(bad)


@pytest.mark.parametrize('error_type, path', [
    ('ImageDecodeError', 'spacer.exceptions.ImageDecodeError'),
    ('DataLimitError', 'spacer.exceptions.DataLimitError'),
    ('ValueError', 'ValueError'),
    ('TimeLimitExceeded', 'billiard.exceptions.TimeLimitExceeded'),
    ('TaskRevokedError', 'celery.exceptions.TaskRevokedError'),
    ('DuplicateJobError', 'workers.errors.DuplicateJobError'),
    ('JobLostError', 'workers.coralnet_queue.JobLostError'),
    ('SomeoneElsesError', 'workers.remote_errors.SomeoneElsesError')])
def test_the_last_line_is_the_dotted_class_and_the_text_as_coralnet_splits_it(
        error_type, path):
    message = coralnet_queue.error_message_of(
        error_type, 'bad: really\nbad', traceback='Traceback (most recent call last):\n'
        '  File "x.py", line 1, in <module>\nworkers.remote_errors.X: bad\n')
    # CoralNet's SpacerResultHandler.handle, verbatim.
    error_class, error_info = message.splitlines()[-1].split(':', maxsplit=1)
    assert (error_class, error_info.strip()) == (path, 'bad: really bad')
    assert message.startswith('Traceback (most recent call last):')


def test_the_module_imports_neither_torch_nor_task_code():
    """The web process's side stays a producer's (the base install)."""
    code = ('import sys, workers.coralnet_queue; '
            'print(sorted(m for m in sys.modules if m in ("torch", "workers.celery_tasks",'
            ' "spacer.tasks")))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == '[]'


def job_msg(token: str) -> JobMsg:
    return JobMsg('extract_features', [ExtractFeaturesMsg(
        job_token=token, extractor=DummyExtractor(feature_dim=4), rowcols=[(1, 1)],
        image_loc=DataLocation('filesystem', f'/nowhere/{token}.png'),
        feature_loc=DataLocation('filesystem', f'/nowhere/{token}.featurevector'))])


_dbs = itertools.count(1)


@pytest.fixture
def url(redis_server):
    """A database of the module's Redis of this test's own."""
    db = next(_dbs)
    assert db < 16
    return redis_server.url(db)


def queue_at(url: str) -> CeleryQueue:
    """A CeleryQueue with an app and client of its own: a fresh web process."""
    return CeleryQueue(client_for(url))


def finish(queue: CeleryQueue, task_id: str, job: JobMsg) -> JobReturnMsg:
    """Store a success as a worker does (the task's return value)."""
    returned = JobReturnMsg(original_job=job, ok=True,
                            results=[ExtractFeaturesReturnMsg.example()], error_message=None)
    queue.client.app.backend.store_result(task_id, returned.serialize(), 'SUCCESS')
    return returned


with_redis = pytest.mark.integration  # a redis-server of the module's own


@with_redis
def test_submitted_jobs_survive_a_restart_and_are_collected_once(url):
    web = queue_at(url)
    jobs = {7: job_msg('seven'), 3: job_msg('three')}
    task_ids = {job_id: web.submit_job(job, job_id, SpacerJobSpec.MEDIUM)
                for job_id, job in jobs.items()}
    del web  # the web process restarts

    web = queue_at(url)
    collectable = web.get_collectable_jobs()
    assert [(j.job_id, j.task_id, j.spec_level) for j in collectable] == [
        (3, task_ids[3], 'medium'), (7, task_ids[7], 'medium')]
    assert all(time.time() - 60 < j.submitted <= time.time() for j in collectable)
    assert web.collect_jobs(collectable) == ([], ['RUNNABLE', 'RUNNABLE'])

    returned = finish(web, task_ids[7], jobs[7])
    results, statuses = queue_at(url).collect_jobs(collectable)
    assert statuses == ['RUNNABLE', 'SUCCEEDED']
    assert results == [returned]
    assert [j.job_id for j in web.get_collectable_jobs()] == [3]
    # Collected: gone from the record, reported not found (CoralNet's word).
    assert web.collect_jobs([7, CollectableJob(999, 'no-such-task', 0.0, 'medium')]) == (
        [], ['DROPPED', 'DROPPED'])
    assert redis.Redis.from_url(url).hkeys(coralnet_queue.MESSAGES) == [b'3']


@with_redis
def test_running_retrying_and_progress_states_are_reported_without_waiting(url):
    web = queue_at(url)
    ids = [web.submit_job(job_msg(f'job{i}'), i, 'medium') for i in range(4)]
    backend = web.client.app.backend
    backend.store_result(ids[0], {'pid': 1, 'hostname': 'w'}, 'STARTED')
    backend.store_result(ids[1], {'task': 1, 'tasks': 1, 'epoch': 2, 'epochs': 5,
                                  'ref_acc': 0.5}, 'PROGRESS')
    backend.mark_as_retry(ids[2], remote_error('URLDownloadError', 'timed out'))
    backend.store_result(ids[3], None, 'RECEIVED')
    started = time.monotonic()
    assert web.collect_jobs(range(4)) == ([], ['RUNNING', 'RUNNING', 'RUNNABLE', 'STARTING'])
    assert time.monotonic() - started < 1


@with_redis
def test_spec_levels_map_to_priorities_in_the_kinds_queue(url):
    web = queue_at(url)
    web.submit_job(job_msg('medium'), 1, 'medium')
    web.submit_job(job_msg('high'), 2, SpacerJobSpec.HIGH)
    broker = redis.Redis.from_url(url)
    assert broker.llen('extract') == 1
    assert broker.llen(f'extract{REDIS_PRIORITY_SEP}9') == 1
    high = json.loads(broker.lindex(f'extract{REDIS_PRIORITY_SEP}9', 0))
    assert high['properties']['priority'] == 9


@with_redis
def test_a_failed_task_gives_a_failed_job_return_with_pyspacers_error_line(url):
    web = queue_at(url)
    jobs = [job_msg('too-big'), job_msg('purged')]
    ids = [web.submit_job(job, i, 'high') for i, job in enumerate(jobs)]
    web.client.app.backend.mark_as_failure(
        ids[0], remote_error('DataLimitError', 'The message is 9 bytes, over the limit'))
    web.client.app.backend.mark_as_revoked(ids[1], 'purged from its queue by an operator')

    results, statuses = web.collect_jobs(web.get_collectable_jobs())
    assert statuses == ['FAILED', 'FAILED']
    assert [r.original_job for r in results] == jobs
    assert [r.ok for r in results] == [False, False]
    lines = [r.error_message.splitlines()[-1] for r in results]
    assert lines[0] == ('spacer.exceptions.DataLimitError:'
                        ' The message is 9 bytes, over the limit')
    assert lines[1].startswith('celery.exceptions.TaskRevokedError: ')
    assert web.get_collectable_jobs() == []


@with_redis
def test_a_job_whose_task_ran_and_failed_a_task_is_failed_with_its_result(url):
    web = queue_at(url)
    job = job_msg('bad-image')
    task_id = web.submit_job(job, 1, 'medium')
    returned = JobReturnMsg(original_job=job, ok=False, results=[None], error_message=(
        "Task 'bad-image' failed with FileNotFoundError: gone\nTraceback (most recent call"
        " last):\n  File \"x.py\", line 1\nFileNotFoundError: gone\n"))
    web.client.app.backend.store_result(task_id, returned.serialize(), 'SUCCESS')
    assert web.collect_jobs([1]) == ([returned], ['FAILED'])


@with_redis
def test_a_job_the_fleet_lost_is_dropped_with_a_failed_result(url):
    web = queue_at(url)
    jobs = [job_msg('expired'), job_msg('never-sent'), job_msg('being-sent')]
    task_id = web.submit_job(jobs[0], 1, 'medium')
    # Its result expired (or Redis lost it): PENDING, and no outbox copy left.
    outbox.drop(redis.Redis.from_url(url), [task_id])
    # Web processes that died between recording a job and sending it.
    web._write('2', {'task_id': None, 'submitted': time.time() - 3600,
                     'spec_level': 'medium'}, json.dumps(jobs[1].serialize()))
    web._write('3', {'task_id': None, 'submitted': time.time(),
                     'spec_level': 'medium'}, json.dumps(jobs[2].serialize()))

    results, statuses = web.collect_jobs(web.get_collectable_jobs())
    assert statuses == ['DROPPED', 'DROPPED', 'SUBMITTED']
    assert [r.original_job for r in results] == jobs[:2]
    for r in results:
        error_class, _ = r.error_message.splitlines()[-1].split(':', 1)
        assert (r.ok, error_class) == (False, 'workers.coralnet_queue.JobLostError')
    assert [j.job_id for j in web.get_collectable_jobs()] == [3]


@with_redis
def test_two_collectors_at_once_return_a_result_once(url):
    first, second = queue_at(url), queue_at(url)
    job = job_msg('once')
    returned = finish(first, first.submit_job(job, 5, 'medium'), job)
    jobs = first.get_collectable_jobs()
    a, b = first.collect_jobs(jobs), second.collect_jobs(jobs)
    assert (a, b) == (([returned], ['SUCCEEDED']), ([], ['DROPPED']))


@with_redis
def test_more_than_a_hundred_jobs_are_refused(url):
    with pytest.raises(ValueError, match='at most 100'):
        queue_at(url).collect_jobs(range(101))
    assert queue_at(url).collect_jobs([]) == ([], [])


def test_redis_down_fails_fast_and_records_nothing():
    down = f'redis://127.0.0.1:{free_port()}/0'
    web = CeleryQueue(client_for(down))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError):
        web.submit_job(job_msg('down'), 1, 'medium')
    with pytest.raises(BrokerUnavailableError):
        web.collect_jobs([1])
    with pytest.raises(BrokerUnavailableError):
        web.get_collectable_jobs()
    assert time.monotonic() - started < 20


def test_an_embedded_client_is_refused():
    from dataclasses import replace

    from spacer.exceptions import ConfigError
    from workers.app import make_app
    from workers.client import Client
    from workers.settings import load
    settings = replace(load(), broker_url=None, result_backend=None)
    with pytest.raises(ConfigError, match='Redis'):
        CeleryQueue(Client(make_app(settings)))
