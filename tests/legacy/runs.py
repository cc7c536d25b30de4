"""Running the release fixtures' messages and comparing what they give.

Each run gets its own copy of the scenario folder (inputs hard-linked), so
what one message writes (features, classifier, valresult) can be compared
with what the 0.14 message writes.
"""
from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from spacer import messages, tasks
from spacer.data_classes import DataLocation, ImageFeatures, ValResults
from spacer.storage import load_classifier
from tests.legacy import scenario

MESSAGE_FILES = {'extract_features': 'ExtractFeaturesMsg.json',
                 'train_classifier': 'TrainClassifierMsg.json',
                 'classify_features': 'ClassifyFeaturesMsg.json',
                 'classify_image': 'ClassifyImageMsg.json'}
MESSAGE_CLASSES = {'extract_features': messages.ExtractFeaturesMsg,
                   'train_classifier': messages.TrainClassifierMsg,
                   'classify_features': messages.ClassifyFeaturesMsg,
                   'classify_image': messages.ClassifyImageMsg}


class Runs:
    """Each (release, task, mode) run once, in a fresh copy of the scenario.

    Modes: 'task' (the single task function), 'process_job'
    (``spacer.tasks.process_job``), 'queue' (the JobMsg JSON through
    ``workers.client``: the embedded worker, as no broker is configured) and
    'fleet' (through ``fleet_client``, a client of real worker processes).
    """

    def __init__(self, base: Path, scratch: Path, fleet_client: Any = None):
        self.base = base
        self.scratch = scratch
        self.fleet_client = fleet_client

    def folder(self, release: str, task: str, mode: str) -> Path:
        target = self.scratch / f'{release}-{task}-{mode}'
        shutil.copytree(self.base, target, copy_function=os.link)
        return target

    @cache
    def run(self, release: str, task: str, mode: str) -> dict:
        """What the run returned (JSON, runtimes dropped) and what it wrote."""
        folder = self.folder(release, task, mode)
        if mode == 'task':
            msg = MESSAGE_CLASSES[task].deserialize(
                scenario.fixture_json(release, MESSAGE_FILES[task], folder))
            returned = [getattr(tasks, task)(msg).serialize()]
        else:
            job_json = scenario.fixture_json(release, f'JobMsg-{task}.json', folder)
            if mode == 'process_job':
                job_return = tasks.process_job(messages.JobMsg.deserialize(job_json)).serialize()
            elif mode == 'queue':
                from workers import client
                job_return = through_queue(client.default_client(), job_json)
            else:
                job_return = through_queue(self.fleet_client, job_json)
            assert job_return['ok'], job_return['error_message']
            returned = job_return['results']
        for result in returned:
            result.pop('runtime')
        return {'returned': returned, **written_outputs(task, folder)}


def through_queue(client: Any, job_json: dict) -> dict:
    """The stored JobMsg JSON, as CoralNet queued it, through the worker layer.
    Every release's job carries the same job token, so job dedup is off here:
    the runs are different jobs that happen to share a token."""
    task_id = client.submit('process_job', job_json, dedup_job=False)
    return client.wait(task_id, timeout=120)


def written_outputs(task: str, folder: Path) -> dict:
    def loc(name: str) -> DataLocation:
        return DataLocation('filesystem', str(folder / name))
    if task == 'extract_features':
        features = ImageFeatures.load(loc('image.featurevector'))
        return {'rowcols': list(zip(features.rows.tolist(), features.cols.tolist())),
                'feat': features.feat}
    if task == 'train_classifier':
        clf = load_classifier(loc('trained_classifier.pkl'))
        val = np.vstack([ImageFeatures.load(loc(f'img_{i:02d}.featurevector')).feat
                         for i in range(13, 17)])
        return {'valresult': ValResults.load(loc('valresult.json')).serialize(),
                'classes': clf.classes_.tolist(), 'val_proba': clf.predict_proba(val)}
    return {}


def assert_same_features(got: dict, want: dict) -> None:
    assert got['returned'] == [{'extractor_loaded_remotely': False}]
    assert got['rowcols'] == scenario.ROWCOLS
    assert got['feat'].shape == (5, 1280)
    np.testing.assert_allclose(got['feat'], want['feat'], atol=1e-4)
    # The weights are not a blank network: different points, different features.
    assert np.ptp(got['feat'], axis=0).max() > 1e-3


def assert_same_scores(got: dict, want: dict) -> None:
    (got,), (want,) = got['returned'], want['returned']
    assert got['classes'] == want['classes'] == scenario.CLASSES
    assert got['valid_rowcol'] is True
    assert [tuple(s[:2]) for s in got['scores']] == scenario.ROWCOLS
    np.testing.assert_allclose([s[2] for s in got['scores']],
                               [s[2] for s in want['scores']], atol=1e-6)
    assert np.allclose([sum(s[2]) for s in got['scores']], 1.0)


def assert_same_training(got: dict, want: dict) -> None:
    """Same split, same data, deterministic trainer: the same classifier."""
    (returned,) = got['returned']
    assert 0.0 <= returned['acc'] <= 1.0 and len(returned['ref_accs']) == 3  # nbr_epochs
    assert len(returned['pc_accs']) == 1
    assert got['returned'] == want['returned']
    assert got['classes'] == scenario.CLASSES
    assert got['valresult']['gt'] == want['valresult']['gt']
    assert got['valresult']['est'] == want['valresult']['est']
    np.testing.assert_allclose(got['valresult']['scores'], want['valresult']['scores'],
                               atol=1e-9)
    np.testing.assert_allclose(got['val_proba'], want['val_proba'], atol=1e-9)


SAME = {'extract_features': assert_same_features, 'train_classifier': assert_same_training,
        'classify_features': assert_same_scores, 'classify_image': assert_same_scores}
