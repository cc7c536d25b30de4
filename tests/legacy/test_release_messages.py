"""Messages stored by every pyspacer release from 0.6 on load, run and give
the results of the current (0.14) messages of the same scenario.

Each run gets its own copy of the scenario folder (inputs hard-linked), so
what one message writes (features, classifier, valresult) is compared with
what the 0.14 message writes, through the single task functions, through
``spacer.tasks.process_job`` and through the queue (``workers.client`` with
the embedded worker).
"""
from __future__ import annotations

import json
import os
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from spacer import data_classes, messages, tasks
from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels, ValResults
from spacer.storage import load_classifier
from tests.legacy import scenario
from tests.legacy.scenario import CURRENT, RELEASES, TASKS

OLD_RELEASES = [r for r in RELEASES if r != CURRENT]
MESSAGE_FILES = {'extract_features': 'ExtractFeaturesMsg.json',
                 'train_classifier': 'TrainClassifierMsg.json',
                 'classify_features': 'ClassifyFeaturesMsg.json',
                 'classify_image': 'ClassifyImageMsg.json'}
MESSAGE_CLASSES = {'extract_features': messages.ExtractFeaturesMsg,
                   'train_classifier': messages.TrainClassifierMsg,
                   'classify_features': messages.ClassifyFeaturesMsg,
                   'classify_image': messages.ClassifyImageMsg}
MODES = ('task', 'process_job', 'queue')


@pytest.fixture(scope='module')
def base(tmp_path_factory, weights_state) -> Path:
    directory = tmp_path_factory.mktemp('scenario')
    scenario.build(directory, weights_state)
    return directory


class Runs:
    """Each (release, task, mode) run once, in a fresh copy of the scenario."""

    def __init__(self, base: Path, scratch: Path):
        self.base = base
        self.scratch = scratch

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
            else:
                job_return = through_queue(job_json)
            assert job_return['ok'], job_return['error_message']
            returned = job_return['results']
        for result in returned:
            result.pop('runtime')
        return {'returned': returned, **written_outputs(task, folder)}


def through_queue(job_json: dict) -> dict:
    """The stored JobMsg JSON, as CoralNet queued it, through the worker layer.
    No broker is configured in tests, so the embedded worker runs it. Every
    release's job carries the same job token, so job dedup is off here: the
    runs are different jobs that happen to share a token."""
    from workers import client
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


@pytest.fixture(scope='module')
def runs(base, tmp_path_factory) -> Runs:
    return Runs(base, tmp_path_factory.mktemp('runs'))


def _loaded(cls, release: str, name: str, folder: Path):
    return cls.deserialize(scenario.fixture_json(release, name, folder))


# --- Loading -------------------------------------------------------------------------------

@pytest.mark.parametrize('release', OLD_RELEASES)
def test_task_messages_load_as_the_current_message(release, base):
    """Translated at the edges into the one current class: an old message,
    loaded, is the message 0.14 stored for the same scenario."""
    for task in TASKS:
        old = _loaded(MESSAGE_CLASSES[task], release, MESSAGE_FILES[task], base)
        current = _loaded(MESSAGE_CLASSES[task], CURRENT, MESSAGE_FILES[task], base)
        assert type(old) is type(current)
        assert old.serialize() == current.serialize(), task
        old_job = _loaded(messages.JobMsg, release, f'JobMsg-{task}.json', base)
        assert old_job.serialize() == _loaded(
            messages.JobMsg, CURRENT, f'JobMsg-{task}.json', base).serialize()


@pytest.mark.parametrize('release', RELEASES)
def test_labels_load_with_their_locations(release, base):
    labels = _loaded(ImageLabels, release, 'ImageLabels.json', base)
    assert labels == _loaded(ImageLabels, CURRENT, 'ImageLabels.json', base)
    assert len(labels) == scenario.IMAGE_COUNT and labels.label_count == 16 * 5
    loc = DataLocation('filesystem', str(scenario.feature_path(base, 1)))
    assert labels[loc] == [(r, c, scenario.label(1, j))
                           for j, (r, c) in enumerate(scenario.ROWCOLS)]
    if (scenario.RELEASES_DIR / release / 'TrainingTaskLabels.json').exists():
        split = _loaded(messages.TrainingTaskLabels, release, 'TrainingTaskLabels.json', base)
        assert split == _loaded(messages.TrainClassifierMsg, CURRENT,
                                'TrainClassifierMsg.json', base).labels


