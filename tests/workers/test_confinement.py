"""
Hostile filesystem locations against a real `spacer worker` confined by
FILESYSTEM_ROOTS (started as tests/workers/services.py does, on this
module's own redis-server).

Each escape is refused with a FAILURE naming the setting, the worker
serves on (a good task afterwards succeeds), and nothing outside the root
is created or changed: the outside folder is listed and hashed before and
after. A feature file holding a secret: the secret reaches neither the
result, the worker's log, Redis (results, dead letters) nor
`spacer dead-letters list --full`.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.messages import ClassifyFeaturesMsg, ExtractFeaturesMsg, JobMsg
from tests.workers.scenario import Scenario, png_bytes, rowcols
from tests.workers.services import (ROOT, SPACER, CeleryWorker, client_for, wait_until,
                                    worker_env, workers)

SECRET = 'TOPSECRET-456'
TIMEOUT = 60


def snapshot(folder: Path) -> dict:
    """Every entry under folder: a link's target, a file's sha256 and size."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                seen[str(path)] = ('link', os.readlink(path))
            elif path.is_file():
                data = path.read_bytes()
                seen[str(path)] = ('file', len(data), hashlib.sha256(data).hexdigest())
            else:
                seen[str(path)] = ('dir',)
    return seen


@pytest.fixture(scope='module')
def fleet(redis_server, tmp_path_factory):
    base = tmp_path_factory.mktemp('confinement')
    root, outside, logs = base / 'root', base / 'outside', base / 'logs'
    for folder in (root, outside, logs):
        folder.mkdir()
    # Outside: files a hostile message would like to read or overwrite.
    (outside / 'existing.bin').write_bytes(b'do not touch')
    (outside / 'img.png').write_bytes(png_bytes(7))
    ImageFeatures.make_random([1, 2, 3], 16).store(
        DataLocation('filesystem', str(outside / 'f.featurevector')))
    # Inside: links that lead outside.
    (root / 'linkdir').symlink_to(outside, target_is_directory=True)
    (root / 'out-link.featurevector').symlink_to(outside / 'existing.bin')
    (root / 'secret.json').write_text(json.dumps([[1.0, SECRET]]))

    url = redis_server.url(3)
    env = worker_env(url, FILESYSTEM_ROOTS=str(root))
    with workers(('confined', 'extract,train,classify', env, logs)) as (worker,):
        client = client_for(url)
        scenario = Scenario('filesystem', str(root), n_images=4)
        scenario.put_images()
        for i in range(scenario.n_images):
            client.wait(client.submit('extract_features', scenario.extract_msg(i)), TIMEOUT)
        client.wait(client.submit('train_classifier', scenario.train_msg(epochs=2)), TIMEOUT)
        yield dict(client=client, scenario=scenario, root=root, outside=outside,
                   worker=worker, url=url)


def refused(fleet, task_name: str, msg) -> None:
    """msg fails naming FILESYSTEM_ROOTS, outside is untouched, and a good
    task still runs on the same worker."""
    client, outside = fleet['client'], fleet['outside']
    before = snapshot(outside)
    result = client.wait_result(client.submit(task_name, msg), TIMEOUT)
    assert result.state == 'FAILURE', result
    assert result.error_type == 'PathOutsideRootsError', result
    assert 'FILESYSTEM_ROOTS' in result.error_message
    assert snapshot(outside) == before
    good = fleet['scenario'].extract_msg(0)
    good.job_token = f'good-after-{time.monotonic_ns()}'
    assert fleet['client'].wait_result(
        fleet['client'].submit('extract_features', good), TIMEOUT).state == 'SUCCESS'
    assert fleet['worker'].proc.poll() is None


def extract_to(fleet, feature_key: str, image_key: str | None = None) -> ExtractFeaturesMsg:
    scenario = fleet['scenario']
    msg = scenario.extract_msg(0)
    msg.job_token = f'hostile-{time.monotonic_ns()}'
    msg.feature_loc = DataLocation('filesystem', feature_key)
    if image_key is not None:
        msg.image_loc = DataLocation('filesystem', image_key)
    return msg


def test_write_to_an_absolute_path_outside(fleet):
    refused(fleet, 'extract_features', extract_to(fleet, str(fleet['outside'] / 'pwned')))
    assert not (fleet['outside'] / 'pwned').exists()


