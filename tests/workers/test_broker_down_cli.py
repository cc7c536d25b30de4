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
import threading
import time

import pytest

from tests.workers.services import ROOT, SPACER, RedisServer, wait_until, worker_env

pytestmark = [pytest.mark.integration]

# Refused at once, a command takes only its start and exit: 0.7 s here when
# idle, over 5 s beside a CPU hog and three more test processes. One that
# retried would take tens of seconds.
REFUSED_AT_ONCE = 15

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


class SilentListener:
    """A port that accepts connections and never answers. It notes when
    each connection came (as late as its accept() runs) and when its client
    gave up on it, so the wait is timed where it happens, apart from the
    command's start and exit (which beside a CPU hog and three more test
    processes took over 5 s)."""

    def __init__(self):
        self._server = socket.create_server(('127.0.0.1', 0))
        self.port = self._server.getsockname()[1]
        self.opened: list[float] = []
        self.closed: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            self.opened.append(time.monotonic())
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    def _drain(self, connection: socket.socket) -> None:
        with connection:
            try:
                while connection.recv(65536):
                    pass
            except OSError:
                pass
        self.closed.append(time.monotonic())

    def forget(self) -> None:
        self.opened.clear()
        self.closed.clear()

    def waited(self) -> float:
        """Seconds from the first connection to the last one given up."""
        wait_until(lambda: self.opened and len(self.closed) == len(self.opened), 10,
                   'the command to close its connections')
        return max(self.closed) - min(self.opened)

    def close(self) -> None:
        self._server.close()


@pytest.fixture(scope='module')
def silent_listener():
    listener = SilentListener()
    yield listener
    listener.close()


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
    assert took < REFUSED_AT_ONCE, took


@pytest.mark.parametrize('command', COMMANDS, ids=lambda c: ' '.join(c[:2]))
def test_a_broker_that_never_answers_costs_one_connect_timeout(silent_listener, tmp_path,
                                                               command):
    """The default BROKER_CONNECT_TIMEOUT (5 s), once, then the line: a
    second wait, or a retry, would keep a connection for 10 s or more."""
    silent_listener.forget()
    url = f'redis://:secret@127.0.0.1:{silent_listener.port}/0'
    done, took = _run(command, tmp_path, worker_env(url))
    _one_line(done, command, 'broker')
    assert took >= 5, took
    # The listener notes a connection when its accept() returns, which a busy
    # machine runs after the client has connected and started its 5 s: the
    # wait it sees can be a little short of 5 s (4.986 s beside a CPU hog).
    assert 4 <= silent_listener.waited() < 9


def test_a_result_backend_that_is_down_is_named_as_such(stopped_redis, redis_server, tmp_path):
    backend = f'redis://:secret@127.0.0.1:{stopped_redis.port}/0'
    done, took = _run(['status'], tmp_path, worker_env(redis_server.url(4), backend))
    _one_line(done, ['status'], 'result backend')
    assert took < REFUSED_AT_ONCE, took
