"""
Real `spacer worker` processes on the system Redis (a database of their
own), driven through the producer client: all five tasks with filesystem
and S3 storage, routing by kind, error results, retries and dead letters,
dedup, queue depths, `spacer status`, and a producer without torch.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.workers.scenario import Scenario, run_all_five
from tests.workers.services import (ROOT, SPACER, SYSTEM_REDIS, claim_empty_redis_db,
                                    client_for, reachable, wait_until, worker_env, workers)

pytestmark = [pytest.mark.integration]

if not reachable(SYSTEM_REDIS):  # pragma: no cover - CI has Redis
    pytest.skip('no Redis on 127.0.0.1:6379', allow_module_level=True)

RETRIES = dict(RETRY_MAX=2, RETRY_BACKOFF=1, RETRY_BACKOFF_MAX=1)


@pytest.fixture(scope='module')
def redis_url():
    import redis
    db = claim_empty_redis_db()
    url = f'redis://127.0.0.1:6379/{db}'  # empty, and marked as ours
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope='module')
def fleet(redis_url, moto_server, tmp_path_factory):
    """An extract (GPU-kind) worker and a train+classify worker."""
    env = worker_env(redis_url, S3_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID='testing',
                     AWS_SECRET_ACCESS_KEY='testing', AWS_REGION='us-east-1',
                     # Workers refuse loopback URLs unless allowed; a test
                     # fetches from 127.0.0.1 (connection refused: transient).
                     URL_ALLOWED_NETWORKS='127.0.0.1', **RETRIES)
    logs = tmp_path_factory.mktemp('worker-logs')
    with workers(('extract', 'extract', env, logs),
                 ('cpu', 'train,classify', env, logs, '--concurrency', '1')) as started:
        yield {'env': env, 'extract': started[0], 'cpu': started[1]}


@pytest.fixture(scope='module')
def client(fleet, redis_url):
    return client_for(redis_url)


def test_all_five_tasks_with_filesystem_storage(client, tmp_path):
    run_all_five(client, Scenario('filesystem', str(tmp_path)))


def test_all_five_tasks_with_s3_storage(client, s3_settings):
    run_all_five(client, Scenario('s3', 'survey', bucket=s3_settings))


def test_each_kind_of_task_ran_only_on_its_kind_of_worker(client, fleet):
    def both_answer():
        stats = client.app.control.inspect(timeout=2).stats() or {}
        return stats if {fleet['extract'].name, fleet['cpu'].name} <= set(stats) else None
    stats = wait_until(both_answer, 30, 'both workers to send their stats')
    extract_ran = stats[fleet['extract'].name]['total']
    cpu_ran = stats[fleet['cpu'].name]['total']
    assert set(extract_ran) <= {'spacer.extract_features', 'spacer.classify_image'}
    assert extract_ran.get('spacer.extract_features', 0) >= 6
    assert extract_ran.get('spacer.classify_image', 0) >= 1
    assert set(cpu_ran) <= {'spacer.train_classifier', 'spacer.classify_features',
                            'spacer.process_job'}
    assert cpu_ran.get('spacer.train_classifier', 0) >= 1


def test_gpu_kind_worker_without_cuda_extracts_on_cpu_and_says_so(client, fleet):
    from workers import control
    def answers_with_its_pool_process():
        # The pool process records its choice as it starts (maybe after "ready").
        info = control.ask(client.app, timeout=2)
        return info if info.get(fleet['extract'].name, {}).get('process') else None

    info = wait_until(answers_with_its_pool_process, 30, 'the pool process')
    assert info[fleet['extract'].name]['process']['device'] == 'cpu'
    assert info[fleet['extract'].name]['worker']['gpu_kind'] is True
    assert info[fleet['cpu'].name]['worker']['gpu_kind'] is False
    # Logged by the pool process as it starts, which may be after "ready".
    wait_until(lambda: 'found no CUDA device' in fleet['extract'].log_text(), 30,
               'the pool process to log its device')


def test_bad_input_fails_fast_and_the_worker_keeps_serving(client, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    bad = scenario.extract_msg(0)  # the image does not exist
    outcome = client.wait_result(client.submit('extract_features', bad), 30)
    assert outcome.state == 'FAILURE' and outcome.error_type == 'FileNotFoundError'
    assert 'img0.png' in outcome.error_message
    scenario.put_images()
    good = scenario.extract_msg(0)
    good.job_token += '-again'
    assert client.wait(client.submit('extract_features', good), 30)['runtime'] >= 0


def test_transient_fault_is_retried_then_dead_lettered(client, tmp_path):
    from spacer.data_classes import DataLocation
    from tests.conftest import free_port
    from workers.job_state_store import store_for
    from workers import dead_letters
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    msg = scenario.extract_msg(0)
    # Nothing listens there: connection refused, a transient fault.
    msg.image_loc = DataLocation('url', f'http://127.0.0.1:{free_port()}/img.png')
    task_id = client.submit('extract_features', msg)
    outcome = client.wait_result(task_id, 60)
    assert outcome.state == 'FAILURE' and outcome.error_type == 'URLDownloadError'
    kept = {e['task_id']: e for e in dead_letters.entries(store_for(client.app))}
    assert kept[task_id]['retries'] == RETRIES['RETRY_MAX']
    assert kept[task_id]['message'] == msg.serialize()
    assert kept[task_id]['error_type'] == 'spacer.exceptions.URLDownloadError'


def test_pending_job_is_not_queued_twice_and_depth_counts_it(redis_url, tmp_path, client):
    from workers.queues import queue_depths
    # Queues no worker consumes, so the job stays pending.
    lonely = client_for(redis_url, queues={'extract': 'lonely-extract', 'train': 'lonely-train',
                                           'classify': 'lonely-classify'})
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    msg = scenario.extract_msg(0)
    first = lonely.submit('extract_features', msg)
    assert lonely.submit('extract_features', msg) == first
    assert lonely.result(first).state == 'PENDING'
    assert queue_depths(lonely.app) == {'lonely-extract': 1, 'lonely-train': 0,
                                        'lonely-classify': 0}
    # A different job token is another job.
    other = scenario.extract_msg(0)
    other.job_token += '-other'
    assert lonely.submit('extract_features', other) != first
    assert queue_depths(lonely.app)['lonely-extract'] == 2
    import redis
    redis.Redis.from_url(redis_url).delete('lonely-extract')


def test_status_shows_queues_workers_and_devices(fleet):
    out = subprocess.run([str(SPACER), 'status', '--json', '--timeout', '1'],
                         env=fleet['env'], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert set(status['queues']) == {'extract', 'train', 'classify'}
    assert {fleet['extract'].name, fleet['cpu'].name} <= set(status['workers'])
    assert status['workers'][fleet['extract'].name]['process']['device'] == 'cpu'


def test_producer_needs_neither_torch_nor_the_task_code(fleet, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    message = json.dumps(scenario.extract_msg(0).serialize())
    script = textwrap.dedent(f'''
        import json, sys
        from workers import client
        task_id = client.submit('extract_features', json.loads({message!r}))
        result = client.wait(task_id, 30)
        print(json.dumps({{'result': result,
                          'loaded': [m for m in ('torch', 'workers.celery_tasks', 'spacer.tasks',
                                                 'spacer.extractors.dummy')
                                     if m in sys.modules]}}))
    ''')
    out = subprocess.run([sys.executable, '-c', script], env=fleet['env'], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report['loaded'] == []
    assert 'runtime' in report['result']
    scenario.check_features(0)


def test_messages_the_worker_refuses_to_decode_fail_their_task(client, fleet):
    """Pickle is never deserialized, and bytes that are no JSON are no
    message: either way the producer sees FAILURE, not PENDING forever."""
    import uuid
    queue = client.settings.queues['extract']
    pickled = str(uuid.uuid4())
    client.app.send_task('spacer.extract_features', args=[{'job_token': 'pickled'}],
                         task_id=pickled, queue=queue, exchange=queue, routing_key=queue,
                         serializer='pickle')
    garbled = str(uuid.uuid4())
    with client.app.producer_or_acquire() as producer:
        producer.publish(b'{"this is": not json', exchange=queue, routing_key=queue,
                         content_type='application/json', content_encoding='utf-8',
                         headers={'id': garbled, 'task': 'spacer.extract_features',
                                  'lang': 'py', 'argsrepr': '', 'kwargsrepr': ''})
    refused = {task_id: client.wait_result(task_id, 30) for task_id in (pickled, garbled)}
    assert refused[pickled].state == 'FAILURE'
    assert refused[pickled].error_type == 'ContentDisallowed'
    assert 'pickle' in refused[pickled].error_message
    assert refused[garbled].state == 'FAILURE', refused[garbled]
    assert 'not json' not in refused[garbled].error_message  # the body is never quoted


def _peak_rss_mib(pid: int) -> float:
    for line in open(f'/proc/{pid}/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    raise AssertionError('no VmHWM')


def test_a_million_points_are_refused_unread_and_cheaply(client, fleet, tmp_path):
    """The message is over its task's size limit (what MAX_POINTS_PER_IMAGE
    points need): it fails before any process decodes it into hundreds of
    megabytes, and the worker serves on."""
    import uuid
    rowcols = [[i % 3000, i % 4000] for i in range(10 ** 6)]
    body = {'job_token': 'huge', 'rowcols': rowcols,
            'extractor': {'class_path': 'spacer.extractors.dummy.DummyExtractor',
                          'data_locations': {}},
            'image_loc': {'storage_type': 'filesystem', 'key': str(tmp_path / 'a.png')},
            'feature_loc': {'storage_type': 'filesystem', 'key': str(tmp_path / 'a.fv')}}
    worker_pid = fleet['extract'].proc.pid
    before = _peak_rss_mib(worker_pid)
    task_id = str(uuid.uuid4())
    queue = client.settings.queues['extract']
    client.app.send_task('spacer.extract_features', args=[body], task_id=task_id,
                         queue=queue, exchange=queue, routing_key=queue)
    outcome = client.wait_result(task_id, 60)
    assert outcome.state == 'FAILURE' and outcome.error_type == 'DataLimitError'
    assert 'bytes' in outcome.error_message and 'not read' in outcome.error_message
    # Reading the 13 MB message out of Redis (kombu's JSON envelope, its
    # base64 body) costs the main process 70-115 MiB, measured; decoding the
    # points as well cost 716 MB before the size check.
    grew = _peak_rss_mib(worker_pid) - before
    assert grew < 150, f'the worker grew by {grew:.0f} MiB'
    assert not (tmp_path / 'a.fv').exists()
