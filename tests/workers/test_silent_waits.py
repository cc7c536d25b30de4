"""
No silent waits: with a live extract worker and none for training, the
main job's dispatcher warns within seconds that nothing consumes the train
queue (and stays quiet about extract), and ``spacer status`` flags it.
Real Redis and a real worker.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, SPACER, client_for, worker_env, workers
from spacer_survey.dispatch import QueueDispatcher

pytestmark = [pytest.mark.integration]


def test_a_queue_no_live_worker_consumes_is_named_within_seconds(redis_server, tmp_path,
                                                                  capsys):
    url = redis_server.url(9)
    env = worker_env(url)
    scenario = Scenario('filesystem', str(tmp_path))
    scenario.put_images()
    with workers(('lonely', 'extract', env, tmp_path)):
        # A generous wait for the extractions (a busy machine is slow), a
        # short one for the training that nothing consumes.
        dispatcher = QueueDispatcher(client_for(url), timeout=120)
        for returned in dispatcher.run_all('extract_features',
                                           [scenario.extract_msg(i)
                                            for i in range(scenario.n_images)]):
            assert returned.runtime >= 0
        assert capsys.readouterr().err == ''

        dispatcher.timeout = 4
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            dispatcher.run_one('train_classifier', scenario.train_msg(), on_wait=lambda _: None)
        warned = capsys.readouterr().err
        assert time.monotonic() - started < 10
        assert warned.strip() == ("spacer: warning: no live worker consumes the 'train' queue;"
                                  " its tasks wait until one starts"
                                  " (spacer worker --queues train).")

        done = subprocess.run([str(SPACER), 'status', '--timeout', '1'], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        shown = subprocess.run([str(SPACER), 'status', '--json', '--timeout', '1'], env=env,
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:4]}
    assert lines['train'].endswith('<- no live worker consumes this queue')
    assert lines['classify'].endswith('<- no live worker consumes this queue')
    assert 'no live worker' not in lines['extract']
    consumers = json.loads(shown.stdout)['consumers']
    assert consumers['train'] == [] and len(consumers['extract']) == 1


def test_a_queue_that_loses_its_last_worker_while_tasks_wait_is_named(
        redis_server, tmp_path, capsys, monkeypatch):
    """The consumers are looked at again while tasks wait (every
    CONSUMERS_RECHECK seconds, 1 s here): a worker that stops answering
    after the first submit (a hung host: SIGSTOP) is named, once."""
    from spacer_survey import dispatch
    monkeypatch.setattr(dispatch, 'CONSUMERS_RECHECK', 1.0)
    url = redis_server.url(10)
    scenario = Scenario('filesystem', str(tmp_path))
    scenario.put_images()
    with workers(('hung', 'extract', worker_env(url), tmp_path)) as (worker,):
        dispatcher = QueueDispatcher(client_for(url), timeout=120)
        assert dispatcher.run_one('extract_features', scenario.extract_msg(0)).runtime >= 0
        assert capsys.readouterr().err == ''
        dispatcher.timeout = 8
        worker.pause()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                dispatcher.run_one('extract_features', scenario.extract_msg(1))
            took = time.monotonic() - started
        finally:
            worker.resume()
    assert capsys.readouterr().err.strip() == (
        "spacer: warning: no live worker consumes the 'extract' queue; its tasks wait"
        " until one starts (spacer worker --queues extract).")
    assert took < 15
