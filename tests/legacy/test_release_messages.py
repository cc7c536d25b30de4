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
from pathlib import Path

import pytest

from spacer import data_classes, messages, tasks
from spacer.data_classes import DataLocation, ImageLabels, ValResults
from tests.legacy import scenario
from tests.legacy.runs import MESSAGE_CLASSES, MESSAGE_FILES, SAME, Runs
from tests.legacy.scenario import CURRENT, RELEASES, TASKS

OLD_RELEASES = [r for r in RELEASES if r != CURRENT]
MODES = ('task', 'process_job', 'queue')


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
    assert names['train'] == [f'img_{i:02d}.featurevector'
                              for i in (2, 3, 4, 5, 6, 7, 8, 9, 10, 12)]
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

@pytest.mark.parametrize('task', TASKS)
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('release', RELEASES)
def test_runs_like_the_current_message(release, mode, task, runs):
    """Same features (1e-4), same scores from the same classifier, and the
    same classifier from the same split; 0.14's own message run as a single
    task is the reference."""
    SAME[task](runs.run(release, task, mode), runs.run(CURRENT, task, 'task'))


@pytest.mark.parametrize('release', RELEASES)
def test_a_failing_job_reports_like_the_release_did(release, base):
    """The stored error job (a missing feature file) fails the same way here."""
    stored = _loaded(messages.JobReturnMsg, release, 'JobReturnMsg-error.json', base)
    returned = tasks.process_job(stored.original_job)
    assert not returned.ok
    assert 'FileNotFoundError' in returned.error_message
    assert 'missing.featurevector' in returned.error_message
