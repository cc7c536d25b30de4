"""
A worker whose main process is killed (kill -9: a host lost) has its task
noticed and run again by another worker within minutes, with the default
settings: its heartbeat stops, and a live worker returns its unacknowledged
message to the queue long before the visibility timeout (4 hours) would.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import client_for, running_on, wait_until, worker_env, workers
from tests.workers.slow_classes import CLASS_PATHS, SlowTrainer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_training_on_a_killed_worker_is_run_again_within_minutes(redis_server, tmp_path):
    from spacer.storage import load_classifier
    from workers.settings import load
    assert load().visibility_timeout > 3600  # recovery must not come from there
    env = worker_env(redis_server.url(), EXTRA_CLASS_PATHS=CLASS_PATHS)
    client = client_for(redis_server.url())
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    with workers(('extract', 'extract', env, tmp_path),
                 ('train-a', 'train', env, tmp_path, '-c', '1'),
                 ('train-b', 'train', env, tmp_path, '-c', '1')) as started:
        by_name = {w.name: w for w in started}
        for i in range(scenario.n_images):
            client.wait(client.submit('extract_features', scenario.extract_msg(i)), 60)
        train = scenario.train_msg()
        train.trainer = SlowTrainer(delay=20)
        task_id = client.submit('train_classifier', train)
        holder = running_on(client, task_id, 60)
        killed_at = time.monotonic()
        os.kill(by_name[holder].proc.pid, signal.SIGKILL)  # the main process only
        result = client.wait(task_id, 240)
        recovered_in = time.monotonic() - killed_at
        survivor = next(w for name, w in by_name.items()
                        if name != holder and name.startswith('train'))
        wait_until(lambda: f'[{task_id}] succeeded' in survivor.log_text(), 30,
                   'the other worker to log the training')
        assert 'back in its queue' in ''.join(w.log_text() for w in started)
    assert 0 <= result['acc'] <= 1
    assert recovered_in < 180, recovered_in
    assert sorted(load_classifier(scenario.model_loc).classes_.tolist()) == [1, 2, 3]
