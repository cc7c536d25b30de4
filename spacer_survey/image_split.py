"""Hold out whole images, stratified so that every label gets trained.

pyspacer's VECTORS split deals shuffled images to val, then ref, then
train. A label found in a few images can land with none of them in ref (or
in train), and preprocess_labels then drops it from every set without a
word. Here the images of the rarest labels are placed first: one image
holding the label goes to ref, one to val where the label has a third image
to spare, and the rest stay for training; an image is only moved out of
training when every label on it keeps another image there. Then val and
ref are topped up to their sizes, and training gets what is left.

The result is a `TrainingTaskLabels`, which `preprocess_labels` filters by
pyspacer's rules (a label is trained only if it is in both train and ref).
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict

from spacer.data_classes import ImageLabels
from spacer.messages import TrainingTaskLabels
from spacer.task_utils import SET_NAMES, _goal_sizes


def _labels_of(labels: ImageLabels, key) -> set:
    return {label for _row, _col, label in labels[key]}


def split_images_stratified(labels: ImageLabels,
                            split_ratios: tuple[float, float]
                            ) -> TrainingTaskLabels:
    """Split whole images into train/ref/val so every label on at least
    two images is in train and ref, and in val too when on three or more.
    Deterministic for given labels."""
    _train_size, ref_size, val_size = _goal_sizes(labels.label_count,
                                                  split_ratios)
    keys = list(labels.keys())
    random.Random(0).shuffle(keys)
    contents = {key: _labels_of(labels, key) for key in keys}
    images_of: dict = defaultdict(list)
    for key in keys:
        for label in contents[key]:
            images_of[label].append(key)
    in_train = Counter({label: len(found) for label, found in images_of.items()})
    placed: dict = {}                       # key -> 'ref' or 'val'
    sizes = Counter()

    def can_leave_train(key) -> bool:
        return all(in_train[label] >= 2 for label in contents[key])

    in_set: dict[str, set] = {'ref': set(), 'val': set()}

    def place(key, name: str) -> None:
        placed[key] = name
        in_set[name] |= contents[key]
        sizes[name] += len(labels[key])
        for label in contents[key]:
            in_train[label] -= 1

    # Rarest labels first: they have the fewest images to choose from.
    for label in sorted(images_of, key=lambda l: (len(images_of[l]), str(l))):
        for name, images_needed in (('ref', 2), ('val', 3)):
            if len(images_of[label]) < images_needed:
                continue
            if label in in_set[name]:
                continue
            candidates = [key for key in images_of[label]
                          if key not in placed and can_leave_train(key)]
            if candidates:
                # The image that gives the most labels still missing from
                # this set, then the smallest: the set overshoots least.
                place(min(candidates, key=lambda k: (
                    -len(contents[k] - in_set[name]), len(labels[k]))), name)

    for name, goal in (('val', val_size), ('ref', ref_size)):
        for key in keys:
            if sizes[name] >= goal:
                break
            if key not in placed and can_leave_train(key):
                place(key, name)

    sets = {name: {} for name in SET_NAMES}
    for key in keys:
        sets[placed.get(key, 'train')][key] = labels[key]
    return TrainingTaskLabels(**{name: ImageLabels(sets[name])
                                 for name in SET_NAMES})
