"""Small labelled feature sets for the training tests."""
from __future__ import annotations

import pytest

from spacer.training.synthetic import make_source


@pytest.fixture(scope='session')
def small_source(tmp_path_factory):
    """1500 labels, 4 classes, 32-d, 30 images: trains in a second."""
    return make_source(tmp_path_factory.mktemp('small'), 1500, n_classes=4,
                       feature_dim=32, points_per_image=50, seed=1,
                       noise=0.4)


@pytest.fixture(scope='session')
def small_split(small_source):
    from spacer.task_utils import preprocess_labels
    return preprocess_labels(small_source)
