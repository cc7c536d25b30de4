"""
A message cannot turn a worker's URL downloads against its network: a real
``spacer worker`` (started the documented way, default settings) refuses a
URL on 127.0.0.1 before connecting, and a listener there that records every
accepted connection records none; with URL_ALLOWED_NETWORKS=127.0.0.1 the
same task succeeds. Only 127.0.0.1 is ever connected to.
"""
from __future__ import annotations

import socket
import threading

import pytest

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.extractors.dummy import DummyExtractor
from spacer.messages import ExtractFeaturesMsg
from spacer.storage.url_guard import URLRefusedError
from tests.workers.scenario import png_bytes
from tests.workers.services import CeleryWorker, Worker, client_for, worker_env, workers
from workers.failure_kinds import Failure, classify

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Listener:
    """A plain TCP server on 127.0.0.1 that records each accepted connection
    and answers it with a PNG over HTTP."""

    def __init__(self):
        self.body = png_bytes(3, 40, 50)
        self.accepted: list[tuple[str, int]] = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}/photo.png'
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(peer)
            with conn:
                conn.settimeout(5)
                request = b''
                while b'\r\n\r\n' not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n'
                             b'Content-Length: %d\r\nConnection: close\r\n\r\n'
                             % len(self.body) + self.body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def message(name: str, image_loc: DataLocation, tmp_path) -> ExtractFeaturesMsg:
    return ExtractFeaturesMsg(
        job_token=name, extractor=DummyExtractor(feature_dim=8), rowcols=[(5, 5)],
        image_loc=image_loc,
        feature_loc=DataLocation('filesystem', str(tmp_path / f'{name}.featurevector')))


def test_a_refusal_is_bad_input_not_retried():
    error = URLRefusedError('refused', ValueError('address 10.0.0.1 is not allowed'))
    assert classify(error) is Failure.INPUT


@pytest.mark.parametrize('kind', [Worker, CeleryWorker], ids=['spacer-worker', 'celery-A'])
def test_a_worker_refuses_a_loopback_url_by_default_and_connects_nowhere(
        redis_server, tmp_path, listener, kind):
    env = worker_env(redis_server.url())
    client = client_for(redis_server.url())
    image = tmp_path / 'local.png'
    image.write_bytes(listener.body)
    with workers(('guarded', 'extract', env, tmp_path, '-c', '1'), kind=kind):
        refused = client.wait_result(client.submit(
            'extract_features', message('refused', DataLocation('url', listener.url), tmp_path)),
            60)
        # The worker serves on.
        client.wait(client.submit('extract_features', message(
            'local', DataLocation('filesystem', str(image)), tmp_path)), 60)
    assert refused.state == 'FAILURE', refused
    assert refused.error_type in ('URLRefusedError', 'URLDownloadError'), refused
    assert '127.0.0.1' in refused.error_message
    assert 'URL_ALLOWED_NETWORKS' in refused.error_message
    assert listener.accepted == []
    assert not (tmp_path / 'refused.featurevector').exists()
    assert (tmp_path / 'local.featurevector').exists()


def test_the_same_task_succeeds_when_the_operator_allows_the_address(
        redis_server, tmp_path, listener):
    env = worker_env(redis_server.url(), URL_ALLOWED_NETWORKS='127.0.0.1')
    client = client_for(redis_server.url())
    with workers(('allowing', 'extract', env, tmp_path, '-c', '1')):
        client.wait(client.submit(
            'extract_features', message('allowed', DataLocation('url', listener.url), tmp_path)),
            60)
    assert len(listener.accepted) == 1
    assert len(ImageFeatures.load(DataLocation(
        'filesystem', str(tmp_path / 'allowed.featurevector'))).point_features) == 1
