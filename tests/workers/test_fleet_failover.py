"""
What a fleet survives, on a Redis server of our own (persisting every write):
a worker killed with SIGKILL in the middle of an extraction and of a
training (another worker completes each, and the artifacts are whole), and
Redis restarting while workers idle and while tasks wait in the queues.

Time limits and the visibility timeout are shortened (hard limits 9 s,
visibility 10 s, restore scans every second) so a dead worker's message
comes back within seconds instead of hours; the slow tasks take 4 s, well
inside both.
"""
from __future__ import annotations

import json
import time

import kombu
import pytest

from spacer.data_classes import DataLocation, ImageFeatures
from tests.workers.scenario import Scenario
from tests.workers.services import client_for, running_on, wait_until, worker_env, workers
from tests.workers.slow_classes import CLASS_PATHS, SlowExtractor, SlowTrainer
from workers.queues import present_task_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHORT_LIMITS = dict(EXTRACT_TIME_LIMIT=8, TRAIN_TIME_LIMIT=8, CLASSIFY_TIME_LIMIT=8,
                    TIME_LIMIT_GRACE=1, VISIBILITY_TIMEOUT=10, UNACKED_RESTORE_INTERVAL=1)
SLOW = 4.0


@pytest.fixture(scope='module')
def fleet(redis_server, tmp_path_factory):
    """Two extract workers and two train workers."""
    env = worker_env(redis_server.url(), EXTRA_CLASS_PATHS=CLASS_PATHS, **SHORT_LIMITS)
    logs = tmp_path_factory.mktemp('worker-logs')
    with workers(('extract-a', 'extract', env, logs), ('extract-b', 'extract', env, logs),
                 ('train-a', 'train,classify', env, logs, '-c', '1'),
                 ('train-b', 'train,classify', env, logs, '-c', '1')) as started:
        yield {w.name.split('@')[0]: w for w in started}


@pytest.fixture(scope='module')
def client(fleet, redis_server):
    return client_for(redis_server.url())


def test_killed_workers_tasks_are_completed_by_others(client, fleet, tmp_path):
    from spacer.storage import load_classifier
    scenario = Scenario('filesystem', str(tmp_path))
    scenario.put_images()
    for i in range(scenario.n_images):
        client.wait(client.submit('extract_features', scenario.extract_msg(i)), 30)
    fast_features = scenario.check_features(0).feat.copy()

    scenario.extractor = SlowExtractor(feature_dim=16, delay=SLOW)
    slow_extract = scenario.extract_msg(0)
    slow_extract.feature_loc = DataLocation('filesystem', str(tmp_path / 'slow.featurevector'))
    train = scenario.train_msg()
    train.trainer = SlowTrainer(delay=SLOW)
    extract_id = client.submit('extract_features', slow_extract)
    train_id = client.submit('train_classifier', train)

    victims = set()
    for task_id in (extract_id, train_id):
        # Kill each worker as soon as its task has started: well inside the
        # 4 s of work, however slowly the other task gets going.
        name = running_on(client, task_id)
        assert client.result(task_id).state == 'STARTED'
        fleet[name.split('@')[0]].kill()
        victims.add(name)

    assert 'runtime' in client.wait(extract_id, 60)
    assert 0 <= client.wait(train_id, 60)['acc'] <= 1
    # Each was run again, to the end, by a worker still alive.
    for task_id in (extract_id, train_id):
        # The pool process logs "succeeded" just after storing the result
        # the client saw: wait for the line, do not read the log once.
        finishers = wait_until(
            lambda: [w for w in fleet.values()
                     if w.name not in victims and f'[{task_id}] succeeded' in w.log_text()],
            10, f'the log line of {task_id}')
        assert len(finishers) == 1, task_id
    from spacer.data_classes import ImageFeatures
    features = ImageFeatures.load(slow_extract.feature_loc)
    assert features.feat.shape == fast_features.shape
    # Nothing half-written is left beside the artifacts.
    expected = ({f'{scenario.token}-img{i}.png' for i in range(scenario.n_images)}
                | {f'{scenario.token}-img{i}.featurevector' for i in range(scenario.n_images)}
                | {'slow.featurevector', f'{scenario.token}-model.pkl',
                   f'{scenario.token}-valresult.json'})
    assert {p.name for p in tmp_path.iterdir()} == expected
    from spacer.data_classes import ValResults
    assert ValResults.load(scenario.valresult_loc).gt
    clf = load_classifier(scenario.model_loc)
    assert sorted(clf.classes_.tolist()) == [1, 2, 3]


def _classify_jobs(client, scenario: Scenario, count: int) -> list[str]:
    ids = []
    for n in range(count):
        msg = scenario.classify_features_msg(n % scenario.n_images)
        msg.job_token += f'-{n}-{time.monotonic_ns()}'
        ids.append(client.submit('classify_features', msg))
    return ids


