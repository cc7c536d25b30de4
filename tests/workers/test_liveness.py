"""
The reaper's choices and the fresh-channel settling, on a Redis server of
this module's own, with messages taken the way a worker takes them (kombu
records each in its unacked index until it is acknowledged).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest
import redis

pytestmark = pytest.mark.integration

ME, OTHER = 'me@host', 'other@host'


_databases = itertools.count(1)


@pytest.fixture
def app(redis_server):
    """An app on a database of its own (kombu remembers the queues it has
    declared, so emptying one database under it would drop messages)."""
    from workers.app import make_app
    from workers.settings import load
    url = redis_server.url(next(_databases))
    return make_app(replace(load(), broker_url=url, result_backend=url))


@pytest.fixture
def take_one(app):
    """Queue a task message, take it unacknowledged (on a connection kept
    open, as a worker's) and age it past the reaper's threshold; returns
    (task id, delivery tag)."""
    connections = []

    def take() -> tuple[str, str]:
        queue = app.spacer_settings.queues['classify']
        result = app.send_task('spacer.classify_features', args=[{}], queue=queue,
                               exchange=queue, routing_key=queue)
        connection = app.connection_for_write()
        connections.append(connection)
        channel = connection.default_channel
        message = channel.basic_get(queue, no_ack=False)  # send_task has queued it
        assert message is not None
        redis.Redis.from_url(app.conf.broker_url).zadd(
            channel.qos.unacked_index_key, {message.delivery_tag: time.time() - 3600})
        return result.id, message.delivery_tag

    yield take
    for connection in connections:
        connection.release()


def queued(app) -> int:
    return redis.Redis.from_url(app.conf.broker_url).llen(app.spacer_settings.queues['classify'])


def unacked(app) -> int:
    return redis.Redis.from_url(app.conf.broker_url).hlen('unacked')


def test_a_message_held_by_a_dead_worker_goes_back_and_a_live_ones_stays(app, take_one):
    from workers.liveness import Liveness
    mine, other = Liveness(app, ME), Liveness(app, OTHER)
    task_id, _ = take_one()
    other.hold(task_id)
    other.beat()
    assert mine.reap() == []
    redis.Redis.from_url(app.conf.broker_url).delete(f'spacer:worker:{OTHER}')
    assert mine.reap() == [task_id]
    assert (queued(app), unacked(app)) == (1, 0)


def test_its_own_message_goes_back_only_once_the_worker_no_longer_tracks_it(
        app, take_one, monkeypatch):
    """As after a lost broker connection: the consumer forgets what it had
    prefetched, and kombu could not put it back while Redis was down."""
    from celery.worker import state

    from workers.liveness import Liveness
    mine = Liveness(app, ME)
    mine.beat()
    task_id, _ = take_one()
    mine.hold(task_id)
    monkeypatch.setitem(state.requests, task_id, object())
    assert mine.reap() == []
    monkeypatch.delitem(state.requests, task_id)
    assert mine.reap() == [task_id]
    assert (queued(app), unacked(app)) == (1, 0)


def test_a_message_delivered_anew_is_not_restored_from_an_earlier_look(
        app, take_one, monkeypatch):
    """Two reapers find the same dead worker's message. The first puts it
    back and a third worker takes it (under the same delivery tag, a new
    time); the second, acting on the tags it read before, must leave it, or
    the running task would be queued twice (seen: two workers ran one task)."""
    from workers.liveness import Liveness
    task_id, tag = take_one()
    first, second = Liveness(app, ME), Liveness(app, 'third@host')
    assert first.reap() == [task_id]
    assert (queued(app), unacked(app)) == (1, 0)
    queue = app.spacer_settings.queues['classify']
    with app.connection_for_write() as connection:
        again = connection.default_channel.basic_get(queue, no_ack=False)
        assert again.delivery_tag == tag
        monkeypatch.setattr(second.client, 'zrangebyscore', lambda *_args, **_kw: [tag])
        assert second.reap() == []
        assert (queued(app), unacked(app)) == (0, 1)


@pytest.mark.parametrize('requeue, expected', [(True, (1, 0)), (False, (0, 0))])
def test_settling_on_a_fresh_channel_requeues_or_acknowledges(app, take_one, requeue,
                                                             expected):
    from workers.liveness import settle_on_fresh_channel
    _, tag = take_one()
    assert (queued(app), unacked(app)) == (0, 1)
    settle_on_fresh_channel(app, tag, requeue)
    assert (queued(app), unacked(app)) == expected


def test_a_worker_records_the_holder_with_the_unacknowledged_message(app, take_one,
                                                                       monkeypatch):
    """The transport writes the holder in kombu's transaction: a message
    taken by a worker is never unacknowledged without one."""
    from workers import redis_transport
    monkeypatch.setattr(redis_transport, '_holder', {'name': ME, 'seconds': 600})
    task_id, tag = take_one()
    client = redis.Redis.from_url(app.conf.broker_url)
    assert client.get(f'spacer:holder:{task_id}') == ME.encode()
    assert 590 < client.ttl(f'spacer:holder:{task_id}') <= 600
    assert client.hexists('unacked', tag)
    assert client.zscore('unacked_index', tag) is not None


def test_a_process_that_holds_nothing_records_no_holder(app, take_one):
    task_id, tag = take_one()
    client = redis.Redis.from_url(app.conf.broker_url)
    assert client.get(f'spacer:holder:{task_id}') is None
    assert client.hexists('unacked', tag)


def test_a_dead_worker_is_struck_off_the_roll_by_one_reaper_and_audited_once(
        app, monkeypatch):
    from workers import liveness
    audits = []
    monkeypatch.setattr(liveness.outbox, 'audit',
                        lambda *_a, sent_before, **_kw: audits.append(sent_before) or [])
    client = redis.Redis.from_url(app.conf.broker_url)
    dead, first, second = (liveness.Liveness(app, name) for name in (OTHER, ME, 'third@host'))
    for worker in (dead, first, second):
        worker.beat()
    assert first.strike_off_dead() == [] and first.audit_if_due() == [] and audits == []
    client.delete(f'spacer:worker:{OTHER}')  # its heartbeat lapsed
    assert (first.strike_off_dead(), second.strike_off_dead()) == ([OTHER], [])
    first.audit_if_due()
    second.audit_if_due()
    first.audit_if_due()
    assert len(audits) == 1 and audits[0] < time.time() - first.dead_after / 4 + 1
    assert client.get(liveness.outbox.AUDIT_LOCK) is None  # freed for the next loss
    assert client.hgetall(liveness.ROLL).keys() == {ME.encode(), b'third@host'}
    first.stop()
    assert client.hgetall(liveness.ROLL).keys() == {b'third@host'}


def test_a_worker_that_started_again_is_not_struck_off_for_its_earlier_run(app, monkeypatch):
    """A reaper read the roll while the dead run was on it; meanwhile the
    worker started again under the same hostname (a restarted container)."""
    from workers import liveness
    client = redis.Redis.from_url(app.conf.broker_url)
    earlier, reaper = liveness.Liveness(app, OTHER), liveness.Liveness(app, ME)
    earlier.beat()
    stale = client.hgetall(liveness.ROLL)
    client.delete(f'spacer:worker:{OTHER}')
    liveness.Liveness(app, OTHER).beat()  # the new run, on the roll
    client.delete(f'spacer:worker:{OTHER}')  # and seen between its beats
    monkeypatch.setattr(reaper.client, 'hgetall', lambda _key: stale)
    assert reaper.strike_off_dead() == [] and reaper.loss_sent_before is None
    assert client.hget(liveness.ROLL, OTHER) != stale[OTHER.encode()]


def test_a_worker_starts_its_threads_when_redis_is_down_as_it_starts(app, monkeypatch):
    from workers import liveness
    worker = liveness.Liveness(app, ME)

    def refused(*_a, **_kw):
        raise redis.ConnectionError('refused')
    monkeypatch.setattr(worker.client, 'hget', refused)
    worker.start()
    try:
        assert all(thread.is_alive() for thread in worker.threads)
        assert worker.fault_seen_at is not None  # an audit follows the fault
    finally:
        worker.stop()
