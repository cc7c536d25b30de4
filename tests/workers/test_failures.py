"""Sorting exceptions into input errors, transient faults and the rest."""
from __future__ import annotations

import errno
import os
import socket
from urllib.error import HTTPError, URLError

import pytest

from spacer.exceptions import (DataLimitError, HashMismatchError, ImageDecodeError,
                               MessageError, RowColumnInvalidError, URLDownloadError)
from workers.failure_kinds import Failure, classify
from workers.backoff import backoff_delay, should_retry


def url_error(cause):
    return URLDownloadError("Failed to download from the URL 'http://x/y.jpg'.", cause)


@pytest.mark.parametrize('exc', [
    ImageDecodeError('not an image'), DataLimitError('too big'), HashMismatchError('sha'),
    RowColumnInvalidError('out of range'), MessageError('missing key'),
    FileNotFoundError('no such file'), KeyError('no key'), ValueError('bad'),
    TypeError('bad'), AssertionError('rowcols empty'), PermissionError('denied'),
    url_error(HTTPError('http://x', 404, 'Not Found', {}, None)),
    url_error(ValueError('unknown url type')),
])
def test_input_errors(exc):
    assert classify(exc) == Failure.INPUT


def _botocore_errors():
    import botocore.exceptions as bex
    return [bex.EndpointConnectionError(endpoint_url='http://s3'),
            bex.ConnectTimeoutError(endpoint_url='http://s3'),
            bex.ReadTimeoutError(endpoint_url='http://s3'),
            bex.ConnectionClosedError(endpoint_url='http://s3')]


def _broker_errors():
    import kombu.exceptions
    import redis.exceptions
    return [redis.exceptions.ConnectionError('Connection refused'),
            redis.exceptions.TimeoutError('Timeout reading'),
            kombu.exceptions.OperationalError('broker gone')]


@pytest.mark.parametrize('exc', [
    ConnectionResetError('reset'), TimeoutError('timed out'), socket.timeout('timed out'),
    url_error(TimeoutError('The read operation timed out')),
    url_error(URLError(socket.timeout('timed out'))),
    url_error(URLError(ConnectionRefusedError('refused'))),
    url_error(HTTPError('http://x', 503, 'Service Unavailable', {}, None)),
    *_botocore_errors(), *_broker_errors(),
    # Output storage an operator repairs: read-only, full, over quota, failing.
    *[OSError(code, os.strerror(code), '/data/features/x.featurevector')
      for code in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO)],
])
def test_transient_faults(exc):
    assert classify(exc) == Failure.TRANSIENT


def test_s3_client_errors_by_code():
    from botocore.exceptions import ClientError
    slow = ClientError({'Error': {'Code': 'SlowDown'},
                        'ResponseMetadata': {'HTTPStatusCode': 503}}, 'GetObject')
    denied = ClientError({'Error': {'Code': 'AccessDenied'},
                          'ResponseMetadata': {'HTTPStatusCode': 403}}, 'GetObject')
    assert classify(slow) == Failure.TRANSIENT
    assert classify(denied) == Failure.INPUT


@pytest.mark.parametrize('exc', [RuntimeError('CUDA error'), MemoryError(), ZeroDivisionError()])
def test_other_errors_are_internal(exc):
    assert classify(exc) == Failure.INTERNAL


def test_backoff_grows_and_is_capped():
    delays = [backoff_delay(n, base=2, cap=30, jitter=False) for n in range(7)]
    assert delays == [2, 4, 8, 16, 30, 30, 30]
    for n in range(7):
        jittered = backoff_delay(n, base=2, cap=30)
        assert delays[n] / 2 <= jittered <= delays[n]
    with pytest.raises(ValueError, match='retries'):
        backoff_delay(-1, 2, 30)


def test_retry_budget():
    assert should_retry(0, 3) and should_retry(2, 3)
    assert not should_retry(3, 3)
    assert not should_retry(0, 0)


def test_broker_unavailable_names_the_url_without_its_password():
    from workers.errors import BrokerUnavailableError
    error = BrokerUnavailableError('redis://:s3cret@redis.internal:6379/0',
                                   ConnectionRefusedError('refused'))
    assert isinstance(error, ConnectionError)
    assert 's3cret' not in str(error) and 'redis.internal:6379/0' in str(error)
    assert error.url == 'redis://:**@redis.internal:6379/0'


def test_a_retry_the_broker_cannot_queue_puts_the_message_back(monkeypatch):
    """Celery drops a message whose retry it cannot publish (Reject, no
    requeue); ours goes back to its queue to be delivered again."""
    from celery import Task
    from celery.exceptions import Reject
    from kombu.exceptions import OperationalError
    from workers import celery_tasks as worker_tasks

    def broker_down(self, *args, **kwargs):
        raise Reject(OperationalError('Error 111 connecting to redis'), requeue=False)

    monkeypatch.setattr(Task, 'retry', broker_down)
    task = worker_tasks.extract_features
    task.push_request(id='t1', retries=0)
    try:
        with pytest.raises(Reject) as info:
            task._retry(ConnectionError('Redis restarting'), 0)
    finally:
        task.pop_request()
    assert info.value.requeue is True
    assert isinstance(info.value.reason, OperationalError)