def test_redis_restarts_while_idle_and_while_tasks_wait(client, fleet, redis_server, tmp_path):
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    for i in range(scenario.n_images):
        client.wait(client.submit('extract_features', scenario.extract_msg(i)), 30)
    client.wait(client.submit('train_classifier', scenario.train_msg()), 60)

    # 1. Restart while the workers idle: they reconnect and serve.
    redis_server.restart()
    for task_id in _classify_jobs(client, scenario, 5):
        assert len(client.wait(task_id, 60)['scores']) == scenario.points

    # 2. Restart while tasks wait in the queue (the workers are paused so
    #    nothing is taken): every queued task completes afterwards.
    alive = [w for w in fleet.values() if w.proc.poll() is None]
    for worker in alive:
        worker.pause()
    try:
        queued = _classify_jobs(client, scenario, 20)
        from workers.queues import queue_depths
        assert queue_depths(client.app)['classify'] >= 19  # one may sit prefetched
        redis_server.restart()
    finally:
        for worker in alive:
            worker.resume()
    results = [client.wait(task_id, 90) for task_id in queued]
    assert all(len(r['scores']) == scenario.points for r in results)


def test_a_dead_pool_process_has_its_task_run_again(client, fleet, tmp_path):
    """kill -9 only the prefork child running a training: the task is retried."""
    import os
    import signal
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    for i in range(scenario.n_images):
        client.wait(client.submit('extract_features', scenario.extract_msg(i)), 30)
    train = scenario.train_msg()
    train.trainer = SlowTrainer(delay=SLOW)
    task_id = client.submit('train_classifier', train)
    running_on(client, task_id)
    child_pid = client.app.backend.get_task_meta(task_id)['result']['pid']
    time.sleep(1.0)
    os.kill(child_pid, signal.SIGKILL)
    assert 0 <= client.wait(task_id, 60)['acc'] <= 1
    from spacer.storage import load_classifier
    assert sorted(load_classifier(scenario.model_loc).classes_.tolist()) == [1, 2, 3]


