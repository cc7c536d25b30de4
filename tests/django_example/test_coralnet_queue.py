"""CoralNet's queue backend (workers.coralnet_queue.CeleryQueue) end to end,
from the Django example: real Redis, real `spacer worker` processes.

Each "web process" is its own Django process, chosen as CoralNet chooses
its queue (``SPACER_QUEUE_CHOICE``) and checked against a stand-in of
CoralNet's BaseQueue (``jobs/coralnet_stub.py``): one submits, a later one
(the web process restarted) collects. A worker killed mid-job (kill -9 of
its main process) still ends with the job collected SUCCEEDED: another
worker's liveness reaper requeues it after DEAD_WORKER_AFTER.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.extractors import DummyExtractor
from spacer.messages import ExtractFeaturesMsg, JobMsg, JobReturnMsg
from tests.deploy.project_files import ROOT
from tests.workers.scenario import Scenario, png_bytes
from tests.workers.services import (RedisServer, running_on, client_for, wait_until,
                                    worker_env, workers)
from tests.workers.slow_classes import CLASS_PATHS, SlowExtractor

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT = ROOT / 'examples' / 'django_project'

# The web process: `submit JOBS_FILE` or `collect WAIT_S`; prints one JSON line.
WEB_PROCESS = r'''
import json, sys, time
import django
django.setup()
from jobs.coralnet_stub import (BaseQueue, SpacerJobSpec, collect_spacer_jobs,
                                get_queue_class, satisfies_base_queue)
from spacer.messages import JobMsg

queue_class = get_queue_class()
queue = queue_class()
report = {'satisfies_base_queue': satisfies_base_queue(queue_class)}
if sys.argv[1] == 'submit':
    for entry in json.load(open(sys.argv[2])):
        queue.submit_job(JobMsg.deserialize(entry['job']), entry['job_id'],
                         SpacerJobSpec(entry['spec_level']))
    report['collectable'] = [[j.job_id, j.task_id] for j in queue.get_collectable_jobs()]
else:
    deadline = time.monotonic() + float(sys.argv[2])
    results, rounds = [], []
    while True:
        round_results, statuses = collect_spacer_jobs(queue)
        results += [r.serialize() for r in round_results]
        rounds.append(dict(statuses))
        if not queue.get_collectable_jobs() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    unknown = queue.collect_jobs([424242])
    report.update(results=results, rounds=rounds, left=len(queue.get_collectable_jobs()),
                  unknown=[[r.serialize() for r in unknown[0]], unknown[1]])
report['imported'] = sorted(m for m in sys.modules
                            if m in ('torch', 'workers.celery_tasks', 'spacer.tasks'))
print(json.dumps(report))
'''


def web_process(tmp_path: Path, broker: str, *argv: str, **settings: str) -> dict:
    env = worker_env(broker, **settings)
    env.update({'DJANGO_SETTINGS_MODULE': 'jobsite.settings',
                'JOBSITE_DB': str(tmp_path / 'jobs.sqlite3'),
                'PYTHONPATH': f'{PROJECT}:{ROOT}'})
    run = subprocess.run([sys.executable, '-c', WEB_PROCESS, *argv], env=env, cwd=PROJECT,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report['satisfies_base_queue'] is True
    assert report['imported'] == [], "the web process imported torch or task code"
    return report


def submit(tmp_path: Path, broker: str, jobs: list[tuple[int, str, JobMsg]],
           **settings: str) -> dict[int, str]:
    jobs_file = tmp_path / f'jobs-{time.monotonic_ns()}.json'
    jobs_file.write_text(json.dumps([{'job_id': job_id, 'spec_level': level,
                                      'job': job.serialize()}
                                     for job_id, level, job in jobs]))
    report = web_process(tmp_path, broker, 'submit', str(jobs_file), **settings)
    return {job_id: task_id for job_id, task_id in report['collectable']}


def extract_job(token: str, image: str, features: Path, extractor=None) -> JobMsg:
    return JobMsg('extract_features', [ExtractFeaturesMsg(
        job_token=token, extractor=extractor or DummyExtractor(feature_dim=8),
        rowcols=[(5, 5), (20, 30)], image_loc=DataLocation('filesystem', image),
        feature_loc=DataLocation('filesystem', str(features)))])


@pytest.fixture
def redis_url(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server.url(3)
    server.stop()


def test_jobs_submitted_before_a_restart_are_collected_after_it(redis_url, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    from spacer.tasks import extract_features
    for i in range(scenario.n_images):  # the training's features, ready
        extract_features(scenario.extract_msg(i))
    image = tmp_path / 'reef.png'
    image.write_bytes(png_bytes(7, 40, 50))
    features = tmp_path / 'reef.featurevector'
    train = JobMsg('train_classifier', [scenario.train_msg(epochs=2)])
    jobs = [(1, 'medium', extract_job('1', str(image), features)),
            (2, 'high', train),
            (3, 'medium', extract_job('3', str(tmp_path / 'missing.png'),
                                      tmp_path / 'never.featurevector'))]
    task_ids = submit(tmp_path, redis_url, jobs)  # no worker yet: nothing runs
    assert sorted(task_ids) == [1, 2, 3] and all(task_ids.values())

    env = worker_env(redis_url, DEVICE='cpu')
    with workers(('fleet', 'extract,train', env, tmp_path, '-c', '2')):
        report = web_process(tmp_path, redis_url, 'collect', '120')  # the restarted web

    assert report['left'] == 0, report
    by_token = {r['original_job']['tasks'][0]['job_token']: JobReturnMsg.deserialize(r)
                for r in report['results']}
    results = {job_id: by_token.pop(job.tasks[0].job_token) for job_id, _, job in jobs}
    assert by_token == {}
    totals = {}
    for statuses in report['rounds']:
        for status, count in statuses.items():
            totals[status] = totals.get(status, 0) + count
    assert totals['SUCCEEDED'] == 2 and totals['FAILED'] == 1, report['rounds']

    assert results[1].ok and results[1].original_job == jobs[0][2]
    stored = ImageFeatures.load(DataLocation('filesystem', str(features)))
    assert [(p.row, p.col) for p in stored.point_features] == [(5, 5), (20, 30)]
    assert results[2].ok and 0 <= results[2].results[0].acc <= 1
    assert results[3].ok is False and results[3].original_job == jobs[2][2]
    # CoralNet's SpacerResultHandler: the last line, split at the first colon.
    error_class, error_info = results[3].error_message.splitlines()[-1].split(':', 1)
    assert error_class and ' ' not in error_class and error_info.strip(), \
        results[3].error_message
    # A job nobody submitted is reported, not dropped silently.
    assert report['unknown'] == [[], ['DROPPED']]


def test_a_worker_killed_mid_job_still_ends_with_the_job_collected(redis_url, tmp_path):
    image = tmp_path / 'slow.png'
    image.write_bytes(png_bytes(3, 40, 50))
    features = tmp_path / 'slow.featurevector'
    slow = SlowExtractor(feature_dim=8, delay=6)
    env = worker_env(redis_url, DEVICE='cpu', EXTRA_CLASS_PATHS=CLASS_PATHS,
                     DEAD_WORKER_AFTER=6)
    client = client_for(redis_url)
    with workers(*[(name, 'extract', env, tmp_path, '-c', '1') for name in 'ab']) as started:
        by_name = {w.name: w for w in started}
        task_ids = submit(tmp_path, redis_url,
                          [(11, 'medium', extract_job('slow', str(image), features, slow))],
                          EXTRA_CLASS_PATHS=CLASS_PATHS)
        task_id = task_ids[11]
        holder = running_on(client, task_id, 60)
        first_pid = client.app.backend.get_task_meta(task_id)['result']['pid']
        by_name[holder].kill_main()  # kill -9 of its main process: a host lost
        killed_at = time.monotonic()

        def started_again():
            meta = client.app.backend.get_task_meta(task_id)
            return meta['status'] == 'SUCCESS' or (
                meta['status'] == 'STARTED' and meta['result']['pid'] != first_pid)
        wait_until(started_again, 90, 'the killed job to be taken up again')
        report = web_process(tmp_path, redis_url, 'collect', '90',
                             EXTRA_CLASS_PATHS=CLASS_PATHS)
        recovered_in = time.monotonic() - killed_at
        assert 'back in its queue' in ''.join(w.log_text() for w in started)

    assert report['left'] == 0, report
    # (Read as JSON: the SlowExtractor's class path is allowed only where
    # SPACER_EXTRA_CLASS_PATHS names it.)
    [result] = report['results']
    assert result['ok'], result['error_message']
    assert result['original_job']['tasks'][0]['job_token'] == 'slow'
    assert report['rounds'][-1] == {'SUCCEEDED': 1}, report['rounds']
    assert len(ImageFeatures.load(DataLocation('filesystem', str(features))).point_features) == 2
    assert recovered_in < 90, recovered_in
