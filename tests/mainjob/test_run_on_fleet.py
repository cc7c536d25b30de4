"""`spacer run` through a real Redis broker and a separate `spacer worker`
process: the same command, only SPACER_BROKER_URL set."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.mainjob.report_parsing import parse_report
from tests.workers.services import SPACER, RedisServer, worker_env, workers
from workers.mainjob.predictions import read_csv

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which('redis-server') is None,
                                 reason='redis-server is not installed')]


def test_run_through_redis_and_a_worker_process(tiny_survey, default_choice,
                                                tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        env = worker_env(redis.url(0))
        weights = default_choice.extractor.data_locations['weights'].key
        output = tmp_path / 'out'
        with workers(('all', 'extract,train,classify', env, tmp_path)) as (worker,):
            done = subprocess.run(
                [str(SPACER), 'run', str(tiny_survey.images_dir),
                 str(tiny_survey.annotations_csv), '--points',
                 str(tiny_survey.points_csv), '-o', str(output), '--weights',
                 weights, '--split', 'points', '--epochs', '3', '-q'],
                env=env, capture_output=True, text=True, timeout=240)
            log = worker.log_text()
        assert done.returncode == 0, done.stderr + log[-3000:]
        # The worker process did the work, not an embedded one.
        for task in ('extract_features', 'train_classifier', 'classify_features'):
            assert f'spacer.{task}' in log and 'succeeded' in log
        assert log.count('spacer.extract_features[') >= 8
        predictions = read_csv(output / 'predictions.csv')
        assert len(predictions) == 16
        report = parse_report((output / 'report.html').read_text(encoding='utf-8'))
        assert 'confusion-matrix' in report.figures
    finally:
        redis.stop()
