"""Shared fixtures: real local servers (moto's S3, an HTTP server) and clean state."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / 'fixtures'
PYSPACER_FIXTURES = FIXTURES / 'pyspacer' / '0.14.0'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(('127.0.0.1', port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"Nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(autouse=True, scope='session')
def _private_cache_home(tmp_path_factory):
    """ONNX exports and other per-user caches go to a session folder, not ~/.cache."""
    os.environ['XDG_CACHE_HOME'] = str(tmp_path_factory.mktemp('cache-home'))
    yield


@pytest.fixture(autouse=True)
def _fresh_memory_storage():
    from spacer.storage import clear_memory_storage, load_classifier
    clear_memory_storage()
    load_classifier.cache_clear()
    yield
    clear_memory_storage()


@pytest.fixture(scope='session')
def moto_server():
    """A real S3 API over HTTP (moto's server mode) on a free port."""
    port = free_port()
    exe = shutil.which('moto_server', path=str(Path(sys.executable).parent))
    proc = subprocess.Popen([exe, '-H', '127.0.0.1', '-p', str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f'http://127.0.0.1:{port}'
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_settings(moto_server, monkeypatch):
    """spacer configured against the moto server, with a fresh bucket."""
    import uuid

    from spacer import config
    env = {'S3_ENDPOINT_URL': moto_server, 'AWS_ACCESS_KEY_ID': 'testing',
           'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_REGION': 'us-east-1'}
    for name, value in env.items():
        monkeypatch.setenv('SPACER_' + name, value)
        monkeypatch.setattr(config, name, value)
    from spacer.storage.s3 import s3_client
    bucket = f'test-{uuid.uuid4().hex[:12]}'
    s3_client().create_bucket(Bucket=bucket)
    yield bucket


@pytest.fixture
def tmp_cache_dir(tmp_path, monkeypatch):
    from spacer import config
    path = tmp_path / 'extractors-cache'
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', str(path))
    return path
