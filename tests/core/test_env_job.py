"""spacer.mailman.env_job, pyspacer's AWS Batch entry point, end to end: a
separate process reads JOB_MSG_LOC and RES_MSG_LOC from its environment, as a
Batch job definition running ``python3 spacer/mailman.py env_job`` does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.extractors import DummyExtractor
from spacer.messages import ExtractFeaturesMsg, JobMsg, JobReturnMsg

REPO = Path(__file__).parents[2]


def _loc(path: Path) -> DataLocation:
    return DataLocation('filesystem', str(path))


def _extract_job(tmp_path: Path, image: str) -> JobMsg:
    return JobMsg('extract_features', [ExtractFeaturesMsg(
        job_token='env-job-1', extractor=DummyExtractor(feature_dim=16),
        rowcols=[(10, 20), (70, 90)], image_loc=_loc(tmp_path / image),
        feature_loc=_loc(tmp_path / 'image.featurevector'))])


def _run(tmp_path: Path, job: JobMsg | None, *command: str,
         result: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('JOB_MSG_LOC', 'RES_MSG_LOC')}
    if job is not None:
        job.store(_loc(tmp_path / 'job.json'))
        env['JOB_MSG_LOC'] = json.dumps(_loc(tmp_path / 'job.json').serialize())
    if result:
        env['RES_MSG_LOC'] = json.dumps(_loc(tmp_path / 'result.json').serialize())
    args = command or ('-m', 'spacer.mailman', 'env_job')
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def image(tmp_path: Path) -> str:
    Image.new('RGB', (120, 100), (30, 90, 160)).save(tmp_path / 'image.jpg')
    return 'image.jpg'


@pytest.mark.parametrize('command', [(), ('spacer/mailman.py', 'env_job')],
                         ids=['module', 'script'])
def test_extract_features_job(tmp_path, image, command):
    job = _extract_job(tmp_path, image)
    done = _run(tmp_path, job, *command)
    assert done.returncode == 0, done.stderr
    stored = json.loads((tmp_path / 'result.json').read_text())
    result = JobReturnMsg.deserialize(stored)
    assert result.ok and result.error_message is None
    assert result.original_job == job
    assert result.results[0].runtime >= 0
    features = ImageFeatures.load(_loc(tmp_path / 'image.featurevector'))
    assert (features.npoints, features.feature_dim) == (2, 16)
    assert features.get_array((70, 90)).shape[-1] == 16


def test_a_failing_task_is_stored_as_a_failed_result(tmp_path):
    done = _run(tmp_path, _extract_job(tmp_path, 'missing.jpg'))
    assert done.returncode == 0, done.stderr
    stored = json.loads((tmp_path / 'result.json').read_text())
    assert stored['ok'] is False
    assert stored['error_message'].splitlines()[-1].startswith(
        "FileNotFoundError: [Errno 2] No such file or directory: ")


def test_without_a_result_location_nothing_is_stored(tmp_path, image):
    done = _run(tmp_path, _extract_job(tmp_path, image), result=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / 'result.json').exists()
    assert (tmp_path / 'image.featurevector').exists()


def test_without_a_job_location_it_fails_as_pyspacer_did(tmp_path):
    done = _run(tmp_path, None)
    assert done.returncode != 0
    assert 'ValueError: JOB_MSG_LOC env. variable not set' in done.stderr
    assert not (tmp_path / 'result.json').exists()
