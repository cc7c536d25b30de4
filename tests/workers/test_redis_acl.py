"""
The compose stack's Redis users (compose/redis-users.acl), without Docker:
a local redis-server started by compose/redis-start.sh itself, as the redis
service starts it, with that very file. Each role's user does its own work
end to end (a producer submits and reads results through workers.client, a
real `spacer worker` with the worker user runs the task, Flower's user
inspects the workers, hears their events and reads queue lengths, KEDA's
reads queue lengths), and the producer's, Flower's and KEDA's users cannot
run admin or destructive commands.
"""
from __future__ import annotations

import asyncio
import subprocess
import threading

import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from tests.workers.scenario import Scenario
from tests.workers.acl_users import ACL_TEMPLATE, PASSWORDS, START_SCRIPT, as_role, denied_log, url
from tests.workers.services import client_for, wait_until, worker_env, workers

pytestmark = [pytest.mark.integration]


def test_the_start_script_refuses_a_missing_password(tmp_path):
    env = {'PATH': '/usr/bin:/bin', 'ACL_TEMPLATE': str(ACL_TEMPLATE),
           'ACL_FILE': str(tmp_path / 'users.acl'),
           **{f'REDIS_{role.upper()}_PASSWORD': pw for role, pw in PASSWORDS.items()}}
    env['REDIS_FLOWER_PASSWORD'] = ''
    done = subprocess.run(['sh', str(START_SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert 'REDIS_FLOWER_PASSWORD' in done.stderr
    assert not (tmp_path / 'users.acl').exists()


def test_no_one_gets_in_without_a_user(acl_redis):
    from redis.exceptions import AuthenticationError
    with pytest.raises((ResponseError, AuthenticationError)):  # the default user is off
        redis.Redis(host='127.0.0.1', port=acl_redis).ping()


DESTRUCTIVE = [
    ('FLUSHALL',), ('FLUSHDB',), ('CONFIG', 'GET', 'requirepass'), ('CONFIG', 'SET', 'dir', '/tmp'),
    ('KEYS', '*'), ('DEL', 'extract'), ('DEL', 'train'), ('DEL', 'classify'), ('DEL', 'unacked'),
    ('RPOP', 'extract'), ('LTRIM', 'classify', '1', '0'),
    ('SHUTDOWN',), ('ACL', 'LIST'), ('MONITOR',), ('SCRIPT', 'FLUSH'), ('MODULE', 'LIST'),
    ('SET', 'celery-task-meta-forged', '{}'), ('SAVE',), ('CLIENT', 'KILL', 'TYPE', 'normal'),
]


@pytest.mark.parametrize('role', ['producer', 'flower', 'keda'])
def test_producers_flower_and_keda_cannot_run_admin_or_destructive_commands(acl_redis, role):
    client = as_role(acl_redis, role)
    client.ping()
    admin = as_role(acl_redis, 'admin')
    admin.lpush('extract', 'a message')
    for command in DESTRUCTIVE:
        with pytest.raises(NoPermissionError):
            client.execute_command(*command)
    assert admin.llen('extract') == 1  # nothing was removed
    admin.delete('extract')


def test_the_worker_user_has_no_admin_command_either(acl_redis):
    worker = as_role(acl_redis, 'worker')
    assert worker.info('server')['run_id']  # the heartbeat reads it
    for command in [('FLUSHALL',), ('FLUSHDB',), ('CONFIG', 'GET', 'dir'), ('KEYS', '*'),
                    ('SHUTDOWN',), ('ACL', 'LIST'), ('MONITOR',), ('SAVE',),
                    ('GET', 'someone-elses-key'), ('SET', 'someone-elses-key', 'x')]:
        with pytest.raises(NoPermissionError):
            worker.execute_command(*command)


def test_keda_reads_queue_lengths_only(acl_redis):
    keda = as_role(acl_redis, 'keda')
    admin = as_role(acl_redis, 'admin')
    admin.lpush('train\x06\x163', 'x', 'y')
    try:
        assert keda.llen('train\x06\x163') == 2 and keda.llen('extract') == 0
        for command in [('LPUSH', 'extract', 'x'), ('LRANGE', 'train\x06\x163', '0', '-1'),
                        ('GET', 'celery-task-meta-x'), ('HGETALL', 'spacer:outbox')]:
            with pytest.raises(NoPermissionError):
                keda.execute_command(*command)
    finally:
        admin.delete('train\x06\x163')


def test_each_role_does_its_own_work_end_to_end(acl_redis, tmp_path):
    """The producer submits (a duplicate too) and reads results; a worker
    with the worker user runs the task and answers Flower's inspect; Flower's
    user hears task events and reads queue lengths; nothing is denied."""
    port = acl_redis
    as_role(port, 'admin').acl_log_reset()
    scenario = Scenario('filesystem', str(tmp_path), n_images=2)
    scenario.put_images()
    producer = client_for(url(port, 'producer', 0), url(port, 'producer', 1))
    # Before any worker: the second submit of a pending job finds the first
    # (its job key, its stored state, its message in the queue: a Lua script).
    first = producer.submit('extract_features', scenario.extract_msg(0))
    assert producer.submit('extract_features', scenario.extract_msg(0)) == first

    from flower.utils.broker import Broker
    flower_broker = Broker(url(port, 'flower', 0))
    assert asyncio.run(flower_broker.queues(['extract']))[0]['messages'] == 1

    env = worker_env(url(port, 'worker', 0), url(port, 'worker', 1),
                     FILESYSTEM_ROOTS=str(tmp_path))
    with workers(('acl', 'extract', env, tmp_path)) as (worker,):
        assert producer.wait(first, timeout=60)['runtime'] >= 0
        flower_app = _flower_app(port)
        events = _listen_for_events(flower_app)
        # Submit once the receiver hears the worker and the worker has
        # turned its task events on (a busy one takes a while to do either).
        wait_until(lambda: 'worker-heartbeat' in events['seen'], 30, 'a heartbeat event')
        wait_until(lambda: any(worker.name in reply for reply in
                               flower_app.control.enable_events(reply=True, timeout=2) or []),
                   30, 'the worker to turn its task events on')
        second = producer.submit('extract_features', scenario.extract_msg(1))
        assert producer.wait(second, timeout=60)['runtime'] >= 0
        assert producer.peek([first, second])[second].state == 'SUCCESS'
        # A busy worker may miss one round of replies; it answers a later one.
        wait_until(lambda: worker.name in (flower_app.control.inspect(timeout=2).ping() or {}),
                   30, "the worker to answer Flower's ping")
        events['stop'].wait(10)
        log = worker.log_text()
    scenario.check_features(0)
    scenario.check_features(1)
    denied = [(e['username'], e['context'], e['object']) for e in denied_log(port)]
    assert denied == []
    assert {'task-received', 'task-succeeded'} <= set(events['seen']), events['seen']
    assert asyncio.run(flower_broker.queues(['extract']))[0]['messages'] == 0
    assert 'NOPERM' not in log and 'NoPermissionError' not in log


def _flower_app(port: int):
    from celery import Celery
    return Celery('flower', broker=url(port, 'flower', 0))


def _listen_for_events(app) -> dict:
    """Task events as Flower's receiver gets them, in a thread, until a
    task-succeeded event arrives."""
    seen: list[str] = []
    stop = threading.Event()

    def on_event(event: dict) -> None:
        seen.append(event['type'])
        if event['type'] == 'task-succeeded':
            stop.set()

    def listen() -> None:
        with app.connection() as connection:
            receiver = app.events.Receiver(connection, handlers={'*': on_event})
            for _ in receiver.itercapture(limit=None, timeout=15, wakeup=True):
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    return {'seen': seen, 'stop': stop}