def test_06_train_message_carves_the_same_ref_set(base):
    """0.6 had no ref set in the message: every 10th train image becomes it."""
    msg = _loaded(messages.TrainClassifierMsg, '0.6.0', 'TrainClassifierMsg.json', base)
    names = {s: sorted(Path(loc.key).name for loc in msg.labels[s].keys())
             for s in ('train', 'ref', 'val')}
    assert names['ref'] == ['img_01.featurevector', 'img_11.featurevector']
    assert names['train'] == [f'img_{i:02d}.featurevector' for i in (2, 3, 4, 5, 6, 7, 8, 9, 10, 12)]
    assert names['val'] == [f'img_{i:02d}.featurevector' for i in range(13, 17)]


@pytest.mark.parametrize('release', RELEASES)
def test_stored_returns_and_examples_load(release, base):
    folder = scenario.RELEASES_DIR / release
    for task in TASKS:
        stored = _loaded(messages.JobReturnMsg, release, f'JobReturnMsg-{task}.json', base)
        assert stored.ok and stored.original_job.task_name == task
        assert isinstance(stored.results[0], messages.return_message_class(task))
    error = _loaded(messages.JobReturnMsg, release, 'JobReturnMsg-error.json', base)
    assert not error.ok and error.results is None
    assert 'FileNotFoundError' in error.error_message
    valresults = _loaded(ValResults, release, 'ValResults.json', base)
    assert valresults.classes == scenario.CLASSES and len(valresults.gt) == 4 * 5
    for path in sorted((folder / 'example').glob('*.json')):
        name = path.stem.split('-')[0]
        cls = getattr(messages, name, None) if name != 'DataLocation' else None
        cls = cls or getattr(data_classes, name)
        loaded = cls.deserialize(json.loads(path.read_text()))
        assert type(loaded).deserialize(loaded.serialize()) == loaded, path.name


# --- Running -------------------------------------------------------------------------------

@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('release', RELEASES)
def test_extract_features_gives_the_current_features(release, mode, runs):
    got = runs.run(release, 'extract_features', mode)
    want = runs.run(CURRENT, 'extract_features', 'task')
    assert got['returned'] == [{'extractor_loaded_remotely': False}]
    assert got['rowcols'] == scenario.ROWCOLS
    assert got['feat'].shape == (5, 1280)
    np.testing.assert_allclose(got['feat'], want['feat'], atol=1e-4)
    # The weights are not a blank network: different points, different features.
    assert np.ptp(got['feat'], axis=0).max() > 1e-3


@pytest.mark.parametrize('task', ['classify_features', 'classify_image'])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('release', RELEASES)
def test_classify_gives_the_current_scores(release, mode, task, runs):
    (got,) = runs.run(release, task, mode)['returned']
    (want,) = runs.run(CURRENT, task, 'task')['returned']
    assert got['classes'] == want['classes'] == scenario.CLASSES
    assert got['valid_rowcol'] is True
    assert [tuple(s[:2]) for s in got['scores']] == scenario.ROWCOLS
    np.testing.assert_allclose([s[2] for s in got['scores']],
                               [s[2] for s in want['scores']], atol=1e-6)
    assert np.allclose([sum(s[2]) for s in got['scores']], 1.0)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('release', RELEASES)
def test_training_gives_the_current_classifier(release, mode, runs):
    """Same split, same data, deterministic trainer: the same classifier."""
    got = runs.run(release, 'train_classifier', mode)
    want = runs.run(CURRENT, 'train_classifier', 'task')
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


@pytest.mark.parametrize('release', RELEASES)
def test_a_failing_job_reports_like_the_release_did(release, base):
    """The stored error job (a missing feature file) fails the same way here."""
    stored = _loaded(messages.JobReturnMsg, release, 'JobReturnMsg-error.json', base)
    returned = tasks.process_job(stored.original_job)
    assert not returned.ok
    assert 'FileNotFoundError' in returned.error_message
    assert 'missing.featurevector' in returned.error_message
