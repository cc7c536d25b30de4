"""
The base install is a producer's: a fresh virtual environment with only
``pip install coralnet-spacer`` (no extras) sends a task to a real worker
and reads its result, while torch, numba, onnxruntime, scipy and
matplotlib are absent, and a module that needs them says which extra
brings them in one line.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import venv

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, worker_env, workers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

HEAVY = ('torch', 'numba', 'onnxruntime', 'scipy', 'matplotlib', 'sklearn')

PRODUCER = r'''
import importlib.util, json, sys
from workers.client import Client
from spacer.messages import ExtractFeaturesMsg
message = ExtractFeaturesMsg.deserialize(json.loads(sys.argv[1]))
client = Client()
value = client.wait(client.submit('extract_features', message), 60)
try:
    import spacer.train_classifier
    needs_extra = None
except ImportError as e:
    needs_extra = str(e)
print(json.dumps({'value': value, 'needs_extra': needs_extra,
                  'installed': [m for m in sys.argv[2:] if importlib.util.find_spec(m)],
                  'loaded': [m for m in sys.argv[2:] if m in sys.modules]}))
'''


@pytest.fixture(scope='module')
def producer_venv(tmp_path_factory):
    """A virtual environment with the project's base install only."""
    home = tmp_path_factory.mktemp('producer-venv')
    # The project's files only, so the build leaves nothing in the checkout.
    source = tmp_path_factory.mktemp('producer-source')
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    for name in ('spacer', 'workers', 'spacer_survey', 'spacer_cli'):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns('__pycache__'))
    venv.create(home, with_pip=True)
    python = home / 'bin' / 'python'
    subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', str(source)],
                   check=True, timeout=500, cwd=home)
    return python


def test_a_base_install_submits_and_reads_results_without_the_heavy_packages(
        producer_venv, redis_server, tmp_path):
    url = redis_server.url(13)
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    env = worker_env(url)
    producer_env = {k: v for k, v in env.items() if k != 'PYTHONPATH'}
    with workers(('heavy', 'extract', env, tmp_path)):
        done = subprocess.run(
            [str(producer_venv), '-c', PRODUCER, json.dumps(scenario.extract_msg(0).serialize()),
             *HEAVY],
            env=producer_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert 'runtime' in seen['value']
    assert seen['installed'] == [] and seen['loaded'] == []
    assert seen['needs_extra'] in (
        f"No module named {name!r}: it comes with spacer's 'worker' extra"
        f" (pip install 'coralnet-spacer[worker]')." for name in HEAVY)
    assert scenario.check_features(0).feat.shape[0] == scenario.points