def test_overwrite_of_an_existing_file_outside(fleet):
    refused(fleet, 'extract_features',
            extract_to(fleet, str(fleet['outside'] / 'existing.bin')))


def test_write_through_a_relative_dotdot_path(fleet):
    # The worker runs in the repository: climb from there to outside.
    relative = os.path.relpath(fleet['outside'] / 'pwned-rel', ROOT)
    assert relative.startswith('..')
    refused(fleet, 'extract_features', extract_to(fleet, relative))
    dotted = str(fleet['root'] / '..' / 'outside' / 'pwned-dots')
    refused(fleet, 'extract_features', extract_to(fleet, dotted))


def test_write_through_a_symlinked_folder(fleet):
    refused(fleet, 'extract_features',
            extract_to(fleet, str(fleet['root'] / 'linkdir' / 'pwned-link')))
    refused(fleet, 'extract_features',
            extract_to(fleet, str(fleet['root'] / 'linkdir' / 'new' / 'deeper')))


def test_write_to_a_symlink_at_the_destination(fleet):
    link = fleet['root'] / 'out-link.featurevector'
    refused(fleet, 'extract_features', extract_to(fleet, str(link)))
    assert link.is_symlink()  # neither followed nor replaced


def test_train_outputs_outside(fleet):
    scenario, outside = fleet['scenario'], fleet['outside']
    for field, key in (('model_loc', str(outside / 'model.pkl')),
                       ('valresult_loc', str(outside / 'valresult.json')),
                       ('model_loc', str(fleet['root'] / 'linkdir' / 'm.pkl'))):
        msg = scenario.train_msg(epochs=1)
        msg.job_token = f'hostile-train-{time.monotonic_ns()}'
        setattr(msg, field, DataLocation('filesystem', key))
        refused(fleet, 'train_classifier', msg)
    msg = scenario.train_msg(epochs=1)
    msg.job_token = f'hostile-cache-{time.monotonic_ns()}'
    msg.feature_cache_dir = str(outside / 'cache')
    refused(fleet, 'train_classifier', msg)


def test_reads_outside(fleet):
    scenario, outside, root = fleet['scenario'], fleet['outside'], fleet['root']
    inside_features = str(root / 'read-test.featurevector')
    # image_loc outside, directly and through the symlinked folder
    for image in (str(outside / 'img.png'), str(root / 'linkdir' / 'img.png')):
        refused(fleet, 'extract_features', extract_to(fleet, inside_features, image))
    assert not Path(inside_features).exists()
    # feature_loc of classify_features outside
    for features in (str(outside / 'f.featurevector'),
                     str(root / 'linkdir' / 'f.featurevector')):
        refused(fleet, 'classify_features', ClassifyFeaturesMsg(
            job_token=f'hostile-cf-{time.monotonic_ns()}',
            feature_loc=DataLocation('filesystem', features),
            classifier_loc=scenario.model_loc))
    # the classifier (model_loc of training, classifier_loc of classifying) outside
    refused(fleet, 'classify_features', ClassifyFeaturesMsg(
        job_token=f'hostile-clf-{time.monotonic_ns()}', feature_loc=scenario.feature_loc(0),
        classifier_loc=DataLocation('filesystem', str(outside / 'existing.bin'))))
    msg = scenario.train_msg(epochs=1)
    msg.job_token = f'hostile-prev-{time.monotonic_ns()}'
    msg.previous_model_locs = [DataLocation('filesystem', str(outside / 'existing.bin'))]
    refused(fleet, 'train_classifier', msg)


def redis_dump(url: str) -> bytes:
    """Every value of the worker's Redis database, as bytes."""
    import redis
    client = redis.Redis.from_url(url)
    chunks = []
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b'string':
            chunks.append(client.get(key) or b'')
        elif kind == b'list':
            chunks += client.lrange(key, 0, -1)
        elif kind == b'hash':
            chunks += [k + v for k, v in client.hgetall(key).items()]
        elif kind == b'set':
            chunks += list(client.smembers(key))
        elif kind == b'zset':
            chunks += client.zrange(key, 0, -1)
        chunks.append(key)
    return b'\n'.join(chunks)


