"""What the task queue costs: a small classify_features through Redis and
real workers, against calling the task function directly.

Prints
- round-trip latency (median, p99) of one classify_features at a time:
  the task function called in this process; through the queue (submit,
  then wait) with one `spacer worker --queues classify` process; and
  through the embedded in-process worker; beside Celery's built-in trivial
  task through the same worker (the floor);
- throughput of 1000 such tasks submitted at once, with 1 and 2 worker
  processes (prefork pool, -c 1 and -c 2);
- what a cold start costs: in a fresh process, importing the task code,
  then the first and the second call; through a worker, the first task
  once the worker says it is ready.

    .venv/bin/python benchmarks/queue_roundtrip.py
    .venv/bin/python benchmarks/queue_roundtrip.py --points 200 --runs 300 --bulk 1000

Needs Redis on 127.0.0.1:6379 (uses an empty database and empties it after).
"""
from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path and its name
# would hide the standard library's ``queue`` (which redis imports).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _HERE]

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(_HERE).parent
sys.path.insert(0, str(ROOT))

from tests.workers.services import (claim_empty_redis_db, client_for,  # noqa: E402
                                    worker_env, workers)


def make_inputs(folder: Path, points: int, dim: int):
    """A feature file of ``points`` points and a classifier trained for it."""
    import numpy as np

    from spacer import tasks
    from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels
    from spacer.messages import ClassifyFeaturesMsg, TrainClassifierMsg, TrainingTaskLabels

    rng = np.random.default_rng(0)
    rowcols = [(10 + i // 20, 10 + i % 20) for i in range(points)]
    locs = []
    for i in range(6):
        loc = DataLocation('filesystem', str(folder / f'img{i}.featurevector'))
        ImageFeatures.from_arrays([r for r, _ in rowcols], [c for _, c in rowcols],
                                  rng.random((points, dim))).store(loc)
        locs.append(loc)

    def labels(indices):
        return ImageLabels({locs[i]: [(r, c, j % 5) for j, (r, c) in enumerate(rowcols)]
                            for i in indices})
    model = DataLocation('filesystem', str(folder / 'model.pkl'))
    tasks.train_classifier(TrainClassifierMsg(
        job_token='bench', trainer='minibatch', nbr_epochs=2, clf_type='LR',
        labels=TrainingTaskLabels(labels(range(4)), labels([4]), labels([5])),
        previous_model_locs=[], model_loc=model,
        valresult_loc=DataLocation('filesystem', str(folder / 'val.json'))))

    def message(token: str) -> ClassifyFeaturesMsg:
        return ClassifyFeaturesMsg(job_token=token, feature_loc=locs[0], classifier_loc=model)
    return message


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ms)})"


def direct_latency(message, runs: int) -> list[float]:
    from spacer import tasks
    tasks.classify_features(message('warm'))  # classifier cache warm, as in a worker
    out = []
    for n in range(runs):
        t0 = time.perf_counter()
        tasks.classify_features(message(f'd{n}'))
        out.append(time.perf_counter() - t0)
    return out


FRESH_PROCESS = r'''
import json, sys, time
t0 = time.perf_counter()
from spacer.messages import ClassifyFeaturesMsg
from spacer.tasks import classify_features
t1 = time.perf_counter()
classify_features(ClassifyFeaturesMsg.deserialize(json.loads(sys.argv[1])))
t2 = time.perf_counter()
classify_features(ClassifyFeaturesMsg.deserialize(json.loads(sys.argv[1])))
t3 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2]))
'''


def fresh_process(message) -> list[float]:
    """(import, first call, second call) seconds of classify_features in a
    new Python process, as a web worker calling it inline pays them."""
    import json
    import subprocess
    done = subprocess.run([sys.executable, '-c', FRESH_PROCESS,
                           json.dumps(message.serialize())],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def first_task(client, message, tag: str) -> float:
    """Round trip of the first task a worker serves once it is ready: what
    its warm start leaves to pay (loading the classifier)."""
    t0 = time.perf_counter()
    client.wait(client.submit('classify_features', message(f'{tag}-first')), 60)
    return time.perf_counter() - t0


def queue_latency(client, message, runs: int, tag: str) -> list[float]:
    client.wait(client.submit('classify_features', message(f'{tag}-warm')), 60)
    out = []
    for n in range(runs):
        t0 = time.perf_counter()
        client.wait(client.submit('classify_features', message(f'{tag}-{n}')), 60)
        out.append(time.perf_counter() - t0)
    return out


def trivial_latency(client, runs: int) -> list[float]:
    """The floor: Celery's built-in ``celery.accumulate`` (returns its
    argument) through the same Redis and worker, sent without spacer's
    producer (no job key, no outbox copy)."""
    queue = client.settings.queues['classify']

    def once() -> None:
        client.app.send_task('celery.accumulate', args=[1], queue=queue, exchange=queue,
                             routing_key=queue).get(timeout=60, disable_sync_subtasks=False)
    once()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        out.append(time.perf_counter() - t0)
    return out


def throughput(client, message, count: int, tag: str) -> float:
    client.wait(client.submit('classify_features', message(f'{tag}-warm')), 60)
    t0 = time.perf_counter()
    ids = [client.submit('classify_features', message(f'{tag}-{n}')) for n in range(count)]
    for task_id in ids:
        client.wait(task_id, 300)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--points', type=int, default=200)
    parser.add_argument('--dim', type=int, default=256, help='feature dimension')
    parser.add_argument('--runs', type=int, default=300, help='latency samples')
    parser.add_argument('--bulk', type=int, default=1000, help='tasks for throughput')
    args = parser.parse_args()

    import redis
    db = claim_empty_redis_db()
    url = f'redis://127.0.0.1:6379/{db}'
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            message = make_inputs(folder, args.points, args.dim)
            print(f"classify_features, {args.points} points x {args.dim} features, "
                  f"LR classifier, filesystem storage")
            print(f"  direct call        {summary(direct_latency(message, args.runs))}")
            imported, first, second = fresh_process(message('fresh'))
            print(f"  fresh process      import {imported:.2f} s, then the first call"
                  f" {first * 1000:.1f} ms, the second {second * 1000:.1f} ms")

            from dataclasses import replace

            from workers.app import make_app
            from workers.client import Client
            from workers.settings import load
            embedded = Client(make_app(replace(load(), broker_url=None, result_backend=None)))
            print(f"  embedded worker    "
                  f"{summary(queue_latency(embedded, message, args.runs, 'emb'))}")

            env = worker_env(url)
            for processes in (1, 2):
                with workers((f'bench{processes}', 'classify', env, folder,
                              '-c', str(processes))) as started:
                    # wait for the pool's processes to be up
                    time.sleep(1.0)
                    client = client_for(url)
                    if processes == 1:
                        print(f"  first task on a worker just started "
                              f"{first_task(client, message, 'q') * 1000:7.2f} ms")
                        floor = trivial_latency(client, args.runs)
                        print(f"  trivial task       {summary(floor)}   (Redis, 1 worker: the floor)")
                        lat = queue_latency(client, message, args.runs, 'q')
                        print(f"  Redis, 1 worker    {summary(lat)}")
                    rate = throughput(client, message, args.bulk, f'bulk{processes}')
                    print(f"  throughput, {args.bulk} tasks, {processes} worker process(es): "
                          f"{rate:7.1f} tasks/s")
                    del started
            rate = throughput(embedded, message, args.bulk, 'bulk-emb')
            print(f"  throughput, {args.bulk} tasks, embedded worker: {rate:7.1f} tasks/s")
    finally:
        redis.Redis.from_url(url).flushdb()


if __name__ == '__main__':
    main()
