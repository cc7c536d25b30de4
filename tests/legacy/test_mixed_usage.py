"""pyspacer 0.6 code and 0.14 code side by side in one process: both work,
give the same results, and each old form warns once, not once per call."""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from tests.legacy import scenario

REPEATS = 3
# Every old form, as its warning names it.
OLD_FORMS = {
    'spacer.extract_features.EfficientNetExtractor',
    'spacer.messages.DataLocation',
    'TrainClassifierMsg(trainer_name=...)',
    'TrainClassifierMsg(train_labels=..., val_labels=..., features_loc=...)',
    'ImageLabels keyed by plain strings',
    'TrainClassifierMsg JSON with train_labels/val_labels/features_loc',
    'TrainClassifierMsg JSON with features_loc and plain label keys',
    'ImageLabels JSON {"data": {...}}',
    'ImageLabels JSON keyed by plain feature paths',
    "Extractor class_path 'spacer.extract_features.*' in stored messages",
}


def _annotations(image: int) -> list:
    return [(r, c, scenario.label(image, j)) for j, (r, c) in enumerate(scenario.ROWCOLS)]


def old_code(folder: Path, out: Path, positional: bool = False):
    """Written against pyspacer 0.6 (its README's forms)."""
    from spacer.data_classes import ImageLabels
    from spacer.extract_features import EfficientNetExtractor
    from spacer.messages import DataLocation, ExtractFeaturesMsg, TrainClassifierMsg
    from spacer.tasks import extract_features, train_classifier

    extract_features(ExtractFeaturesMsg(
        job_token='old', rowcols=scenario.ROWCOLS,
        extractor=EfficientNetExtractor(data_locations=dict(
            weights=DataLocation('filesystem', str(folder / 'efficientnet_b0.pt')))),
        image_loc=DataLocation('filesystem', str(folder / 'image.jpg')),
        feature_loc=DataLocation('filesystem', str(out / 'image.featurevector'))))
    train = ImageLabels(data={str(scenario.feature_path(folder, i)): _annotations(i)
                              for i in range(1, 13)})
    val = ImageLabels(data={str(scenario.feature_path(folder, i)): _annotations(i)
                            for i in range(13, 17)})
    args = dict(job_token='old', trainer_name='minibatch', nbr_epochs=2, clf_type='MLP',
                train_labels=train, val_labels=val,
                features_loc=DataLocation('filesystem', ''),
                previous_model_locs=[DataLocation('filesystem', str(folder / 'classifier.pkl'))],
                model_loc=DataLocation('filesystem', str(out / 'model.pkl')),
                valresult_loc=DataLocation('filesystem', str(out / 'valresult.json')))
    msg = TrainClassifierMsg(*args.values()) if positional else TrainClassifierMsg(**args)
    return train_classifier(msg)


def new_code(folder: Path, out: Path):
    """Written against pyspacer 0.14."""
    from spacer.data_classes import DataLocation, ImageLabels
    from spacer.extractors import EfficientNetExtractor
    from spacer.messages import ExtractFeaturesMsg, TrainClassifierMsg, TrainingTaskLabels
    from spacer.tasks import extract_features, train_classifier
    from spacer.train_classifier import MiniBatchTrainer

    extract_features(ExtractFeaturesMsg(
        job_token='new', rowcols=scenario.ROWCOLS,
        extractor=EfficientNetExtractor(data_locations=dict(
            weights=DataLocation('filesystem', str(folder / 'efficientnet_b0.pt')))),
        image_loc=DataLocation('filesystem', str(folder / 'image.jpg')),
        feature_loc=DataLocation('filesystem', str(out / 'image.featurevector'))))

    def labels(images) -> ImageLabels:
        return ImageLabels({DataLocation('filesystem', str(scenario.feature_path(folder, i))):
                            _annotations(i) for i in images})
    return train_classifier(TrainClassifierMsg(
        job_token='new', trainer=MiniBatchTrainer(), nbr_epochs=2, clf_type='MLP',
        labels=TrainingTaskLabels(train=labels([2, 3, 4, 5, 6, 7, 8, 9, 10, 12]),
                                  ref=labels([1, 11]), val=labels(range(13, 17))),
        previous_model_locs=[DataLocation('filesystem', str(folder / 'classifier.pkl'))],
        model_loc=DataLocation('filesystem', str(out / 'model.pkl')),
        valresult_loc=DataLocation('filesystem', str(out / 'valresult.json'))))