def test_a_secret_in_a_feature_file_goes_nowhere(fleet):
    client, scenario = fleet['client'], fleet['scenario']
    secret_loc = DataLocation('filesystem', str(fleet['root'] / 'secret.json'))
    msg = ClassifyFeaturesMsg(job_token=f'secret-{time.monotonic_ns()}',
                              feature_loc=secret_loc, classifier_loc=scenario.model_loc)
    result = client.wait_result(client.submit('classify_features', msg), TIMEOUT)
    assert result.state == 'FAILURE' and result.error_type == 'InvalidFeaturesError'
    assert SECRET not in repr(result)
    # A job's failure is a successful result whose error_message holds tracebacks.
    job = JobMsg('classify_features', [ClassifyFeaturesMsg(
        job_token=f'secret-job-{time.monotonic_ns()}', feature_loc=secret_loc,
        classifier_loc=scenario.model_loc)])
    job_result = client.wait_result(client.submit('process_job', job), TIMEOUT)
    assert job_result.state == 'SUCCESS' and job_result.value['ok'] is False
    assert 'InvalidFeaturesError' in job_result.value['error_message'] \
        or 'AssertionError' in job_result.value['error_message']
    assert SECRET not in json.dumps(job_result.value)
    wait_until(lambda: 'secret.json' in fleet['worker'].log_text(), 10,
               'the worker to log the failure')
    assert SECRET not in fleet['worker'].log_text()  # logged without the content
    assert SECRET.encode() not in redis_dump(fleet['url'])
    env = worker_env(fleet['url'])
    listed = subprocess.run([str(SPACER), 'dead-letters', 'list', '--full'], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert SECRET not in listed.stdout + listed.stderr


# --- starting: confined by default ------------------------------------------

def test_worker_refuses_to_start_without_roots(redis_server):
    env = worker_env(redis_server.url(4))
    del env['SPACER_FILESYSTEM_ROOTS']
    done = subprocess.run([str(SPACER), 'worker', '-Q', 'classify'], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in done.stderr, done.stderr
    assert 'FILESYSTEM_ROOTS' in lines[0] and '--unconfined' in lines[0]


@pytest.mark.parametrize('value, expected', [('relative/dir', 'relative'),
                                             ('/no/such/folder', 'not an existing folder')])
def test_worker_refuses_bad_roots_in_one_line(redis_server, value, expected):
    env = worker_env(redis_server.url(4), FILESYSTEM_ROOTS=value)
    done = subprocess.run([str(SPACER), 'worker', '-Q', 'classify'], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and expected in done.stderr


def test_worker_starts_unconfined_when_told(redis_server, tmp_path):
    env = worker_env(redis_server.url(4))
    del env['SPACER_FILESYSTEM_ROOTS']
    with workers(('unconfined', 'classify', env, tmp_path, '--unconfined')):
        pass


def test_celerys_own_worker_command_is_confined_the_same_way(redis_server, tmp_path):
    """``celery -A workers.app worker`` refuses to start without roots, in
    one line naming both ways out, and starts when the operator allows it."""
    env = worker_env(redis_server.url(4))
    del env['SPACER_FILESYSTEM_ROOTS']
    done = subprocess.run([str(SPACER.parent / 'celery'), '-A', 'workers.app', 'worker',
                           '-Q', 'classify', '-c', '1'], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    # Celery may warn first (e.g. about running as root); the refusal is one
    # line of its own, with no traceback.
    ours = [line for line in done.stderr.splitlines() if line.startswith('spacer worker:')]
    assert len(ours) == 1 and 'Traceback' not in done.stderr, done.stderr
    assert 'FILESYSTEM_ROOTS' in ours[0] and 'SPACER_UNCONFINED=true' in ours[0]
    env['SPACER_UNCONFINED'] = 'true'
    with workers(('celery-unconfined', 'classify', env, tmp_path, '-c', '1'),
                 kind=CeleryWorker):
        pass


def test_features_written_inside_are_usable(fleet):
    """The confined worker's own outputs are ordinary files inside the root."""
    features = fleet['scenario'].check_features(1)
    assert np.isfinite(features.feat).all()
    assert not any(p.name.startswith('.tmp-') for p in fleet['root'].iterdir())
