"""A real `spacer worker` against a real Redis: its metrics endpoint and its health check."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from contextlib import ExitStack

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.deploy.project_files import ROOT
from tests.deploy.services import (hostname, redis_server, spacer_worker,
                                   wait_until, worker_env)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_DB = 11  # this module's own database on its own server


@pytest.fixture(scope='module')
def broker_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp('redis')) as port:
        yield f'redis://127.0.0.1:{port}/{REDIS_DB}'


@pytest.fixture
def client(broker_url, monkeypatch):
    """The producer side, bound to the test broker."""
    from spacer import config
    from workers.app import make_app
    from workers.client import Client
    from workers.settings import load
    monkeypatch.setattr(config, 'BROKER_URL', broker_url)
    monkeypatch.setattr(config, 'RESULT_BACKEND', broker_url)
    app = make_app(load())
    yield Client(app)
    import redis
    redis.Redis.from_url(broker_url).flushdb()


def scrape(port: int, host: str = '127.0.0.1') -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f'http://{host}:{port}/metrics', timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def settled(port: int, expected: list[tuple[str, dict, float]], timeout: float = 30) -> None:
    """Scrape until every (name, labels, value) of ``expected`` is there. A
    pool process updates its counters after it has stored the task's result,
    so a caller who saw the result may scrape a moment too early: wait for
    the values, never accept others."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        wrong = [(name, labels, want, value(samples, name, **labels))
                 for name, labels, want in expected if value(samples, name, **labels) != want]
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics still differ after {timeout} s"
                                 f" (name, labels, wanted, got): {wrong}")
        time.sleep(0.1)


def dummy_extract_message(tmp_path, image_name: str, make_image: bool) -> dict:
    from PIL import Image

    from spacer.data_classes import DataLocation
    from spacer.extractors.dummy import DummyExtractor
    from spacer.messages import ExtractFeaturesMsg
    image = tmp_path / image_name
    if make_image:
        Image.new('RGB', (64, 48), (120, 30, 200)).save(image)
    return ExtractFeaturesMsg(
        job_token=image_name, extractor=DummyExtractor(feature_dim=8),
        rowcols=[(10, 10), (20, 30)],
        image_loc=DataLocation('filesystem', str(image)),
        feature_loc=DataLocation('filesystem', str(tmp_path / f'{image_name}.feats'))).serialize()


def health_check_command() -> str:
    """The HEALTHCHECK script of Dockerfile.cpu, as the container runs it."""
    text = (ROOT / 'Dockerfile.cpu').read_text().replace('\\\n', ' ')
    args = re.search(r'HEALTHCHECK .*?CMD (\[.*?\])\n', text).group(1)
    return json.loads(args)[2]


def run_health_check(broker_url: str, timeout_s: int = 20) -> int:
    script = health_check_command().replace('--timeout 20', f'--timeout {timeout_s}')
    env = worker_env(broker_url)
    env['HOSTNAME'] = hostname()
    return subprocess.run(['sh', '-c', script], env=env, cwd=ROOT,
                          capture_output=True).returncode


def test_extract_worker_reports_queue_depths_outcomes_and_failures_by_class(
        broker_url, client, tmp_path):
    metrics_port = free_port()
    env = worker_env(broker_url, METRICS_PORT=metrics_port, DEVICE='cpu')
    log = tmp_path / 'worker.log'
    with spacer_worker(['--queues', 'extract', '--hostname', 'spacer@%h'], env, log) as proc:
        wait_until(lambda: proc.poll() is not None or _listening(metrics_port), 60,
                   'the metrics endpoint', log)
        assert proc.poll() is None, log.read_text()[-3000:]

        good = client.submit('extract_features', dummy_extract_message(tmp_path, 'a.png', True))
        bad = client.submit('extract_features', dummy_extract_message(tmp_path, 'gone.png', False))
        # Waiting in a queue no worker here consumes, one of them with a
        # priority (a Redis sub-list): the depth must count both.
        app = client.app
        for priority in (0, 6):
            app.send_task('spacer.train_classifier', args=[{}], queue='train',
                          exchange='train', routing_key='train', priority=priority)
        good_result = client.wait_result(good, timeout=60)
        bad_result = client.wait_result(bad, timeout=60)
        assert good_result.ok, good_result
        assert not bad_result.ok and bad_result.error_type

        task = 'spacer.extract_features'
        settled(metrics_port, [
            ('spacer_queue_depth', dict(queue='train'), 2),
            ('spacer_queue_depth', dict(queue='extract'), 0),
            ('spacer_tasks_total', dict(task=task, outcome='succeeded'), 1),
            ('spacer_tasks_total', dict(task=task, outcome='failed'), 1),
            ('spacer_task_failures_total', dict(task=task, error_class=bad_result.error_type), 1),
            ('spacer_task_runtime_seconds_count', dict(task=task), 2),
            ('spacer_tasks_active', dict(task=task), 0)])

        # The image's health check passes while the worker consumes...
        assert run_health_check(broker_url) == 0
    # ...and fails once it has stopped.
    assert run_health_check(broker_url, timeout_s=3) != 0