def load_stored_forms(folder: Path) -> None:
    """Stored JSON of every older generation, loaded by current code."""
    from spacer.data_classes import ImageLabels
    from spacer.messages import JobMsg, TrainClassifierMsg, TrainingTaskLabels
    for release in ('0.6.0', '0.7.0'):
        TrainClassifierMsg.deserialize(
            scenario.fixture_json(release, 'TrainClassifierMsg.json', folder))
        ImageLabels.deserialize(scenario.fixture_json(release, 'ImageLabels.json', folder))
        JobMsg.deserialize(scenario.fixture_json(release, 'JobMsg-extract_features.json', folder))
    TrainingTaskLabels.deserialize(
        scenario.fixture_json('0.9.0', 'TrainingTaskLabels.json', folder))


def _features(out: Path) -> np.ndarray:
    from spacer.data_classes import DataLocation, ImageFeatures
    return ImageFeatures.load(DataLocation('filesystem', str(out / 'image.featurevector'))).feat


def _val_proba(folder: Path, out: Path) -> np.ndarray:
    """The stored model's scores for the val images' points."""
    from spacer.data_classes import DataLocation, ImageFeatures
    from spacer.storage import load_classifier
    clf = load_classifier(DataLocation('filesystem', str(out / 'model.pkl')))
    return clf.predict_proba(np.vstack([
        ImageFeatures.load(DataLocation('filesystem', str(scenario.feature_path(folder, i)))).feat
        for i in range(13, 17)]))


def _ours(caught) -> list:
    return [w for w in caught if 'pyspacer' in str(w.message)]


def _folder(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_old_and_new_code_side_by_side(base, tmp_path, fresh_legacy_warnings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        results = []
        for n in range(REPEATS):
            old_out, new_out = _folder(tmp_path, f'old{n}'), _folder(tmp_path, f'new{n}')
            old = old_code(base, old_out, positional=(n == 1))
            load_stored_forms(base)
            new = new_code(base, new_out)
            results.append((old, new, old_out, new_out))

    counts = Counter(str(w.message) for w in _ours(caught))
    assert all(count == 1 for count in counts.values()), counts
    named = {form for form in OLD_FORMS if any(m.startswith(form + ' ') for m in counts)}
    assert named == OLD_FORMS and len(counts) == len(OLD_FORMS), sorted(counts)
    for w in _ours(caught):
        assert w.category is DeprecationWarning
        assert ' use ' in str(w.message) and str(w.message).endswith(' instead.')
        # The warning names the caller's line, not spacer's internals.
        assert w.filename == __file__, (str(w.message), w.filename)

    for old, new, old_out, new_out in results:
        np.testing.assert_allclose(_features(old_out), _features(new_out), atol=1e-4)
        assert (old.acc, old.pc_accs, old.ref_accs) == (new.acc, new.pc_accs, new.ref_accs)
        assert 0.0 <= old.acc <= 1.0 and len(old.ref_accs) == 2
        np.testing.assert_allclose(_val_proba(base, old_out), _val_proba(base, new_out),
                                   atol=1e-9)


def test_current_code_alone_does_not_warn(base, tmp_path, fresh_legacy_warnings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        new_code(base, tmp_path)
        from spacer.data_classes import ImageLabels
        from spacer.messages import JobMsg, TrainClassifierMsg
        for release in ('0.13.0', '0.14.0'):
            TrainClassifierMsg.deserialize(
                scenario.fixture_json(release, 'TrainClassifierMsg.json', base))
            ImageLabels.deserialize(scenario.fixture_json(release, 'ImageLabels.json', base))
            JobMsg.deserialize(scenario.fixture_json(release, 'JobMsg-extract_features.json',
                                                     base))
    assert _ours(caught) == []


def _old_import():
    from spacer.messages import DataLocation
    return DataLocation


def test_each_old_form_warns_again_only_after_a_reset(fresh_legacy_warnings):
    from spacer import legacy
    for expected in (1, 0, 0):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            _old_import()
        assert len(_ours(caught)) == expected
    legacy.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        _old_import()
    assert len(_ours(caught)) == 1
