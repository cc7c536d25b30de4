"""Real services for the fleet tests: a Redis server and `spacer worker` processes."""
from __future__ import annotations

import os
import shutil
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


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[int]:
    """A throwaway redis-server on a free loopback port; yields the port."""
    exe = shutil.which('redis-server')
    if exe is None:
        raise RuntimeError('redis-server is needed (apt-get install redis-server)')
    port = free_port()
    proc = subprocess.Popen([exe, '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                             '--appendonly', 'no', '--dir', str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def worker_env(broker_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith('SPACER_')}
    env.update({'SPACER_BROKER_URL': broker_url, 'SPACER_RESULT_BACKEND': broker_url,
                # the temporary folder (tests' files) and the repository (fixtures)
                'SPACER_FILESYSTEM_ROOTS': os.pathsep.join(
                    [os.path.realpath(tempfile.gettempdir()), str(ROOT)]),
                'PYTHONPATH': str(ROOT),
                # the image's commands (spacer, celery) are on PATH, as in a container
                'PATH': f"{SPACER.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    env.update({f'SPACER_{k}': str(v) for k, v in settings.items()})
    return env


@contextmanager
def spacer_worker(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`spacer worker ...` as its own process; stopped with SIGTERM (warm shutdown)."""
    with open(log, 'w') as out:
        proc = subprocess.Popen([str(SPACER), 'worker', *argv], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_until(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ''
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def hostname() -> str:
    return socket.gethostname()
