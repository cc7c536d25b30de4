"""Storage backends against real servers: moto's S3 over HTTP, a local HTTP server."""
import http.server
import threading
import time
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from spacer.data_classes import DataLocation
from spacer.exceptions import DataLimitError, ImageDecodeError, MessageError, URLDownloadError
from spacer.storage import (
    FileSystemStorage, URLStorage, load_image, storage_factory, store_image)
from spacer.storage.cache import cached_file_path, cached_path


def test_filesystem_round_trip_and_atomic_write(tmp_path, monkeypatch):
    storage = FileSystemStorage()
    path = str(tmp_path / 'deep' / 'dir' / 'f.bin')
    storage.store(path, BytesIO(b'old'))
    assert storage.exists(path) and storage.load(path).read() == b'old'

    # A write that dies half way leaves the old content and no stray file.
    import os
    real_replace = os.replace

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        storage.store(path, BytesIO(b'new content'))
    monkeypatch.setattr(os, 'replace', real_replace)
    assert storage.load(path).read() == b'old'
    assert os.listdir(os.path.dirname(path)) == ['f.bin']
    storage.delete(path)
    assert not storage.exists(path)


def test_memory_storage_is_shared_and_clearable():
    from spacer.storage import clear_memory_storage
    storage_factory('memory').store('k', BytesIO(b'v'))
    assert storage_factory('memory').load('k').read() == b'v'
    clear_memory_storage()
    assert not storage_factory('memory').exists('k')
    with pytest.raises(KeyError, match="'k'"):
        storage_factory('memory').load('k')


def test_factory_rejects_bad_types():
    with pytest.raises(MessageError, match="Unknown storage_type 'ftp'"):
        storage_factory('ftp')
    with pytest.raises(MessageError, match='bucket_name'):
        storage_factory('s3')


def test_s3_over_http(s3_settings):
    storage = storage_factory('s3', s3_settings)
    storage.store('a/b.bin', BytesIO(b'payload'))
    assert storage.exists('a/b.bin')
    assert storage.load('a/b.bin').read() == b'payload'
    assert not storage.exists('missing')
    with pytest.raises(FileNotFoundError, match='missing'):
        storage.load('missing')
    storage.delete('a/b.bin')
    assert not storage.exists('a/b.bin')


def test_s3_image_and_features(s3_settings):
    from spacer.data_classes import ImageFeatures
    loc = DataLocation('s3', 'img.jpg', s3_settings)
    store_image(loc, Image.new('RGB', (40, 30), 'red'))
    assert load_image(loc).size == (40, 30)
    floc = DataLocation('s3', 'x.featurevector', s3_settings)
    ImageFeatures.example().store(floc)
    assert ImageFeatures.load(floc) == ImageFeatures.example()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        route = self.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        kind, body = route
        if kind == 'slow':
            time.sleep(body)
            body = b'late'
        if kind == 'forever':  # no length, 1 MiB after 1 MiB until the client leaves
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b'f' * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                return
        if kind == 'trickle':  # one byte every 0.2 s: each read is quick
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as intended
            return
        self.send_response(200)
        length = len(body) + (100 if kind == 'truncated' else 0)
        self.send_header('Content-Length', str(length))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading (size limit, timeout): as intended


@pytest.fixture(scope='module')
def http_server():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}', _Handler.routes
    server.shutdown()


def test_url_download(http_server):
    base, routes = http_server
    routes['/ok'] = ('ok', b'hello')
    assert URLStorage().load(base + '/ok').read() == b'hello'
    assert URLStorage().exists(base + '/ok')
    assert not URLStorage().exists(base + '/nope')


@pytest.mark.parametrize('path, kind, body, fragment', [
    ('/nope', None, None, 'HTTPError'),
    ('/truncated', 'truncated', b'x' * 50, "Couldn't read the full response"),
    ('/slow', 'slow', 2, 'timed out'),
    ('/big', 'ok', b'y' * 2000, 'more than the limit of 1000'),
])
def test_url_failures(http_server, path, kind, body, fragment):
    base, routes = http_server
    if kind:
        routes[path] = (kind, body)
    storage = URLStorage(timeout=0.5, max_bytes=1000)
    with pytest.raises(URLDownloadError, match=fragment) as info:
        storage.load(base + path)
    assert info.value.original_error is not None


