"""The Django example end to end: real Redis, a real `spacer worker`, Django on sqlite.

Django runs in its own process (as a web server would), so what it imports
is checked there: neither torch nor the task code.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import free_port
from tests.deploy.project_files import ROOT
from tests.deploy.services import redis_server, spacer_worker, wait_until, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = ROOT / 'examples' / 'django_project'
REDIS_DB = 12

DJANGO_SCRIPT = r'''
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from jobs.models import Job

call_command('migrate', verbosity=0)
image, features, bad_features, points = sys.argv[1:5]
call_command('enqueue_extract', image=image, features=features, points=points)
web = Client()
message = dict(Job.objects.get().message)
message['job_token'] = 'missing-image'
message['image_loc'] = dict(message['image_loc'], key=image + '.missing')
message['feature_loc'] = dict(message['feature_loc'], key=bad_features)
response = web.post('/jobs/', data=json.dumps({'task_name': 'extract_features',
                                                'message': message}),
                    content_type='application/json')
assert response.status_code == 202, response.content
rejected = web.post('/jobs/', data='{"task_name": "rm -rf"}', content_type='application/json')
assert rejected.status_code == 400
call_command('collect_results', wait=60, interval=0.2)
jobs = [web.get(f'/jobs/{job.pk}/').json() for job in Job.objects.order_by('pk')]
print(json.dumps({'jobs': jobs,
                  'torch': 'torch' in sys.modules,
                  'task_code': sorted(m for m in sys.modules
                                      if m in ('workers.celery_tasks', 'spacer.tasks'))}))
'''


def test_jobs_enqueued_from_django_are_run_and_collected(tmp_path):
    image = tmp_path / 'reef.png'
    Image.new('RGB', (80, 60), (10, 120, 90)).save(image)
    features = tmp_path / 'reef.featurevector'
    with redis_server(tmp_path) as port:
        broker = f'redis://127.0.0.1:{port}/{REDIS_DB}'
        log = tmp_path / 'worker.log'
        env = worker_env(broker, DEVICE='cpu')
        with spacer_worker(['--queues', 'extract'], env, log) as proc:
            django_env = worker_env(broker)
            django_env.update({'DJANGO_SETTINGS_MODULE': 'jobsite.settings',
                               'JOBSITE_DB': str(tmp_path / 'jobs.sqlite3'),
                               'PYTHONPATH': f'{PROJECT}:{ROOT}'})
            run = subprocess.run(
                [sys.executable, '-c', DJANGO_SCRIPT, str(image), str(features),
                 str(tmp_path / 'never.featurevector'), '10,10;30,40;59,79'],
                env=django_env, cwd=PROJECT, capture_output=True, text=True, timeout=240)
            assert proc.poll() is None, log.read_text()[-3000:]
    assert run.returncode == 0, run.stderr[-4000:] + log.read_text()[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert report['torch'] is False, "the Django process imported torch"
    assert report['task_code'] == [], "the Django process imported task code"
    good, bad = report['jobs']
    assert good['status'] == 'done' and good['task_id']
    assert good['result']['extractor_loaded_remotely'] in (True, False)
    assert features.exists()
    from spacer.data_classes import DataLocation, ImageFeatures
    stored = ImageFeatures.load(DataLocation('filesystem', str(features)))
    assert [(p.row, p.col) for p in stored.point_features] == [(10, 10), (30, 40), (59, 79)]
    assert bad['status'] == 'failed' and bad['error_type'] and bad['error_message']
    assert bad['task_id'] != good['task_id']
