"""
Real services for the fleet tests: Redis databases and servers, RabbitMQ
reachability, and `spacer worker` processes (each in its own process group,
so a test can kill -9 a whole worker).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SPACER = Path(sys.executable).parent / 'spacer'
SYSTEM_REDIS = ('127.0.0.1', 6379)
RABBITMQ = ('127.0.0.1', 5672)


def reachable(address: tuple[str, int]) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(address) == 0


def claim_empty_redis_db() -> int:
    """A database number of the system Redis that holds nothing now."""
    import redis
    for db in range(15, 0, -1):
        client = redis.Redis(*SYSTEM_REDIS, db=db)
        if client.dbsize() == 0:
            # Mark it so a concurrent session picks another one.
            if client.set('spacer-tests:owner', os.getpid(), nx=True, ex=3600):
                return db
    raise RuntimeError('no empty Redis database on 127.0.0.1:6379')


class RedisServer:
    """Our own redis-server on a free port, persisting every write (AOF)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which('redis-server')
        self.proc = subprocess.Popen(
            [exe, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'yes', '--appendfsync', 'always', '--dir', str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.wait_loaded()

    def wait_loaded(self, timeout: float = 30) -> None:
        """Wait until the server has replayed its AOF: it listens before
        that and answers LOADING to every command meanwhile."""
        import redis
        client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: Redis flushes the AOF and exits
            self.proc.wait(20)
            self.proc = None

    def restart(self, down_for: float = 0.5) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def url(self, db: int = 0) -> str:
        return f'redis://127.0.0.1:{self.port}/{db}'


def default_roots() -> str:
    """FILESYSTEM_ROOTS of test workers: the temporary folder (pytest's
    tmp_path lives there) and the repository (fixtures); a test confines
    its worker more narrowly by passing FILESYSTEM_ROOTS."""
    return os.pathsep.join([os.path.realpath(tempfile.gettempdir()), str(ROOT)])


def worker_env(broker_url: str, backend_url: str | None = None, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith('SPACER_')}
    env.update({'SPACER_BROKER_URL': broker_url,
                'SPACER_RESULT_BACKEND': backend_url or broker_url,
                'SPACER_FILESYSTEM_ROOTS': default_roots(),
                'PYTHONPATH': str(ROOT), 'PYTHONUNBUFFERED': '1'})
    env.update({f'SPACER_{k}': str(v) for k, v in settings.items()})
    return env


def hostname_of(name: str) -> str:
    """The Celery hostname of the test worker called ``name``."""
    return f'{name}@{socket.gethostname()}'


class Worker:
    """One `spacer worker` process group with its log file."""

    def __init__(self, name: str, queues: str, env: dict, log_dir: Path, *extra: str):
        self.name = hostname_of(name)
        self.log = log_dir / f'{name}.log'
        with open(self.log, 'w') as out:
            self.proc = subprocess.Popen(
                self.command(queues, extra), env=env, cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def command(self, queues: str, extra: tuple[str, ...]) -> list[str]:
        return [str(SPACER), 'worker', '--queues', queues, '--hostname', self.name,
                '--loglevel', 'INFO', *extra]

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ''

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ' ready.' in self.log_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 the whole worker (main process and pool children)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def kill_main(self) -> None:
        """kill -9 the main process only (a lost host, as its pool sees it)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def pool_children(self) -> list[int]:
        """The pids of the main process's pool children, now."""
        pid = self.proc.pid
        try:
            return [int(p) for p in Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        else:  # its main process was killed: end any pool child it left
            self.kill()


class CeleryWorker(Worker):
    """A worker started with Celery's own command (``celery -A workers.app
    worker``, as docs/operations.md allows); ``queues`` are queue names."""

    def command(self, queues: str, extra: tuple[str, ...]) -> list[str]:
        return [str(SPACER.parent / 'celery'), '-A', 'workers.app', 'worker', '--queues', queues,
                '--hostname', self.name, '--loglevel', 'INFO', *extra]


@contextmanager
def workers(*specs: tuple[str, str, dict, Path],
            kind: type[Worker] = Worker) -> Iterator[list[Worker]]:
    """Start workers (in parallel), wait until each is ready, stop them after."""
    started = [kind(*spec) for spec in specs]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            worker.stop()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_on(client, task_id: str, timeout: float = 20) -> str:
    """The hostname of the worker that has started the task."""
    def started():
        meta = client.app.backend.get_task_meta(task_id)
        if meta['status'] == 'STARTED':
            return meta['result']['hostname']
        return None
    return wait_until(started, timeout, f'task {task_id} to start')


def client_for(broker_url: str, backend_url: str | None = None, **overrides):
    """A producer Client with its own app; ``overrides`` replace WorkerSettings fields."""
    from dataclasses import replace

    from workers.app import make_app
    from workers.client import Client
    from workers.settings import load
    settings = replace(load(), broker_url=broker_url,
                       result_backend=backend_url or broker_url, **overrides)
    return Client(make_app(settings))
