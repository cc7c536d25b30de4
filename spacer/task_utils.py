"""Preparing annotations for training: the train/ref/val split and its checks.

The splits are pyspacer 0.14's, point for point, so a source retrained with
spacer sees the same sets it would have seen with pyspacer: VECTORS shuffles
the feature files with Python's ``random`` seeded 0; the POINTS modes use
scikit-learn's ``train_test_split`` (``random_state=0``), first val off the
whole, then ref off the rest. Only positions are shuffled (integer arrays,
not tuples), which keeps the split cheap for millions of points and yields
the same permutation.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from enum import Enum
from logging import getLogger

import numpy as np

from spacer import config
from spacer.data_classes import ImageLabels, LabelId  # noqa: F401 (pyspacer exports it here)
from spacer.image_labels import TrainingTaskLabels
from spacer.exceptions import TrainingLabelsError
from spacer.extract_inputs import check_extract_inputs  # noqa: F401 (pyspacer exports it here)
from spacer.extras import extra_imports

with extra_imports():
    from sklearn.model_selection import train_test_split

logger = getLogger(__name__)

SET_NAMES = ('train', 'ref', 'val')


class SplitMode(Enum):
    """How annotations are divided between the train, ref and val sets."""

    # Whole feature files (images) go to one set. Points of one image look
    # alike, so this keeps calibration and evaluation honest about new
    # images; set sizes land near, not on, their goals.
    VECTORS = 'vectors'
    # Point by point: exact set sizes, one image may feed all three sets.
    POINTS = 'points'
    # Point by point and stratified by class; classes with fewer than 3
    # annotations are dropped first (each set needs the chance of one).
    POINTS_STRATIFIED = 'points_stratified'


def _goal_sizes(label_count: int, split_ratios: tuple[float, float]) \
        -> tuple[int, int, int]:
    ref_ratio, val_ratio = split_ratios
    ref_size = min(round(label_count * ref_ratio),
                   config.TRAINING_BATCH_LABEL_COUNT)
    val_size = round(label_count * val_ratio)
    return label_count - ref_size - val_size, ref_size, val_size


def _check_sizes(sizes: tuple[int, int, int], minimum: int,
                 explanation: str) -> None:
    if min(sizes) < minimum:
        train, ref, val = sizes
        raise TrainingLabelsError(
            f"Not enough annotations to populate train/ref/val sets."
            f" Split was calculated as {train}/{ref}/{val}. {explanation}")


def _split_by_vectors(labels: ImageLabels, sizes: tuple[int, int, int]) \
        -> TrainingTaskLabels:
    """Fill val, then ref, then train with whole images in shuffled order.

    val and ref stop once they meet their goal (so they may overshoot);
    train takes what is left up to its goal.
    """
    train_size, ref_size, val_size = sizes
    keys = list(labels.keys())
    random.Random(0).shuffle(keys)

    sets: dict[str, dict] = {name: {} for name in SET_NAMES}
    next_key = 0
    for name, goal in (('val', val_size), ('ref', ref_size),
                       ('train', train_size)):
        count = 0
        while count < goal and next_key < len(keys):
            key = keys[next_key]
            next_key += 1
            sets[name][key] = labels[key]
            count += len(labels[key])
    return TrainingTaskLabels(**{
        name: ImageLabels(sets[name]) for name in SET_NAMES})


def _split_by_points(labels: ImageLabels, sizes: tuple[int, int, int],
                     stratified: bool) -> TrainingTaskLabels:
    _train_size, ref_size, val_size = sizes
    keys = list(labels.keys())
    image_index = np.concatenate([
        np.full(len(labels[key]), i, dtype=np.int64)
        for i, key in enumerate(keys)])
    point_index = np.concatenate([
        np.arange(len(labels[key]), dtype=np.int64) for key in keys])
    # The same array scikit-learn would make of pyspacer's label list.
    flat_labels = np.asarray(
        [label for key in keys for _row, _col, label in labels[key]])

    positions = np.arange(len(image_index))
    train_ref, val = train_test_split(
        positions, test_size=val_size, random_state=0, shuffle=True,
        stratify=flat_labels if stratified else None)
    train, ref = train_test_split(
        train_ref, test_size=ref_size, random_state=0, shuffle=True,
        stratify=flat_labels[train_ref] if stratified else None)

    result = {}
    for name, chosen in (('train', train), ('ref', ref), ('val', val)):
        data: dict = defaultdict(list)
        for image, point in zip(image_index[chosen].tolist(),
                                point_index[chosen].tolist()):
            key = keys[image]
            data[key].append(labels[key][point])
        result[name] = ImageLabels(dict(data))
    return TrainingTaskLabels(**result)


def split_labels(labels_in: ImageLabels,
                 split_ratios: tuple[float, float],
                 split_mode: SplitMode) -> TrainingTaskLabels:
    """Split annotations into train, ref and val sets.

    ``split_ratios`` is (ref ratio, val ratio); ref is also capped at
    ``TRAINING_BATCH_LABEL_COUNT`` labels and train gets the rest. Set sizes
    are decided before any class filtering, so later filtering changes them.
    """
    sizes = _goal_sizes(labels_in.label_count, split_ratios)
    if split_mode == SplitMode.POINTS_STRATIFIED:
        n_classes = len(labels_in.classes_set)
        _check_sizes(sizes, n_classes, (
            f"Each set's size must not be less than the number of classes"
            f" ({n_classes}) to work with train_test_split()."))
    else:
        _check_sizes(sizes, 1, "Each set must be non-empty.")

    if split_mode == SplitMode.VECTORS:
        return _split_by_vectors(labels_in, sizes)
    if split_mode in (SplitMode.POINTS, SplitMode.POINTS_STRATIFIED):
        return _split_by_points(
            labels_in, sizes,
            stratified=split_mode == SplitMode.POINTS_STRATIFIED)
    raise ValueError(f"Unknown split mode: {split_mode!r}")


def _classes_with_at_least(labels: ImageLabels, count: int) -> list:
    per_class: Counter = labels.label_count_per_class
    return [label for label, n in per_class.items() if n >= count]


def _label_kind(label: object) -> str | None:
    """'integer' or 'string': the label types training can sort and store;
    None for any other (None, bool, float, ...)."""
    if isinstance(label, (bool, np.bool_)):
        return None
    if isinstance(label, (int, np.integer)):
        return 'integer'
    if isinstance(label, str):
        return 'string'
    return None


def _first_annotation(sets: list[tuple[str | None, ImageLabels]],
                      wanted) -> str:
    """Where the first annotation whose label satisfies ``wanted`` is."""
    for name, image_labels in sets:
        for loc in image_labels.keys():
            for annotation in image_labels[loc]:
                if wanted(annotation[2]):
                    in_set = '' if name is None else f"the '{name}' set, "
                    return (f"{in_set}feature file {loc.key}, point"
                            f" (row, col) {tuple(annotation[:2])}")
    return 'unknown position'  # pragma: no cover - found in classes_set


def check_label_types(labels: ImageLabels | TrainingTaskLabels) -> None:
    """Labels must all be integers or all strings.

    Training sorts the classes and scores by them: None or a mix of types
    cannot be sorted, and numpy would turn a mix of ints and strings into
    strings that no longer match the labels. Checked on the distinct
    classes, so it costs nothing next to training.
    """
    if isinstance(labels, TrainingTaskLabels):
        sets = [(name, labels[name]) for name in SET_NAMES]
    else:
        sets = [(None, labels)]
    examples: dict[str, object] = {}
    others: list = []
    for _name, image_labels in sets:
        for label in image_labels.classes_set:
            kind = _label_kind(label)
            if kind is None:
                others.append(label)
            else:
                examples.setdefault(kind, label)
    if others:
        types = sorted({type(label).__name__ for label in others})
        where = _first_annotation(sets, lambda l: _label_kind(l) is None)
        raise TrainingLabelsError(
            f"Labels must be integers or strings, but there are labels of"
            f" type {', '.join(types)} (e.g. {others[0]!r}; first at"
            f" {where}).")
    if len(examples) > 1:
        where = _first_annotation(sets, lambda l: _label_kind(l) == 'string')
        raise TrainingLabelsError(
            f"Labels must be all integers or all strings, not a mix: found"
            f" integer labels (e.g. {examples['integer']!r}) and string"
            f" labels (e.g. {examples['string']!r}; first at {where}).")


def preprocess_labels(
        labels_in: ImageLabels | TrainingTaskLabels,
        accepted_classes: set | None = None,
        split_ratios: tuple[float, float] = (0.1, 0.1),
        split_mode: SplitMode = SplitMode.VECTORS,
) -> TrainingTaskLabels:
    """Split (if not split yet), filter classes, and check the sets.

    Keeps only ``accepted_classes`` (when given) and then only the classes
    present in both train and ref: the classifier can learn nothing else.
    A ``TrainingTaskLabels`` passed in is updated in place, as pyspacer does.
    Raises ``TrainingLabelsError`` when fewer than 2 classes remain, a set
    ends up empty, or the labels are not all integers or all strings.
    """
    if isinstance(labels_in, (TrainingTaskLabels, ImageLabels)):
        check_label_types(labels_in)
    if isinstance(labels_in, TrainingTaskLabels):
        labels = labels_in
        if accepted_classes:
            for name in SET_NAMES:
                labels[name] = labels[name].filter_classes(accepted_classes)
    elif isinstance(labels_in, ImageLabels):
        pre_split = labels_in
        if accepted_classes:
            pre_split = pre_split.filter_classes(accepted_classes)
        if split_mode == SplitMode.POINTS_STRATIFIED:
            # Stratification needs >= 3 of a class (one per set). As in
            # pyspacer, counted on the labels before accepted_classes.
            common = _classes_with_at_least(labels_in, 3)
            if len(common) != len(labels_in.classes_set):
                pre_split = pre_split.filter_classes(common)
        labels = split_labels(pre_split, split_ratios=split_ratios,
                              split_mode=split_mode)
    else:
        raise TypeError(
            f"preprocess_labels needs ImageLabels or TrainingTaskLabels,"
            f" not {type(labels_in).__name__}.")

    train_ref_classes = \
        labels.train.classes_set & labels.ref.classes_set
    if len(train_ref_classes) <= 1:
        raise TrainingLabelsError(
            f"Need multiple classes to do training."
            f" After preprocessing training data, there are"
            f" {len(train_ref_classes)} class(es) left.")

    for name in SET_NAMES:
        if not labels[name].classes_set <= train_ref_classes:
            labels[name] = labels[name].filter_classes(train_ref_classes)
        if len(labels[name]) == 0:
            raise TrainingLabelsError(
                f"After preprocessing training data, '{name}' set is empty.")
    logger.debug("Training labels: %s.", ', '.join(
        f"{name} {len(labels[name])} points" for name in SET_NAMES))
    return labels
