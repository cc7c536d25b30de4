"""
The compose stack's Redis users (compose/redis-users.acl) on a local
redis-server started by compose/redis-start.sh itself, as the redis service
starts it, with that very file; and how a test connects as each role.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.conftest import free_port, wait_for_port
from tests.workers.services import ROOT

ACL_TEMPLATE = ROOT / 'compose' / 'redis-users.acl'
START_SCRIPT = ROOT / 'compose' / 'redis-start.sh'
ROLES = ('admin', 'worker', 'producer', 'flower', 'keda')
PASSWORDS = {role: f'{role}Pw{i}x7' for i, role in enumerate(ROLES)}


def run_acl_redis(folder: Path) -> Iterator[int]:
    """The port of a redis-server with the compose stack's users, started by
    its script with its files in ``folder``; stopped when resumed."""
    port = free_port()
    env = {'PATH': f"{shutil.which('redis-server').rsplit('/', 1)[0]}:/usr/bin:/bin",
           'ACL_TEMPLATE': str(ACL_TEMPLATE), 'ACL_FILE': str(folder / 'users.acl'),
           **{f'REDIS_{role.upper()}_PASSWORD': pw for role, pw in PASSWORDS.items()}}
    log = open(folder / 'redis.log', 'w')
    proc = subprocess.Popen(['sh', str(START_SCRIPT), '--port', str(port), '--bind', '127.0.0.1',
                             '--save', '', '--dir', str(folder)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
    except RuntimeError:
        proc.kill()
        raise AssertionError((folder / 'redis.log').read_text()[-2000:])
    yield port
    proc.terminate()
    proc.wait(20)
    log.close()


def url(port: int, role: str, db: int) -> str:
    return f'redis://{role}:{PASSWORDS[role]}@127.0.0.1:{port}/{db}'


def as_role(port: int, role: str) -> redis.Redis:
    return redis.Redis(host='127.0.0.1', port=port, username=role, password=PASSWORDS[role])


def denied_log(port: int) -> list[dict]:
    return as_role(port, 'admin').acl_log()