@pytest.mark.parametrize('url', ['file:///etc/passwd', 'ftp://example.com/x', 'gopher://h/x'])
def test_url_refuses_other_schemes(url):
    with pytest.raises(URLDownloadError, match='only http and https'):
        URLStorage().load(url)
    with pytest.raises(TypeError):
        URLStorage().store(url, BytesIO(b''))


def _png_bytes(size=(64, 48)) -> bytes:
    out = BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (*size[::-1], 3), np.uint8)).save(
        out, 'PNG')
    return out.getvalue()


@pytest.mark.parametrize('data, error, fragment', [
    (b'this is not an image', ImageDecodeError, 'could not be read as an image'),
    (_png_bytes()[:200], ImageDecodeError, 'corrupt or truncated'),
    (b'\x89PNG\r\n\x1a\n' + b'\x00' * 40, ImageDecodeError, 'img.bin'),
])
def test_bad_images(data, error, fragment):
    storage_factory('memory').store('img.bin', BytesIO(data))
    with pytest.raises(error, match=fragment):
        load_image(DataLocation('memory', 'img.bin'))


def test_pixel_limit(monkeypatch):
    from spacer import config
    monkeypatch.setattr(config, 'MAX_IMAGE_PIXELS', 1000)
    storage_factory('memory').store('big.png', BytesIO(_png_bytes((50, 50))))
    with pytest.raises(DataLimitError, match=r'Image big.png has 50 x 50 = 2500 total pixels'):
        load_image(DataLocation('memory', 'big.png'))


def test_extractor_file_cache_keys_do_not_collide(tmp_cache_dir, s3_settings):
    a = DataLocation('s3', 'one/weights.pt', s3_settings)
    b = DataLocation('s3', 'two/weights.pt', s3_settings)
    storage_factory('s3', s3_settings).store(a.key, BytesIO(b'AAA'))
    storage_factory('s3', s3_settings).store(b.key, BytesIO(b'BBB'))
    path_a, fetched_a = cached_path(a)
    path_b, fetched_b = cached_path(b)
    assert fetched_a and fetched_b and path_a != path_b
    assert path_a.read_bytes() == b'AAA' and path_b.read_bytes() == b'BBB'
    assert cached_path(a) == (path_a, False)
    assert cached_file_path(a).name.endswith('weights.pt')


def test_a_trickling_server_cannot_outlast_the_deadline(http_server):
    """Every read returns well inside the per-read timeout; the total
    deadline still ends the download, as a timeout (retried as transient)."""
    from workers.failure_kinds import Failure, classify
    base, routes = http_server
    routes['/trickle'] = ('trickle', b'z' * 100)
    storage = URLStorage(timeout=5, max_bytes=1000, deadline=1)
    started = time.monotonic()
    with pytest.raises(URLDownloadError, match='URL_DEADLINE') as info:
        storage.load(base + '/trickle')
    assert time.monotonic() - started < 3
    assert isinstance(info.value.original_error, TimeoutError)
    assert classify(info.value) == Failure.TRANSIENT


def test_a_body_without_end_costs_disk_up_to_the_cap_not_memory(http_server):
    """The body streams to a temporary file: 64 MiB arrive before the cap
    refuses them, while Python's allocations stay a few MiB."""
    import tracemalloc
    base, routes = http_server
    routes['/forever'] = ('forever', None)
    storage = URLStorage(timeout=5, max_bytes=64 << 20, deadline=60)
    tracemalloc.start()
    try:
        with pytest.raises(URLDownloadError, match='more than the limit of 67108864'):
            storage.load(base + '/forever')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_download_arrives_whole_through_its_temporary_file(http_server):
    base, routes = http_server
    body = np.random.RandomState(1).bytes(3 << 20)
    routes['/whole'] = ('ok', body)
    assert URLStorage(max_bytes=4 << 20).load(base + '/whole').getvalue() == body
