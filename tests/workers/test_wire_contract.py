"""
docs/wire.md is enough to drive a fleet: a plain Celery app in a process of
its own, configured only by the document's snippet and importing nothing of
spacer, sends all five tasks (and one that fails) to real workers and reads
the results the document describes.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, workers, worker_env

pytestmark = [pytest.mark.integration]

WIRE_DOC = ROOT / 'docs' / 'wire.md'

FOREIGN_PRODUCER = r'''
import json, sys
exec(sys.argv[1])  # the snippet of docs/wire.md, nothing else
app = spacer_producer(sys.argv[2], sys.argv[2])
sends = json.loads(sys.stdin.read())
outcomes = {}
for label, name, message in sends:
    result = app.send_task(name, args=[message])
    value = result.get(timeout=60, propagate=False)
    if result.state == 'SUCCESS':
        outcomes[label] = ['SUCCESS', value]
    else:
        outcomes[label] = [result.state, type(value).__name__, str(value)]
outcomes['imported'] = sorted(m for m in sys.modules if m.split('.')[0] in ('spacer', 'workers'))
print(json.dumps(outcomes))
'''


def wire_snippet() -> str:
    text = WIRE_DOC.read_text()
    found = re.search(r'<!-- wire-config -->\s*```python\n(.*?)```', text, re.S)
    assert found, 'docs/wire.md lost its marked configuration snippet'
    return found.group(1)


def test_a_plain_celery_app_configured_by_the_wire_document_runs_all_five_tasks(
        redis_server, tmp_path):
    url = redis_server.url(4)
    scenario = Scenario('filesystem', str(tmp_path), n_images=6)
    scenario.put_images()
    missing = scenario.extract_msg(0)
    missing.image_loc = scenario.loc('no-such-image.png')
    missing.job_token = 'missing'
    first = [(f'extract{i}', 'spacer.extract_features', scenario.extract_msg(i).serialize())
             for i in range(scenario.n_images)]
    then = [('train', 'spacer.train_classifier', scenario.train_msg().serialize()),
            ('classify_features', 'spacer.classify_features',
             scenario.classify_features_msg(0).serialize()),
            ('classify_image', 'spacer.classify_image', scenario.classify_image_msg(1).serialize()),
            ('process_job', 'spacer.process_job', scenario.job_msg().serialize()),
            ('missing', 'spacer.extract_features', missing.serialize())]
    env = worker_env(url)
    with workers(('wire', 'extract,train,classify', env, tmp_path)):
        outcomes = {}
        for sends in (first, then):  # the training needs the features first
            done = subprocess.run(
                [sys.executable, '-c', FOREIGN_PRODUCER, wire_snippet(), url],
                input=json.dumps(sends), capture_output=True, text=True, timeout=300,
                cwd=tmp_path, env={'PATH': env['PATH'], 'PYTHONNOUSERSITE': '1'})
            assert done.returncode == 0, done.stderr[-3000:]
            outcomes.update(json.loads(done.stdout))

    assert outcomes.pop('imported') == []
    failed = outcomes.pop('missing')
    assert failed[0] == 'FAILURE' and failed[1] not in ('RemoteError', 'Exception'), failed
    assert 'no-such-image' in failed[2], failed
    assert {label: o[0] for label, o in outcomes.items()} == dict.fromkeys(outcomes, 'SUCCESS')
    assert 0 <= outcomes['train'][1]['acc'] <= 1
    assert len(outcomes['classify_features'][1]['scores']) == scenario.points
    assert len(outcomes['classify_image'][1]['scores']) == 4
    assert len(outcomes['process_job'][1]['results']) == 2
    for i in range(scenario.n_images):
        assert scenario.check_features(i).feat.shape[0] == scenario.points
