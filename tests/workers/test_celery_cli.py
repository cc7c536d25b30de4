"""
Celery's own ways in: ``celery -A workers.app worker`` logs each task as
``spacer worker`` does, and ``spacer worker`` passes Celery's worker
options through (``-E``, ``--autoscale``) except a pool that cannot
enforce time limits, which it refuses in one line. Real Redis and workers.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, SPACER, client_for, wait_until, worker_env, workers

pytestmark = [pytest.mark.integration]

CELERY = Path(sys.executable).parent / 'celery'


def test_celery_cli_worker_logs_tasks_like_spacer_worker(redis_server, tmp_path):
    url = redis_server.url(6)
    log = tmp_path / 'celery.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [str(CELERY), '-A', 'workers.app', 'worker', '-Q', 'extract', '-c', '1',
             '-l', 'INFO', '-n', 'plain@%h'],
            env=worker_env(url), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_until(lambda: ' ready.' in log.read_text(), 60, 'the celery worker')
        client = client_for(url)
        scenario = Scenario('filesystem', str(tmp_path), n_images=1)
        scenario.put_images()
        good = client.submit('extract_features', scenario.extract_msg(0))
        bad_msg = scenario.extract_msg(0)
        bad_msg.job_token, bad_msg.image_loc = 'bad', scenario.loc('absent.png')
        bad = client.submit('extract_features', bad_msg)
        client.wait(good, 60)
        assert client.wait_result(bad, 60).state == 'FAILURE'
        wait_until(lambda: f'[{bad}] raised expected' in log.read_text(), 10, 'the failure line')
        text = log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert f'[{good}] received' in text and f'[{good}] succeeded' in text
    assert f'[{bad}] rejected its input: FileNotFoundError' in text
    assert 'RemoteError' not in text


def test_spacer_worker_passes_celery_options_through(redis_server, tmp_path):
    env = worker_env(redis_server.url(6))
    with workers(('events', 'classify', env, tmp_path, '-E', '--autoscale=2,1')) as started:
        client = client_for(redis_server.url(6))
        stats = wait_until(lambda: client.app.control.inspect(
            destination=[started[0].name], timeout=1.0).stats(), 20, 'the worker stats')
        assert 'task events: ON' in started[0].log_text()
    autoscaler = stats[started[0].name]['autoscaler']
    assert (autoscaler['max'], autoscaler['min']) == (2, 1)


def test_failure_events_name_the_real_exception_class(redis_server, tmp_path):
    """What Flower shows of a failure is the task-failed event's
    ``exception`` field: it names the error's own class, not RemoteError."""
    import threading

    url = redis_server.url(6)
    client = client_for(url)
    failed = []
    ready = threading.Event()
    receivers = []

    def listen() -> None:
        with client.app.connection_for_read() as conn:
            receiver = client.app.events.Receiver(
                conn, handlers={'task-failed': failed.append,
                                '*': lambda _event: ready.set()})
            receivers.append(receiver)
            try:
                receiver.capture(limit=None, timeout=60, wakeup=True)
            except Exception:  # noqa: BLE001 - the timeout (socket.timeout) ends it
                pass

    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    with workers(('evented', 'extract', worker_env(url), tmp_path, '-E')):
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_until(ready.is_set, 30, "the worker's first event (heartbeat)")
        bad_msg = scenario.extract_msg(0)
        bad_msg.job_token, bad_msg.image_loc = 'bad', scenario.loc('absent.png')
        bad = client.submit('extract_features', bad_msg)
        assert client.wait_result(bad, 60).state == 'FAILURE'
        wait_until(lambda: any(e['uuid'] == bad for e in failed), 20, 'the task-failed event')
        receivers[0].should_stop = True
        listener.join(10)
    event = next(e for e in failed if e['uuid'] == bad)
    assert event['exception'].startswith('FileNotFoundError('), event['exception']


@pytest.mark.parametrize('spelling', [['--pool', 'solo'], ['-Psolo'], ['-EP', 'solo'],
                                      ['--pool=solo']])
def test_spacer_worker_refuses_a_pool_without_time_limits_in_one_line(redis_server, spelling):
    done = subprocess.run([str(SPACER), 'worker', '-Q', 'extract', *spelling],
                          env=worker_env(redis_server.url(6)), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "spacer worker: --pool solo is refused: only the prefork pool enforces hard time"
        " limits, so spacer workers always use it (see docs/operations.md)."]


@pytest.mark.parametrize('options', [['-Ofair', '-E'], ['-n', 'aPsolo@host'], ['-P', 'prefork']])
def test_options_that_name_no_other_pool_pass(options):
    from spacer_cli.worker_command import celery_options
    assert celery_options(options) == options
