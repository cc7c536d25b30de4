"""
Celery's own configuration (workers.celery_conf): a host that sets only
CELERY_BROKER_URL sends to that broker and never becomes a worker; spacer's
names win over Celery's; Django's CELERY_* settings apply, less those that
carry spacer's promises. Real Redis and a real ``spacer worker``.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from spacer import config
from tests.workers.scenario import Scenario
from tests.workers.services import ROOT, wait_until, workers, worker_env

pytestmark = [pytest.mark.integration]


@pytest.fixture
def clean_env(monkeypatch):
    for name in ('SPACER_BROKER_URL', 'SPACER_RESULT_BACKEND', 'CELERY_BROKER_URL',
                 'CELERY_RESULT_BACKEND', 'DJANGO_SETTINGS_MODULE'):
        monkeypatch.delenv(name, raising=False)
    config.reload()
    yield monkeypatch
    monkeypatch.undo()
    config.reload()


def _app():
    from workers.app import make_app
    from workers.settings import load
    return make_app(load())


def test_celery_broker_url_alone_queues_on_that_broker_and_starts_no_worker_here(
        clean_env, redis_server, tmp_path):
    """The trap: with only CELERY_BROKER_URL set, a web process used to start
    the embedded worker, which then joined the real broker as a worker."""
    from workers import embedded
    from workers.client import Client
    env = worker_env(redis_server.url())
    for name in ('SPACER_BROKER_URL', 'SPACER_RESULT_BACKEND'):
        env.pop(name)
    env['CELERY_BROKER_URL'] = redis_server.url()
    clean_env.setenv('CELERY_BROKER_URL', redis_server.url())
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    with workers(('only', 'extract', env, tmp_path)) as started:
        app = _app()
        assert not app.spacer_settings.embedded
        client = Client(app)
        assert 'runtime' in client.wait(client.submit('extract_features',
                                                      scenario.extract_msg(0)), 60)
        assert id(app) not in embedded._workers
        answering = wait_until(
            lambda: {name for reply in app.control.ping(timeout=1.0) for name in reply},
            30, 'a worker to answer the ping')
    assert answering == {started[0].name}
    assert scenario.check_features(0).feat.shape[0] == len(scenario.extract_msg(0).rowcols)


def test_celery_result_backend_keeps_the_results_apart_from_the_broker(
        clean_env, redis_server, tmp_path):
    """CELERY_BROKER_URL and CELERY_RESULT_BACKEND naming two databases: the
    messages go to one, the results to the other, on the
    producer's side and the worker's alike."""
    import redis
    from workers.client import Client
    broker, backend = redis_server.url(11), redis_server.url(12)  # this test's alone
    env = worker_env(broker)
    for name in ('SPACER_BROKER_URL', 'SPACER_RESULT_BACKEND'):
        env.pop(name)
    env.update(CELERY_BROKER_URL=broker, CELERY_RESULT_BACKEND=backend)
    clean_env.setenv('CELERY_BROKER_URL', broker)
    clean_env.setenv('CELERY_RESULT_BACKEND', backend)
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    with workers(('apart', 'extract', env, tmp_path)):
        client = Client(_app())
        task_id = client.submit('extract_features', scenario.extract_msg(0))
        assert 'runtime' in client.wait(task_id, 60)
    result_key = f'celery-task-meta-{task_id}'.encode()
    assert redis.Redis.from_url(backend).exists(result_key)
    assert not redis.Redis.from_url(broker).exists(result_key)


def test_spacer_names_win_and_an_embedded_app_never_touches_the_celery_broker(
        clean_env, redis_server, tmp_path):
    import redis

    from workers.client import Client
    spare = redis_server.url(7)
    clean_env.setenv('CELERY_BROKER_URL', spare)
    clean_env.setenv('CELERY_RESULT_BACKEND', spare)
    clean_env.setenv('SPACER_BROKER_URL', 'memory://')
    config.reload()
    app = _app()
    assert app.spacer_settings.embedded
    assert app.connection_for_write().transport_cls == 'memory'
    assert type(app.backend).__name__ == 'CacheBackend'
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    client = Client(app)
    assert 'runtime' in client.wait(client.submit('extract_features',
                                                  scenario.extract_msg(0)), 60)
    assert redis.Redis.from_url(spare).dbsize() == 0

    clean_env.setenv('SPACER_BROKER_URL', redis_server.url(8))
    config.reload()
    app = _app()
    assert app.conf.broker_write_url == redis_server.url(8)
    assert app.connection_for_write().as_uri().endswith(':%d/8' % redis_server.port)


DJANGO_HOST = r'''
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format='%(message)s')
from django.conf import settings
settings.configure(CELERY_BROKER_URL=sys.argv[1], CELERY_WORKER_SEND_TASK_EVENTS=True,
                   CELERY_BROKER_POOL_LIMIT=3, CELERY_TASK_SERIALIZER='pickle',
                   CELERY_ACCEPT_CONTENT=['pickle', 'json'])
from workers.app import app
print(json.dumps({'broker': app.conf.broker_write_url,
                  'embedded': app.spacer_settings.embedded,
                  'events': app.conf.worker_send_task_events,
                  'pool_limit': app.conf.broker_pool_limit,
                  'serializer': app.conf.task_serializer,
                  'accept': list(app.conf.accept_content)}))
'''


def test_django_celery_settings_apply_except_those_spacer_keeps(clean_env, redis_server):
    env = {k: v for k, v in worker_env(redis_server.url()).items()
           if k not in ('SPACER_BROKER_URL', 'SPACER_RESULT_BACKEND')}
    done = subprocess.run([sys.executable, '-c', DJANGO_HOST, redis_server.url(3)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {'broker': redis_server.url(3), 'embedded': False, 'events': True,
                    'pool_limit': 3, 'serializer': 'json', 'accept': ['json']}
    assert 'CELERY_TASK_SERIALIZER is ignored' in done.stderr
    assert 'CELERY_ACCEPT_CONTENT is ignored' in done.stderr
