"""Splits are pyspacer 0.14's, and bad label sets are clear errors."""
from __future__ import annotations

import json

import pytest

from spacer import config
from spacer.data_classes import DataLocation, ImageLabels
from spacer.exceptions import TrainingLabelsError
from spacer.messages import TrainingTaskLabels
from spacer.task_utils import SplitMode, preprocess_labels, split_labels
from tests.conftest import PYSPACER_FIXTURES


def fixture_labels() -> ImageLabels:
    raw = json.loads((PYSPACER_FIXTURES / 'labels.json').read_text())
    return ImageLabels({
        DataLocation('filesystem', name): [tuple(a) for a in annotations]
        for name, annotations in raw.items()})


def as_plain(labels: ImageLabels) -> list:
    """Keys in order with their annotations: order matters for training."""
    return [(loc.key, [list(a) for a in labels[loc]]) for loc in labels.keys()]


@pytest.mark.parametrize('mode', list(SplitMode))
def test_same_split_as_pyspacer_014(mode):
    expected = json.loads((PYSPACER_FIXTURES / 'splits.json').read_text())[
        mode.name]

    labels = preprocess_labels(fixture_labels(), split_mode=mode)

    for name in ('train', 'ref', 'val'):
        assert as_plain(labels[name]) == list(expected[name].items()), name


def make_labels(counts: dict[int, int], per_image: int = 10) -> ImageLabels:
    """Images of per_image points each; counts: label -> number of points."""
    flat = [label for label, n in counts.items() for _ in range(n)]
    labels = ImageLabels()
    for start in range(0, len(flat), per_image):
        labels.add_image(
            DataLocation('memory', f'img{start}'),
            [(i, i, label)
             for i, label in enumerate(flat[start:start + per_image])])
    return labels


def test_ref_is_capped_at_batch_label_count(monkeypatch):
    monkeypatch.setattr(config, 'TRAINING_BATCH_LABEL_COUNT', 20)
    labels = split_labels(make_labels({1: 500, 2: 500}), (0.1, 0.1),
                          SplitMode.POINTS)
    assert labels.ref.label_count == 20
    assert labels.val.label_count == 100
    assert labels.train.label_count == 880


def test_vectors_mode_keeps_images_whole():
    labels = split_labels(make_labels({1: 150, 2: 150}), (0.1, 0.1),
                          SplitMode.VECTORS)
    keys = [set(labels[name].keys()) for name in ('train', 'ref', 'val')]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(labels[n].label_count for n in ('train', 'ref', 'val')) == 300


def test_one_class_only_is_refused():
    with pytest.raises(TrainingLabelsError,
                       match=r"Need multiple classes .* 1 class\(es\) left"):
        preprocess_labels(make_labels({7: 100}))


def test_too_few_annotations_is_refused():
    with pytest.raises(TrainingLabelsError,
                       match=r"Split was calculated as 3/0/0\. "
                             r"Each set must be non-empty"):
        preprocess_labels(make_labels({1: 2, 2: 1}))


def test_stratified_needs_a_class_count_per_set():
    with pytest.raises(TrainingLabelsError,
                       match=r"must not be less than the number of classes"):
        preprocess_labels(make_labels({c: 3 for c in range(10)}),
                          split_mode=SplitMode.POINTS_STRATIFIED)


def test_empty_set_after_class_filtering_is_refused():
    given = TrainingTaskLabels(
        train=make_labels({1: 10, 2: 10}), ref=make_labels({1: 10, 2: 10}),
        val=make_labels({3: 10}))
    with pytest.raises(TrainingLabelsError, match="'val' set is empty"):
        preprocess_labels(given)


def test_classes_missing_from_ref_are_dropped_everywhere():
    given = TrainingTaskLabels(
        train=make_labels({1: 10, 2: 10, 3: 10}),
        ref=make_labels({1: 10, 2: 10}),
        val=make_labels({1: 5, 3: 5}))
    labels = preprocess_labels(given)
    assert labels.train.classes_set == {1, 2}
    assert labels.val.classes_set == {1}


def test_accepted_classes_filter_before_splitting():
    labels = preprocess_labels(make_labels({1: 100, 2: 100, 3: 100}),
                               accepted_classes={1, 3},
                               split_mode=SplitMode.POINTS)
    for name in ('train', 'ref', 'val'):
        assert labels[name].classes_set <= {1, 3}


def test_string_labels_split_stratified():
    labels = ImageLabels({
        DataLocation('memory', f'img{i}'):
            [(j, j, ['sand', 'coral', 'algae'][(i + j) % 3]) for j in range(10)]
        for i in range(30)})
    result = preprocess_labels(labels, split_mode=SplitMode.POINTS_STRATIFIED)
    assert result.ref.classes_set == {'sand', 'coral', 'algae'}
    assert result.label_count == 300


def test_check_extract_inputs_is_reexported():
    pytest.importorskip('spacer.extract_inputs')
    from spacer import task_utils
    assert callable(task_utils.check_extract_inputs)
