"""Every release's stored jobs through real `spacer worker` processes on
Redis: the stored JSON crosses a real broker and gives what the current
message gives in-process."""
from __future__ import annotations

import pytest

from tests.legacy.runs import SAME, Runs
from tests.legacy.scenario import CURRENT, RELEASES, TASKS
from tests.workers.services import (SYSTEM_REDIS, claim_empty_redis_db, client_for, reachable,
                                    worker_env, workers)

pytestmark = [pytest.mark.integration]

if not reachable(SYSTEM_REDIS):  # pragma: no cover - CI has Redis
    pytest.skip('no Redis on 127.0.0.1:6379', allow_module_level=True)


@pytest.fixture(scope='module')
def runs(base, tmp_path_factory) -> Runs:
    import redis
    url = f'redis://127.0.0.1:6379/{claim_empty_redis_db()}'
    logs = tmp_path_factory.mktemp('worker-logs')
    try:
        with workers(('legacy', 'extract,train,classify', worker_env(url), logs,
                      '--concurrency', '1')):
            yield Runs(base, tmp_path_factory.mktemp('runs'), fleet_client=client_for(url))
    finally:
        redis.Redis.from_url(url).flushdb()


@pytest.mark.parametrize('task', TASKS)
@pytest.mark.parametrize('release', RELEASES)
def test_stored_job_through_a_real_worker(release, task, runs):
    SAME[task](runs.run(release, task, 'fleet'), runs.run(CURRENT, task, 'task'))
