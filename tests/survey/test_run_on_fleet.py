"""`spacer run` through a real Redis broker and a separate `spacer worker`
process: the same command, only SPACER_BROKER_URL set (and with `--storage`,
S3 on moto's server instead of a shared disk)."""
from __future__ import annotations

import shutil
import subprocess
import uuid

import boto3
import pytest

from spacer_survey.pipeline import run_job
from spacer_survey.predictions import read_csv
from tests.survey.report_parsing import parse_report
from tests.survey.test_pipeline import spec_for
from tests.workers.services import SPACER, RedisServer, worker_env, workers

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


def test_run_with_s3_storage_needs_no_shared_disk(tiny_survey, default_choice, moto_server,
                                                 tmp_path):
    """`--storage s3://...`: the worker process, confined to a folder that
    holds neither the photos nor the output, reads and writes only S3 (the
    default extractor's weights too) and predicts what the embedded run does."""
    s3 = {'S3_ENDPOINT_URL': moto_server, 'AWS_ACCESS_KEY_ID': 'testing',
          'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_REGION': 'us-east-1'}
    bucket = f'fleet-{uuid.uuid4().hex[:12]}'
    boto3.client('s3', endpoint_url=moto_server, region_name='us-east-1',
                 aws_access_key_id='testing', aws_secret_access_key='testing'
                 ).create_bucket(Bucket=bucket)
    run_job(spec_for(tiny_survey, tmp_path / 'embedded', default_choice, epochs=3))
    worker_home = tmp_path / 'worker-home'
    (worker_home / 'cache').mkdir(parents=True)
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        env = worker_env(redis.url(0), FILESYSTEM_ROOTS=str(worker_home),
                         EXTRACTORS_CACHE_DIR=str(worker_home / 'cache'), **s3)
        producer_env = {k: v for k, v in env.items()
                        if k not in ('SPACER_FILESYSTEM_ROOTS', 'SPACER_EXTRACTORS_CACHE_DIR')}
        weights = default_choice.extractor.data_locations['weights'].key
        output = tmp_path / 'out'
        with workers(('all', 'extract,train,classify', env, tmp_path)) as (worker,):
            done = subprocess.run(
                [str(SPACER), 'run', str(tiny_survey.images_dir),
                 str(tiny_survey.annotations_csv), '-o', str(output),
                 '--storage', f's3://{bucket}/run', '--points',
                 str(tiny_survey.points_csv), '--weights', weights,
                 '--split', 'points', '--val-ratio', '0.2', '--epochs', '3', '-q'],
                env=producer_env, capture_output=True, text=True, timeout=240)
            log = worker.log_text()
        assert done.returncode == 0, done.stderr + log[-3000:]
        assert log.count('spacer.extract_features[') >= 8
        assert read_csv(output / 'predictions.csv') == read_csv(
            tmp_path / 'embedded' / 'predictions.csv')
        assert not (output / 'features').exists()
    finally:
        redis.stop()


def test_run_warns_when_no_live_worker_consumes_the_train_queue(tiny_survey, default_choice,
                                                                tmp_path):
    """No silent waits: with workers for extraction and classification only,
    `spacer run` extracts, then says that nothing consumes `train` instead
    of waiting without a word. The run is stopped once it has said so."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        env = worker_env(redis.url(0))
        weights = default_choice.extractor.data_locations['weights'].key
        with workers(('no-train', 'extract,classify', env, tmp_path)) as (worker,):
            run = subprocess.Popen(
                [str(SPACER), 'run', str(tiny_survey.images_dir),
                 str(tiny_survey.annotations_csv), '--points', str(tiny_survey.points_csv),
                 '-o', str(tmp_path / 'out'), '--weights', weights, '--split', 'points',
                 '--epochs', '3', '-q'],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            said = []
            try:
                while not said or said[-1].startswith('Training'):
                    said.append(run.stderr.readline().strip())  # '' at its end
            finally:
                run.terminate()
                run.wait(30)
            log = worker.log_text()
        # The line that announces the training, then the warning.
        assert said[0].startswith('Training a MLP classifier'), said
        assert said[1:] == ["spacer: warning: no live worker consumes the 'train' queue;"
                            " its tasks wait until one starts"
                            " (spacer worker --queues train)."], (said, log[-3000:])
        assert log.count('spacer.extract_features[') >= 8  # extraction ran first
    finally:
        redis.stop()
