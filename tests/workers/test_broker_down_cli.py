"""
Every command that needs the broker says in one line, within the connect
timeout, that the broker is down, naming it without its password; none
prints a traceback or retries for tens of seconds. A real Redis server
that is stopped (connections refused at once), a listener that never
answers (the timeout decides), and a result backend down behind a broker
that answers.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from tests.workers.services import ROOT, SPACER, RedisServer, worker_env

pytestmark = [pytest.mark.integration]

COMMANDS = [
    ['status'],
    ['result', '00000000-0000-0000-0000-000000000000'],
    ['result', '00000000-0000-0000-0000-000000000000', '--wait', '--timeout', '30'],
    ['dead-letters', 'list'],
    ['purge', 'extract'],
    ['submit', 'MESSAGE'],
    ['run', 'IMAGES', 'ANNOTATIONS'],
    ['classify', 'IMAGES', '--classifier', 'CLASSIFIER', '--points', 'ANNOTATIONS'],
]


@pytest.fixture(scope='module')
def stopped_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis-down'))
    server.start()
    server.stop()
    return server


@pytest.fixture(scope='module')
def silent_listener():
    """A port that accepts connections and never answers (its backlog
    completes them; nothing reads)."""
    with socket.create_server(('127.0.0.1', 0)) as listener:
        yield listener.getsockname()[1]


def _run(command: list[str], tmp_path, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    message = tmp_path / 'message.json'
    message.write_text(json.dumps({'job_token': 'x', 'feature_loc': {
        'storage_type': 'filesystem', 'key': 'f'}, 'classifier_loc': {
        'storage_type': 'filesystem', 'key': 'c'}}))
    argv = [{'MESSAGE': str(message), 'IMAGES': str(tmp_path),
             'ANNOTATIONS': str(tmp_path / 'a.csv'),
             'CLASSIFIER': str(tmp_path / 'classifier.pkl')}.get(a, a) for a in command]
    started = time.monotonic()
    done = subprocess.run([str(SPACER), *argv], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def _one_line(done: subprocess.CompletedProcess, command: list[str], what: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f'spacer {command[0]}: Cannot reach the {what} at '
                               f'redis://:**@127.0.0.1'), lines[0]
    assert 'secret' not in done.stderr


@pytest.mark.parametrize('command', COMMANDS, ids=lambda c: ' '.join(c[:2]))
def test_a_command_says_the_broker_is_down_in_one_line(stopped_redis, tmp_path, command):
    url = f'redis://:secret@127.0.0.1:{stopped_redis.port}/0'
    done, took = _run(command, tmp_path, worker_env(url))
    _one_line(done, command, 'broker')
    assert took < 5, took


@pytest.mark.parametrize('command', COMMANDS, ids=lambda c: ' '.join(c[:2]))
def test_a_broker_that_never_answers_costs_one_connect_timeout(silent_listener, tmp_path,
                                                               command):
    """The default BROKER_CONNECT_TIMEOUT (5 s), once, then the line; the
    rest is the command's start (under 5 s even on a busy machine)."""
    url = f'redis://:secret@127.0.0.1:{silent_listener}/0'
    done, took = _run(command, tmp_path, worker_env(url))
    _one_line(done, command, 'broker')
    assert 5 <= took < 10, took


def test_a_result_backend_that_is_down_is_named_as_such(stopped_redis, redis_server, tmp_path):
    backend = f'redis://:secret@127.0.0.1:{stopped_redis.port}/0'
    done, took = _run(['status'], tmp_path, worker_env(redis_server.url(4), backend))
    _one_line(done, ['status'], 'result backend')
    assert took < 5, took