def test_an_extraction_stuck_past_its_hard_limit_fails_and_the_worker_serves_on(
        fleet, redis_server, tmp_path):
    """Extract workers run prefork, so the hard limit holds there too: the
    stuck task fails once, naming the limit (no retry of a message that
    would only get stuck again), a dead letter keeps it, and the worker
    serves the next task."""
    from workers.job_state_store import store_for
    from workers import dead_letters
    # The producer sends each message's limits: the fleet's short ones here.
    client = client_for(redis_server.url(), grace=SHORT_LIMITS['TIME_LIMIT_GRACE'],
                        soft_limits={'extract': 8, 'train': 8, 'classify': 8})
    scenario = Scenario('filesystem', str(tmp_path), n_images=2)
    scenario.put_images()
    scenario.extractor = SlowExtractor(feature_dim=16, delay=120, stuck=True)
    stuck = scenario.extract_msg(0)
    started = time.monotonic()
    task_id = client.submit('extract_features', stuck)
    outcome = client.wait_result(task_id, 90)
    assert outcome.state == 'FAILURE', outcome
    assert outcome.error_type.endswith('TimeLimitExceeded'), outcome
    assert time.monotonic() - started < 30  # the 9 s hard limit, once
    time.sleep(3)  # a retry, were one coming, would have started by now
    assert client.result(task_id).state == 'FAILURE'
    letters = wait_until(lambda: [d for d in dead_letters.entries(store_for(client.app))
                                  if d['task_id'] == task_id], 10, 'its dead letter')
    assert len(letters) == 1
    scenario.extractor = SlowExtractor(feature_dim=16)
    good = scenario.extract_msg(1)
    client.wait(client.submit('extract_features', good), 60)
    assert scenario.check_features(1).feat.shape == (len(good.rowcols), 16)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MB tmpfs of our own, to remount read-only (root ignores file
    permissions, not a read-only mount)."""
    import subprocess
    folder = tmp_path / 'out'
    folder.mkdir()
    mount = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {mount.stderr.strip()}')
    yield folder
    subprocess.run(['umount', str(folder)], check=True)


def test_a_read_only_output_disk_is_retried_until_it_is_writable(
        client, fleet, tmp_path, small_tmpfs):
    """EROFS is a fault the operator repairs: tasks writing there for the
    10 s the disk is read-only retry with backoff and succeed once it is
    writable again; none is lost."""
    import subprocess
    scenario = Scenario('filesystem', str(tmp_path), n_images=4)
    scenario.put_images()
    messages = []
    for i in range(scenario.n_images):
        msg = scenario.extract_msg(i)
        msg.feature_loc = DataLocation('filesystem', str(small_tmpfs / f'img{i}.featurevector'))
        messages.append(msg)
    subprocess.run(['mount', '-o', 'remount,ro', str(small_tmpfs)], check=True)
    read_only_since = time.monotonic()
    try:
        ids = [client.submit('extract_features', msg) for msg in messages]
        wait_until(lambda: any(client.result(i).state == 'RETRY' for i in ids), 30,
                   'a task to meet the read-only disk and retry')
        # Read-only for 10 s in all, as long as an operator takes to notice.
        time.sleep(max(0.0, 10 - (time.monotonic() - read_only_since)))
    finally:
        subprocess.run(['mount', '-o', 'remount,rw', str(small_tmpfs)], check=True)
    outcomes = [client.wait_result(i, 90) for i in ids]
    assert [o.state for o in outcomes] == ['SUCCESS'] * len(ids), outcomes
    for msg in messages:
        features = ImageFeatures.load(msg.feature_loc)
        assert len(features.point_features) == len(msg.rowcols)


def test_a_producer_fails_fast_while_redis_is_down_and_submits_again_after(
        client, fleet, redis_server, tmp_path):
    """Each submit during the outage raises the documented error within the
    connect timeout, dedup or not; afterwards submits are queued and run."""
    from workers.errors import BrokerUnavailableError
    scenario = Scenario('filesystem', str(tmp_path), n_images=2)
    scenario.put_images()
    redis_server.stop()
    try:
        for dedup_job in (True, False, True):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailableError, match='nothing was queued'):
                client.submit('extract_features', scenario.extract_msg(0), dedup_job=dedup_job)
            assert time.monotonic() - started < 5.5
    finally:
        redis_server.start()
    ids = [client.submit('extract_features', scenario.extract_msg(i)) for i in range(2)]
    for task_id in ids:
        client.wait(task_id, 60)
    for i in range(2):
        assert scenario.check_features(i).feat.shape[0] == len(scenario.extract_msg(i).rowcols)


def test_a_redelivered_message_of_a_finished_task_is_not_run_again(client, fleet, tmp_path):
    """As after a worker died between storing a result and acknowledging:
    the same task id arrives again; the worker acknowledges it unrun."""
    import redis
    scenario = Scenario('filesystem', str(tmp_path), n_images=1)
    scenario.put_images()
    msg = scenario.extract_msg(0)
    task_id = client.submit('extract_features', msg)
    client.wait(task_id, 30)
    features = tmp_path / 'again.featurevector'
    scenario.check_features(0)
    # The restored message: what the producer sent (published to a queue no
    # worker reads), marked redelivered as every restore marks it (kombu's
    # _do_restore_message), with the output moved so that a second run
    # would show.
    msg.feature_loc = DataLocation('filesystem', str(features))
    queue = client.settings.queues['extract']
    holding = kombu.Queue('holding-' + task_id, kombu.Exchange('holding-' + task_id, 'direct'),
                          routing_key='holding-' + task_id)
    with client.app.connection_for_write() as connection:
        holding(connection).declare()
    client.app.send_task('spacer.extract_features', args=[msg.serialize()], task_id=task_id,
                         queue=holding, exchange=holding.exchange.name,
                         routing_key=holding.routing_key)
    broker = redis.Redis.from_url(client.app.conf.broker_url)
    payload = json.loads(broker.rpop(holding.name))
    payload['headers']['redelivered'] = True
    payload['properties']['delivery_info']['redelivered'] = True
    broker.lpush(queue, json.dumps(payload))
    # The line itself: an earlier test's redelivery may have logged
    # "already finished" too, and this task's first run logged its id.
    wait_until(lambda: any(f'[{task_id}] already finished' in w.log_text()
                           for w in fleet.values()), 30, 'the redelivery to be acknowledged')
    # Its message only: an earlier test's Redis outage can leave another
    # task's message unacknowledged until a reaper returns it (60 s or more).
    try:
        wait_until(lambda: task_id not in present_task_ids(broker, [queue]), 10,
                   'its message to be neither queued nor unacknowledged')
    except AssertionError as error:
        raise AssertionError(f'{error}: {broker.llen(queue)} queued, unacked {_unacked(broker)},'
                             f" restore mutex TTL {broker.ttl('unacked_mutex')}") from None
    assert not features.exists()
    assert client.result(task_id).state == 'SUCCESS'


def _unacked(broker) -> list[str]:
    """What the unacked hash holds: task id, queue and age of each entry."""
    now = time.time()
    ages = dict(broker.zrange('unacked_index', 0, -1, withscores=True))
    return [f"{json.loads(raw)[0]['headers'].get('id')} on {json.loads(raw)[2]}"
            f" for {now - ages.get(tag, now):.1f} s"
            for tag, raw in broker.hgetall('unacked').items()]
