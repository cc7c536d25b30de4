"""A training's epochs, polled through real Redis and a `spacer worker` process."""
from __future__ import annotations

import pytest

from tests.workers.progress_checks import (
    check_job_progress, check_progress, watch_training)
from tests.workers.services import (SYSTEM_REDIS, claim_empty_redis_db, client_for,
                                    reachable, worker_env, workers)
from tests.workers.slow_classes import CLASS_PATHS

pytestmark = [pytest.mark.integration]

if not reachable(SYSTEM_REDIS):  # pragma: no cover - CI has Redis
    pytest.skip('no Redis on 127.0.0.1:6379', allow_module_level=True)


@pytest.fixture(scope='module')
def redis_url():
    import redis
    db = claim_empty_redis_db()
    url = f'redis://127.0.0.1:6379/{db}'
    yield url
    redis.Redis.from_url(url).flushdb()


def test_trainings_on_a_worker_process_report_their_epochs(redis_url, tmp_path_factory,
                                                           tmp_path):
    env = worker_env(redis_url, EXTRA_CLASS_PATHS=CLASS_PATHS)
    logs = tmp_path_factory.mktemp('worker-logs')
    with workers(('all', 'extract,train,classify', env, logs, '--concurrency', '1')) \
            as started:
        client = client_for(redis_url)
        seen, returned = watch_training(client, tmp_path)
        check_progress(seen, returned)
        assert len(seen) >= 2  # 8 epochs of 0.4 s, polled every 0.05 s

        # The same for a process_job of two trainings, task by task.
        seen, returned = watch_training(client, tmp_path / 'job', epoch_delay=0.3,
                                        job_of=2)
        check_job_progress(seen, returned, tasks=2)
        assert 'Traceback' not in started[0].log_text()
