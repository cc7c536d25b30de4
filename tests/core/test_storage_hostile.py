"""Storage fed hostile locations: traversing cache keys, FIFOs, devices, malformed
URLs, S3 names boto3 refuses. Each must fail fast with a clear input error, and
nothing may be read or written outside where it belongs."""
import builtins
import http.server
import io
import os
import threading
from io import BytesIO

import pytest

from spacer.data_classes import DataLocation
from spacer.exceptions import MessageError, URLDownloadError
from spacer.storage import FileSystemStorage, S3Storage, URLStorage, storage_factory
from spacer.storage.cache import cached_path
from workers.failure_kinds import Failure, classify


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the request path, and counts the requests."""
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        body = b'REMOTE:' + self.path.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope='module')
def echo_server():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def _tree(root) -> set:
    return {os.path.relpath(os.path.join(d, f), root)
            for d, _, files in os.walk(root) for f in files}


# -- 1. the training feature cache ------------------------------------------

def _traversing_url(base: str, name: str) -> str:
    # The old cache joined the key under the cache folder: <cache>/http:/<host>/x/
    # and four '..' land in the cache's parent, the test's tmp_path.
    return f'{base}/x/../../../../victim/{name}'


def test_cache_key_cannot_write_outside_the_cache(echo_server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    (tmp_path / 'victim').mkdir()
    url = _traversing_url(echo_server, 'evil.sh')

    data = storage_factory('url').load(url, str(cache)).read()

    assert data.startswith(b'REMOTE:')
    assert not (tmp_path / 'victim' / 'evil.sh').exists()
    outside = {p for p in _tree(tmp_path) if not p.startswith('cache' + os.sep)}
    assert outside == set()
    # The copy sits directly in the cache folder, named by a digest.
    assert [p.parent for p in cache.iterdir()] == [cache]


def test_cache_key_cannot_alias_a_local_file(echo_server, tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    victim = tmp_path / 'victim' / 'f3.npz'
    victim.parent.mkdir()
    victim.write_bytes(b'VICTIM ORIGINAL CONTENT')

    data = storage_factory('url').load(_traversing_url(echo_server, 'f3.npz'), str(cache))

    assert data.read().startswith(b'REMOTE:')  # downloaded, not the local file
    assert victim.read_bytes() == b'VICTIM ORIGINAL CONTENT'


def test_cache_fetches_each_location_once(echo_server, tmp_path):
    storage = URLStorage()
    a, b = f'{echo_server}/one/a.npz', f'{echo_server}/two/a.npz'
    before = len(_EchoHandler.requests)
    for _ in range(3):
        assert storage.load(a, str(tmp_path)).read() == b'REMOTE:/one/a.npz'
        assert storage.load(b, str(tmp_path)).read() == b'REMOTE:/two/a.npz'
    assert len(_EchoHandler.requests) - before == 2
    assert sorted(p.name.split('-', 1)[1] for p in tmp_path.iterdir()) == ['a.npz', 'a.npz']


def test_cache_name_of_a_huge_key_fits_a_file_name(echo_server, tmp_path):
    url = f'{echo_server}/' + 'n' * 1000 + '.npz'
    assert URLStorage().load(url, str(tmp_path)).read().startswith(b'REMOTE:')
    (copy,) = tmp_path.iterdir()
    assert len(copy.name) < 200 and copy.name.endswith('.npz')


# -- 2. filesystem keys that are not regular files -------------------------

@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / 'pipe'
    os.mkfifo(fifo)
    with pytest.raises(MessageError, match=r"pipe' is a FIFO .*not a regular file") as info:
        FileSystemStorage().load(str(fifo))
    assert classify(info.value) is Failure.INPUT
    with pytest.raises(MessageError, match='FIFO'):
        cached_path(DataLocation('filesystem', str(fifo)))


@pytest.mark.timeout(10)
def test_store_does_not_replace_a_fifo(tmp_path):
    fifo = tmp_path / 'pipe'
    os.mkfifo(fifo)
    with pytest.raises(MessageError, match='not a regular file'):
        FileSystemStorage().store(str(fifo), BytesIO(b'x'))
    assert not fifo.is_file()


@pytest.mark.timeout(10)
@pytest.mark.parametrize('device', ['/dev/zero', '/dev/urandom'])
def test_device_is_refused_before_opening(device, monkeypatch):
    if not os.path.exists(device):
        pytest.skip(f'{device} is missing here')

    def no_open(path, *args, **kwargs):
        # Reading the device would exhaust memory: fail the test instead.
        raise AssertionError(f'{path} was opened')

    for module in (os, io, builtins):
        monkeypatch.setattr(module, 'open', no_open)
    with pytest.raises(MessageError, match=f"'{device}' is a character device"):
        FileSystemStorage().load(device)


def test_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)) as info:
        FileSystemStorage().load(str(tmp_path))
    assert classify(info.value) is Failure.INPUT


def test_symlink_to_a_regular_file_still_loads(tmp_path):
    target = tmp_path / 'real.bin'
    target.write_bytes(b'content')
    link = tmp_path / 'link.bin'
    link.symlink_to(target)
    assert FileSystemStorage().load(str(link)).read() == b'content'


def test_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.bin'):
        FileSystemStorage().load(str(tmp_path / 'nope.bin'))


def test_symlink_loop_is_an_input_error(tmp_path):
    loop = tmp_path / 'loop'
    loop.symlink_to(loop)
    with pytest.raises(MessageError, match='symbolic links'):
        FileSystemStorage().load(str(loop))


def test_null_byte_in_path_is_named(tmp_path):
    with pytest.raises(MessageError, match=r"'bad\\x00name' is not a valid path"):
        FileSystemStorage().load('bad\x00name')


# -- 3. malformed URLs ------------------------------------------------------

def test_malformed_url_names_the_url():
    loc = DataLocation('url', 'http://[::1/x')
    with pytest.raises(URLDownloadError, match=r"URL 'http://\[::1/x' is not a valid URL") as info:
        storage_factory('url').load(loc.key)
    assert 'Invalid IPv6 URL' in str(info.value)
    assert classify(info.value) is Failure.INPUT
    assert URLStorage().exists(loc.key) is False


# -- 4. names too long ------------------------------------------------------

@pytest.mark.parametrize('make', [
    lambda root: str(root / ('a' * 300)),             # one component over NAME_MAX
    lambda root: str(root) + '/b' * 2500 + '.npz'  ,   # the whole path over PATH_MAX
])
def test_name_too_long_is_an_input_error(tmp_path, make):
    path = make(tmp_path)
    for action in (lambda: FileSystemStorage().load(path),
                   lambda: FileSystemStorage().store(path, BytesIO(b'x'))):
        with pytest.raises(MessageError, match='is too long') as info:
            action()
        assert classify(info.value) is Failure.INPUT
        assert len(str(info.value)) < 500  # a huge path is shortened
    assert FileSystemStorage().exists(path) is False


# -- S3 locations boto3 would refuse (no server needed) ----------------------

@pytest.mark.parametrize('bucket', ['a/b', '', 'sp ace', 'x' * 256, 'b\u00e9'])
def test_invalid_s3_bucket_is_named(bucket):
    with pytest.raises(MessageError) as info:
        storage_factory('s3', bucket) if bucket else S3Storage(bucket)
    assert classify(info.value) is Failure.INPUT
    assert repr(bucket)[:40] in str(info.value) or 'bucket_name' in str(info.value)


@pytest.mark.parametrize('bucket', [
    'coralnet-data', 'Legacy_Bucket.1', 'arn:aws:s3:us-east-1:123456789012:accesspoint/ap-1'])
def test_valid_s3_bucket_names_are_accepted(bucket):
    assert S3Storage(bucket).bucket_name == bucket


def test_empty_s3_key_is_named_before_any_request():
    storage = S3Storage('my-bucket')
    for action in (lambda: storage.load(''), lambda: storage.exists(''),
                   lambda: storage.store('', BytesIO(b'x')), lambda: storage.delete('')):
        with pytest.raises(MessageError, match=r"S3 key '' in bucket 'my-bucket'") as info:
            action()
        assert classify(info.value) is Failure.INPUT


def test_memory_storage_missing_key_is_named():
    with pytest.raises(KeyError, match='no key') as info:
        storage_factory('memory').load('../../etc/passwd')
    assert classify(info.value) is Failure.INPUT


@pytest.mark.timeout(10)
def test_an_extractor_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    from spacer.extractors.data_files import verified_digest
    fifo = tmp_path / 'weights.pt'
    os.mkfifo(fifo)
    with pytest.raises(MessageError, match='not a regular file'):
        verified_digest('weights', DataLocation('filesystem', str(fifo)), None)
