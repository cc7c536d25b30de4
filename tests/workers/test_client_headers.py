"""
What a message sent by workers.client carries for Flower and task events:
its arguments shown as the message's JSON (cut at Celery's limit), on a
real Redis with no worker (the message stays queued to be read).
"""
from __future__ import annotations

import json

import pytest
import redis

from tests.workers.services import client_for

pytestmark = [pytest.mark.integration]


def _queued_headers(raw, queue: str) -> dict:
    return json.loads(raw.lpop(queue))['headers']


def test_the_arguments_are_shown_as_the_messages_json(redis_server):
    url = redis_server.url(7)
    client, raw = client_for(url), redis.Redis.from_url(url)
    queue = client.settings.queues['classify']
    message = {'job_token': 'shown', 'feature_loc': {'storage_type': 'memory', 'key': 'f'},
               'classifier_loc': {'storage_type': 'memory', 'key': 'c'}}
    try:
        task_id = client.submit('classify_features', message)
        headers = _queued_headers(raw, queue)
        assert headers['id'] == task_id
        assert json.loads(headers['argsrepr']) == [message]

        long = dict(message, job_token='x' * 5000)
        client.submit('classify_features', long)
        shown = _queued_headers(raw, queue)['argsrepr']
        assert len(shown) == client.app.amqp.argsrepr_maxsize and shown.endswith('...')
        assert shown.startswith('[{"job_token": "xxx')
    finally:
        raw.flushdb()
