"""
Purged queues do not strand their jobs: after ``spacer purge`` (tasks
REVOKED, job keys released) or Celery's own ``celery purge`` (keys left,
but their holders' messages are gone), submitting the same job queues it
anew and a worker runs it. Real Redis, the real commands, a real worker.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, SPACER, client_for, workers, worker_env

pytestmark = [pytest.mark.integration]

CELERY = Path(sys.executable).parent / 'celery'


def _queued_jobs(client, scenario: Scenario) -> list[str]:
    return [client.submit('extract_features', scenario.extract_msg(i))
            for i in range(scenario.n_images)]


def _run_after_resubmit(client, scenario, purged_ids, env, tmp_path) -> None:
    again = _queued_jobs(client, scenario)
    assert not set(again) & set(purged_ids)
    with workers(('after', 'extract', env, tmp_path)):
        for task_id in again:
            assert 'runtime' in client.wait(task_id, 60)
    for i in range(scenario.n_images):
        assert scenario.check_features(i).feat.shape[0] == len(scenario.extract_msg(i).rowcols)


def test_spacer_purge_revokes_the_tasks_and_frees_their_jobs(redis_server, tmp_path):
    env = worker_env(redis_server.url(1))
    client = client_for(redis_server.url(1))
    scenario = Scenario('filesystem', str(tmp_path), n_images=3)
    scenario.put_images()
    ids = _queued_jobs(client, scenario)
    assert _queued_jobs(client, scenario) == ids  # deduplicated while queued

    done = subprocess.run([str(SPACER), 'purge', 'extract'], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ('extract: 3 message(s) removed, 3 task(s) marked REVOKED,'
                                   ' 3 job key(s) released')
    for task_id in ids:
        outcome = client.result(task_id)
        assert outcome.state == 'REVOKED' and 'purged' in outcome.error_message
    _run_after_resubmit(client, scenario, ids, env, tmp_path)


def test_celery_purge_leaves_keys_whose_holders_are_taken_over(redis_server, tmp_path):
    env = worker_env(redis_server.url(2))
    client = client_for(redis_server.url(2))
    scenario = Scenario('filesystem', str(tmp_path), n_images=2)
    scenario.put_images()
    ids = _queued_jobs(client, scenario)
    done = subprocess.run([str(CELERY), '-A', 'workers.app', 'purge', '-f', '-Q', 'extract'],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'Purged 2 messages' in done.stdout
    assert [client.result(t).state for t in ids] == ['PENDING', 'PENDING']
    _run_after_resubmit(client, scenario, ids, env, tmp_path)


def test_an_unknown_queue_is_named(redis_server):
    done = subprocess.run([str(SPACER), 'purge', 'extract', 'nowhere'],
                          env=worker_env(redis_server.url(3)), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("spacer purge: no queue 'nowhere'; known: "
                                   "classify, extract, train.")
