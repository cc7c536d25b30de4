"""
`rediss://` end to end: a local redis-server that speaks TLS only (no
plain port), with a CA and a server certificate made by the test, a real
`spacer worker` and a producer, both given nothing but the URL
``rediss://127.0.0.1:<port>/0?ssl_cert_reqs=required&ssl_ca_certs=<ca>``.
Celery's broker and result backend and spacer's own Redis clients (job
keys and outbox of the producer, the worker's heartbeat, the commands'
reachability check) all connect through TLS and verify the server.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from urllib.parse import quote

import pytest

from tests.conftest import free_port, wait_for_port
from tests.workers.certs import tls_server_files
from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, SPACER, client_for, wait_until, worker_env, workers

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope='module')
def tls_redis(tmp_path_factory):
    """(port, CA file) of a redis-server reachable over TLS only."""
    folder = tmp_path_factory.mktemp('redis-tls')
    files = tls_server_files(folder)
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which('redis-server'), '--port', '0', '--tls-port', str(port),
         '--bind', '127.0.0.1', '--save', '', '--dir', str(folder),
         '--tls-cert-file', str(files['cert']), '--tls-key-file', str(files['key']),
         '--tls-ca-cert-file', str(files['ca']), '--tls-auth-clients', 'no'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield port, files['ca']
    proc.terminate()
    proc.wait(20)


def tls_url(port: int, ca, db: int) -> str:
    return (f'rediss://127.0.0.1:{port}/{db}?ssl_cert_reqs=required'
            f'&ssl_ca_certs={quote(str(ca))}')


def test_a_task_round_trip_over_rediss(tls_redis, tmp_path):
    port, ca = tls_redis
    broker, backend = tls_url(port, ca, 0), tls_url(port, ca, 1)
    scenario = Scenario('filesystem', str(tmp_path), n_images=2)
    scenario.put_images()
    env = worker_env(broker, backend, FILESYSTEM_ROOTS=str(tmp_path))
    with workers(('tls', 'extract', env, tmp_path)) as (worker,):
        producer = client_for(broker, backend)
        task_id = producer.submit('extract_features', scenario.extract_msg(0))
        assert producer.wait(task_id, timeout=60)['runtime'] >= 0
        assert producer.peek([task_id])[task_id].state == 'SUCCESS'

        from workers.job_state_store import redis_client
        from workers.liveness import WORKER_PREFIX
        from workers.outbox import COPIES
        redis = redis_client(broker)
        assert redis.connection_pool.connection_class.__name__ == 'SSLConnection'
        assert redis.exists(WORKER_PREFIX + worker.name)  # the heartbeat, over TLS
        wait_until(lambda: not redis.hexists(COPIES, task_id), 10, 'the outbox copy dropped')

        # The commands: reachability check, submit and wait, status.
        message = tmp_path / 'msg.json'
        message.write_text(json.dumps(scenario.extract_msg(1).serialize()))
        done = subprocess.run([str(SPACER), 'submit', str(message), '--wait', '--timeout', '60'],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert 'runtime' in done.stdout
        status = subprocess.run([str(SPACER), 'status'], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert worker.name in status.stdout
        log = worker.log_text()
    scenario.check_features(0)
    scenario.check_features(1)
    assert 'Traceback' not in log


def test_a_server_whose_certificate_the_ca_did_not_sign_is_refused(tls_redis, tmp_path):
    """Verification is on: with another CA, every client refuses the server,
    and a command says so in one line instead of connecting anyway."""
    port, _ = tls_redis
    other_ca = tls_server_files(tmp_path)['ca']
    url = tls_url(port, other_ca, 0)
    done = subprocess.run([str(SPACER), 'status'], env=worker_env(url), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert 'certificate verify failed' in done.stderr or 'CERTIFICATE_VERIFY_FAILED' in \
        done.stderr, done.stderr[-2000:]
    assert 'Traceback' not in done.stderr


def test_a_rediss_url_without_options_verifies_against_the_system_cas():
    """kombu alone would connect without checking the server (CERT_NONE)."""
    import ssl

    from workers.app import celery_config
    from workers.settings import load
    settings = replace(load(), broker_url='rediss://redis.example:6380/0', result_backend=None)
    config = celery_config(settings)
    assert config['broker_use_ssl'] == {'ssl_cert_reqs': ssl.CERT_REQUIRED}
    assert config['redis_backend_use_ssl'] == {'ssl_cert_reqs': ssl.CERT_REQUIRED}
    assert config['broker_transport'] == 'workers.redis_transport:Transport'
