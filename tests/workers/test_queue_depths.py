"""Queue depth counts kombu's priority sub-lists."""
from __future__ import annotations

import fakeredis

from workers.queues import queue_depths, redis_queue_keys


def test_depth_sums_priority_lists():
    client = fakeredis.FakeRedis()
    client.rpush('extract', 'a', 'b')
    client.rpush('extract\x06\x163', 'c')
    client.rpush('extract\x06\x169', 'd', 'e', 'f')
    client.rpush('train', 'g')
    # Keys of other queues and unrelated lists do not count.
    client.rpush('extractor', 'x')
    client.rpush('unacked_index_like', 'y')
    depths = queue_depths(client, ['extract', 'train', 'classify'])
    assert depths == {'extract': 6, 'train': 1, 'classify': 0}


def test_queue_keys_match_kombu():
    from kombu.transport.redis import PRIORITY_STEPS, Channel
    expected = [q if p == 0 else f"q{Channel.sep}{p}" for p, q in
                zip(PRIORITY_STEPS, ['q'] * len(PRIORITY_STEPS))]
    assert redis_queue_keys('q') == expected


def test_default_queue_names_come_from_settings(monkeypatch):
    monkeypatch.setenv('SPACER_QUEUE_TRAIN', 'cpu-long')
    from spacer import config
    monkeypatch.setattr(config, 'QUEUE_TRAIN', 'cpu-long')
    client = fakeredis.FakeRedis()
    client.rpush('cpu-long', 'a')
    assert queue_depths(client)['cpu-long'] == 1
