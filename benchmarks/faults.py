"""
Delivery under faults, measured: many extraction tasks through a private
Redis (AOF) and real ``spacer worker`` processes, while pool processes and
whole workers are killed (kill -9) and Redis restarts, at random.

Prints submitted, succeeded, failed, lost (no final state by the end),
executed twice (a task whose extraction finished more than once; split
into those whose first run's process was then killed, before its result
was stored, which at-least-once delivery runs again, and the rest), corrupt
artifacts (feature files that do not load) and the longest recovery (from a
worker's kill to the success of a task it held). Figures only; nothing
passes or fails. Default settings throughout (DEAD_WORKER_AFTER 60 s).

Usage:
    .venv/bin/python benchmarks/faults.py [--tasks 2000] [--workers 2]
        [--chaos-seconds 240] [--deadline 900] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.workers.scenario import png_bytes  # noqa: E402
from tests.workers.services import RedisServer, Worker, client_for, worker_env  # noqa: E402
from tests.workers.slow_classes import CLASS_PATHS, CountingExtractor  # noqa: E402

IMAGE_HW = (120, 160)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', type=int, default=2000)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--chaos-seconds', type=float, default=240)
    parser.add_argument('--deadline', type=float, default=900,
                        help='seconds after the chaos to wait for every task')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    rig = Rig(Path(tempfile.mkdtemp(prefix='spacer-faults-')))
    try:
        run(args, random.Random(args.seed), rig)
    finally:  # even when interrupted: no worker or Redis left behind
        for worker in rig.workers.values():
            worker.stop()
        rig.redis.stop()


class Rig:
    """A private Redis (AOF), the workers on it, and the run's files."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.counts, self.outputs = folder / 'counts', folder / 'features'
        self.counts.mkdir()
        self.outputs.mkdir()
        self.image = folder / 'image.png'
        self.image.write_bytes(png_bytes(0, *IMAGE_HW))
        self.redis = RedisServer(folder)
        self.redis.start()
        self.env = worker_env(self.redis.url(), EXTRA_CLASS_PATHS=CLASS_PATHS)
        self.workers: dict[int, Worker] = {}

    def start_worker(self, n: int) -> None:
        self.workers[n] = Worker(f'w{n}-{time.monotonic_ns()}', 'extract', self.env,
                                 self.folder, '-c', '2')


def run(args: argparse.Namespace, rng: random.Random, rig: Rig) -> None:
    from spacer.data_classes import DataLocation, ImageFeatures
    from spacer.messages import ExtractFeaturesMsg
    from workers.errors import BrokerUnavailableError

    for n in range(args.workers):
        rig.start_worker(n)
    for worker in rig.workers.values():
        worker.wait_ready()
    client = client_for(rig.redis.url())
    extractor = CountingExtractor(feature_dim=8, delay=0.05, count_dir=str(rig.counts))

    def message(i: int) -> ExtractFeaturesMsg:
        point = (i // IMAGE_HW[1] % IMAGE_HW[0], i % IMAGE_HW[1])
        return ExtractFeaturesMsg(
            job_token=f'task{i}', extractor=extractor, rowcols=[point, (5, 5)],
            image_loc=DataLocation('filesystem', str(rig.image)),
            feature_loc=DataLocation('filesystem', str(rig.outputs / f'{i}.featurevector')))

    def inject(fault: str) -> str:
        n = rng.choice(sorted(rig.workers))
        worker = rig.workers[n]
        children = worker.pool_children()
        if fault == 'child' and children:
            victim = rng.choice(children)
            killed_pids.add(str(victim))
            os.kill(victim, signal.SIGKILL)
        elif fault == 'worker':
            held = [t for t in ids.values() if _held_by(client, t, worker.name)]
            killed_pids.update(str(pid) for pid in children)
            worker.kill()
            kills.append((time.monotonic(), worker.name, held))
            rig.start_worker(n)
        elif fault == 'redis':
            rig.redis.restart(down_for=2)
        return fault

    started = time.monotonic()
    ids: dict[int, str] = {}
    kills: list[tuple[float, str, list[str]]] = []  # (when, worker, task ids it held)
    killed_pids: set[str] = set()  # pool processes killed, as the count files name them
    chaos_until = started + args.chaos_seconds
    next_fault = started + rng.uniform(3, 8)
    events = []
    while True:
        now = time.monotonic()
        if len(ids) < args.tasks:
            try:
                ids[len(ids)] = client.submit('extract_features', message(len(ids)))
            except BrokerUnavailableError:
                time.sleep(0.5)  # Redis restarting: the producer is told at once
        elif now >= chaos_until:
            break
        else:
            time.sleep(0.2)
        if chaos_until > now >= next_fault:
            next_fault = now + rng.uniform(3, 8)
            events.append(inject(rng.choice(['child', 'worker', 'redis'])))

    submitted_at = time.monotonic()

    final = {}
    deadline = submitted_at + args.deadline
    finished_at: dict[str, float] = {}
    while time.monotonic() < deadline and len(final) < len(ids):
        for task_id in ids.values():
            if task_id in final:
                continue
            try:
                state = client.result(task_id).state
            except Exception:  # noqa: BLE001 - Redis coming back
                break
            if state in ('SUCCESS', 'FAILURE'):
                final[task_id] = state
                finished_at[task_id] = time.monotonic()
        time.sleep(0.5)

    succeeded = sum(1 for s in final.values() if s == 'SUCCESS')
    failed = sum(1 for s in final.values() if s == 'FAILURE')
    runs = [f.read_text().split() for f in rig.counts.iterdir()]
    twice = [pids for pids in runs if len(pids) > 1]
    cut_off = sum(1 for pids in twice if pids[0] in killed_pids)
    corrupt = 0
    for i, task_id in ids.items():
        if final.get(task_id) == 'SUCCESS':
            try:
                ImageFeatures.load(DataLocation('filesystem', str(rig.outputs / f'{i}.featurevector')))
            except Exception:  # noqa: BLE001 - that is what is counted
                corrupt += 1
    recoveries = [finished_at[t] - when for when, _, held in kills for t in held
                  if t in finished_at]
    print(f'faults: {len(events)} ({events.count("child")} pool processes killed,'
          f' {events.count("worker")} workers killed, {events.count("redis")} Redis restarts)'
          f' over {args.chaos_seconds:.0f} s; {args.workers} workers of 2 processes')
    print(f'submitted {len(ids)}, succeeded {succeeded}, failed {failed},'
          f' lost {len(ids) - len(final)}, executed twice {len(twice)}'
          f' ({cut_off} cut off by a kill of their process, {len(twice) - cut_off} otherwise),'
          f' corrupt artifacts {corrupt},'
          f' longest recovery {max(recoveries, default=0):.0f} s'
          f' ({len(recoveries)} tasks held by killed workers),'
          f' all done {max(finished_at.values(), default=started) - started:.0f} s after start')
    print(f'logs and outputs: {rig.folder}')


def _held_by(client, task_id: str, hostname: str) -> bool:
    meta = client.app.backend.get_task_meta(task_id)
    return meta['status'] == 'STARTED' and (meta.get('result') or {}).get('hostname') == hostname


if __name__ == '__main__':
    main()