def test_prefork_children_are_counted_by_the_parents_endpoint(broker_url, client, tmp_path):
    from spacer.data_classes import DataLocation
    from spacer.messages import ClassifyFeaturesMsg
    metrics_port = free_port()
    env = worker_env(broker_url, METRICS_PORT=metrics_port)
    log = tmp_path / 'worker.log'
    with spacer_worker(['--queues', 'classify', '--concurrency', '2',
                        '--hostname', 'spacer@%h'], env, log) as proc:
        wait_until(lambda: proc.poll() is not None or _listening(metrics_port), 60,
                   'the metrics endpoint', log)
        message = lambda n: ClassifyFeaturesMsg(  # noqa: E731
            job_token=f'job{n}', feature_loc=DataLocation('filesystem', str(tmp_path / f'f{n}')),
            classifier_loc=DataLocation('filesystem', str(tmp_path / 'clf'))).serialize()
        ids = [client.submit('classify_features', message(n)) for n in range(3)]
        results = [client.wait_result(task_id, timeout=60) for task_id in ids]
        assert all(not r.ok for r in results)
        error_classes = {r.error_type for r in results}
        assert len(error_classes) == 1
        task = 'spacer.classify_features'
        settled(metrics_port, [
            ('spacer_task_failures_total', dict(task=task, error_class=error_classes.pop()), 3),
            ('spacer_tasks_total', dict(task=task, outcome='failed'), 3),
            ('spacer_queue_depth', dict(queue='classify'), 0)])


def _listening(port: int, host: str = '127.0.0.1') -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def test_fleet_figures_come_from_one_worker_and_each_says_what_it_consumes(
        broker_url, client, tmp_path):
    """Two workers: queue depths and dead letters from exactly one of them
    (sum() over the fleet is right), counting what is there, and each
    exports the queues it consumes. An endpoint binds 127.0.0.1 unless
    METRICS_ADDR says otherwise (here 127.0.0.2 for the second worker)."""
    from workers import dead_letters
    from workers.job_state_store import store_for
    store = store_for(client.app)
    for n in range(2):
        dead_letters.push(store, dead_letters.make_entry(
            f'task-{n}', 'spacer.classify_features', {}, 'OSError', 'disk failing'), 100)
    addresses = ['127.0.0.1', '127.0.0.2']
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        for n, (port, queues) in enumerate(zip(ports, ('classify', 'train,classify'))):
            settings = {'METRICS_PORT': port} if n == 0 else \
                {'METRICS_PORT': port, 'METRICS_ADDR': addresses[n]}
            env = worker_env(broker_url, **settings)
            log = tmp_path / f'worker{n}.log'
            stack.enter_context(spacer_worker(
                ['--queues', queues, '--concurrency', '1', '--hostname', f'm{n}@%h'], env, log))
            wait_until(lambda: _listening(port, addresses[n]), 60, 'the metrics endpoint', log)
        exported = [scrape(port, address) for port, address in zip(ports, addresses)]
        exporters = [n for n, samples in enumerate(exported)
                     if value(samples, 'spacer_dead_letters') is not None]
        assert len(exporters) == 1, exported
        assert all(value(s, 'spacer_queue_depth', queue='train') is None
                   for n, s in enumerate(exported) if n not in exporters)
        exporter = (ports[exporters[0]], addresses[exporters[0]])
        assert value(exported[exporters[0]], 'spacer_queue_depth', queue='train') == 0
        assert value(exported[exporters[0]], 'spacer_dead_letters') == 2
        assert value(exported[0], 'spacer_worker_consumes', queue='classify') == 1
        assert value(exported[0], 'spacer_worker_consumes', queue='train') is None
        assert value(exported[1], 'spacer_worker_consumes', queue='train') == 1
        # The same worker keeps exporting from one scrape to the next, and
        # reads the figures anew each time.
        dead_letters.clear(store)
        assert value(scrape(*exporter), 'spacer_dead_letters') == 0
        listening = _listening_addresses()
        assert [listening.get(port) for port in ports] == addresses, listening
        assert not _listening(ports[1], '127.0.0.1')


def _listening_addresses() -> dict[int, str]:
    """{port: bound IPv4 address} of the TCP sockets listening here."""
    found = {}
    for line in open('/proc/net/tcp').readlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state != '0A':  # LISTEN
            continue
        address, port = local.split(':')
        octets = [str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)]
        found[int(port, 16)] = '.'.join(octets)
    return found
