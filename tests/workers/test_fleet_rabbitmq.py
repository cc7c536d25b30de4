"""The end-to-end run with RabbitMQ as the broker (results in Redis, or sent back
through RabbitMQ: the RPC backend); skipped without one."""
from __future__ import annotations

import pytest

from tests.workers.scenario import Scenario, run_all_five
from tests.workers.services import (RABBITMQ, SYSTEM_REDIS, claim_empty_redis_db, client_for,
                                    reachable, worker_env, workers)

pytestmark = [pytest.mark.integration]

AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'


def _rabbitmq_answers() -> bool:
    if not reachable(RABBITMQ):
        return False
    from kombu import Connection
    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


if not (reachable(SYSTEM_REDIS) and _rabbitmq_answers()):
    pytest.skip('needs RabbitMQ (guest/guest) on 127.0.0.1:5672 and Redis on 6379',
                allow_module_level=True)


@pytest.fixture(scope='module')
def client(tmp_path_factory):
    import redis
    db = claim_empty_redis_db()
    backend = f'redis://127.0.0.1:6379/{db}'  # empty, and marked as ours
    token = tmp_path_factory.mktemp('x').name[-6:]
    # Queue names of our own, so nothing else on this RabbitMQ is touched.
    names = {kind: f'spacer-test-{token}-{kind}' for kind in ('extract', 'train', 'classify')}
    env = worker_env(AMQP_URL, backend, QUEUE_EXTRACT=names['extract'],
                     QUEUE_TRAIN=names['train'], QUEUE_CLASSIFY=names['classify'])
    logs = tmp_path_factory.mktemp('worker-logs')
    with workers(('rabbit-extract', names['extract'], env, logs),
                 ('rabbit-cpu', f"{names['train']},{names['classify']}", env, logs, '-c', '1')):
        client = client_for(AMQP_URL, backend, queues=names)
        yield client
        with client.app.connection_for_write() as conn:
            for name in names.values():
                conn.default_channel.queue_delete(name)
    redis.Redis.from_url(backend).flushdb()


def test_all_five_tasks_through_rabbitmq(client, tmp_path):
    run_all_five(client, Scenario('filesystem', str(tmp_path)))


def test_queue_depths_from_rabbitmq(client):
    from workers.queues import queue_depths
    depths = queue_depths(client.app)
    assert set(depths) == set(client.settings.queues.values())
    assert all(d == 0 for d in depths.values())


def test_waits_through_rabbitmq_with_rpc_results(tmp_path):
    """RPC sends a result to the waiting producer alone: the wait keeps
    the end it received (there is nothing stored to read back)."""
    token = tmp_path.name[-6:]
    names = {kind: f'spacer-test-{token}-rpc-{kind}' for kind in ('extract', 'train', 'classify')}
    env = worker_env(AMQP_URL, 'rpc://', QUEUE_EXTRACT=names['extract'],
                     QUEUE_TRAIN=names['train'], QUEUE_CLASSIFY=names['classify'])
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    with workers(('rabbit-rpc', ','.join(names.values()), env, tmp_path, '-c', '1')):
        client = client_for(AMQP_URL, 'rpc://', queues=names)
        try:
            done = client.wait_result(client.submit('extract_features', scenario.extract_msg(0)),
                                      60)
            assert done.state == 'SUCCESS' and 'runtime' in done.value
            bad = scenario.extract_msg(0)
            bad.job_token, bad.image_loc = 'missing-image', scenario.loc('no-such-image.png')
            failed = client.wait_result(client.submit('extract_features', bad), 60)
            assert (failed.state, failed.error_type) == ('FAILURE', 'FileNotFoundError')
        finally:
            with client.app.connection_for_write() as conn:
                for name in names.values():
                    conn.default_channel.queue_delete(name)
