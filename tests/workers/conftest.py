"""Fixtures the fleet tests share."""
from __future__ import annotations

import pytest

from tests.workers.services import RedisServer


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    """A redis-server of this test module's own, persisting every write."""
    server = RedisServer(tmp_path_factory.mktemp('redis-data'))
    server.start()
    yield server
    server.stop()
