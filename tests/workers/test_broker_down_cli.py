"""
Every command that needs the broker says in one line, within the connect
timeout, that the broker is down, naming it without its password; none
prints a traceback or retries for tens of seconds. A real Redis server
that is stopped.
"""
from __future__ import annotations

import json
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
]


@pytest.fixture(scope='module')
def stopped_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis-down'))
    server.start()
    server.stop()
    return server


@pytest.mark.parametrize('command', COMMANDS, ids=lambda c: ' '.join(c[:2]))
def test_a_command_says_the_broker_is_down_in_one_line(stopped_redis, tmp_path, command):
    message = tmp_path / 'message.json'
    message.write_text(json.dumps({'job_token': 'x', 'feature_loc': {
        'storage_type': 'filesystem', 'key': 'f'}, 'classifier_loc': {
        'storage_type': 'filesystem', 'key': 'c'}}))
    argv = [{'MESSAGE': str(message), 'IMAGES': str(tmp_path),
             'ANNOTATIONS': str(tmp_path / 'a.csv')}.get(a, a) for a in command]
    url = f'redis://:secret@127.0.0.1:{stopped_redis.port}/0'
    started = time.monotonic()
    done = subprocess.run([str(SPACER), *argv], env=worker_env(url), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f'spacer {command[0]}: Cannot reach the broker at redis://:**@127.0.0.1')
    assert 'secret' not in done.stderr
    assert took < 8, took
