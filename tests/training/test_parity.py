"""Validation accuracy within 1 point of pyspacer 0.14's on the same data.

tests/fixtures/training/pyspacer_parity.json holds what real pyspacer 0.14.0
scored (made by ``benchmarks/train.py --parity-fixture``); the feature files
are regenerated here from the same seeded recipe, split the same way.
"""
from __future__ import annotations

import json

import pytest

from spacer.task_utils import preprocess_labels
from spacer.train_classifier import MiniBatchTrainer
from spacer.training.synthetic import make_source
from tests.conftest import FIXTURES

PARITY = json.loads((FIXTURES / 'training' / 'pyspacer_parity.json').read_text())


@pytest.fixture(scope='module', params=['int', 'str'])
def parity_split(request, tmp_path_factory):
    data = PARITY['data']
    names = [f'class-{i}' for i in range(data['n_classes'])] \
        if request.param == 'str' else None
    labels = make_source(tmp_path_factory.mktemp(request.param),
                         class_names=names, **data)
    return request.param, preprocess_labels(labels)


@pytest.mark.parametrize('clf_type', ['MLP', 'LR'])
def test_validation_accuracy_within_one_point(parity_split, clf_type):
    label_kind, split = parity_split
    expected = PARITY['cases'][f'{clf_type}-{label_kind}']
    assert split.val.label_count == expected['val_labels']

    _, _, msg = MiniBatchTrainer()(split, PARITY['epochs'], [], clf_type)

    assert abs(msg.acc - expected['pyspacer_mean_val_acc']) <= 0.01, (
        f"ours {msg.acc:.4f} vs pyspacer {expected['pyspacer_mean_val_acc']:.4f}")
