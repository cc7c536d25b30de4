"""Fixtures the fleet tests share."""
from __future__ import annotations

import pytest

from tests.workers.acl_users import run_acl_redis
from tests.workers.services import RedisServer


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    """A redis-server of this test module's own, persisting every write."""
    server = RedisServer(tmp_path_factory.mktemp('redis-data'))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def acl_redis(tmp_path_factory):
    """redis-server with the compose stack's users (tests.workers.acl_users)."""
    yield from run_acl_redis(tmp_path_factory.mktemp('redis-acl'))
